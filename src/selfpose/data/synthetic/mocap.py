"""Mocap files: npz archives of named ``(T, 17, 3)`` mm motions, read one key at a time.

Any ``.npz`` of named ``(T, 17, 3)`` arrays (e.g. the Human3.6M mocap in
``../shared/data/mocap``, keys ``"S1/walking_1"``) and the CMU motion shipped
with the package (:data:`SHIPPED_CMU`, keys ``"train/…"``/``"test/…"``). The
frame rate comes from the sibling ``.json`` (its ``"fps"``) or from the
caller. :class:`MotionFile` selects keys by subject prefix and action, loads
one key at a time (an ``.npz`` member is decompressed only when read) and
validates it.
"""

from __future__ import annotations

import json
import re
import zipfile
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from selfpose.data.synthetic.motion import Motion, MotionError
from selfpose.geometry.skeleton import H36M17

#: Name of the CMU motion shipped with the package (CMU's mocap is free for any use).
SHIPPED_CMU = "cmu_h36m17approx_30fps"
#: First key components that name a data split rather than a subject.
SPLIT_NAMES = frozenset({"train", "test", "val", "valid", "validation"})


def parse_key(key: str) -> tuple[str, str]:
    """``(subject, action)`` of an npz key.

    ``"S1/walking_1"`` → ``("S1", "walking")``; ``"train/running_3"`` →
    ``("", "running")`` (a split is not a subject); ``"jump"`` → ``("", "jump")``.
    """
    parts = key.split("/")
    subject = parts[0] if len(parts) > 1 and parts[0].lower() not in SPLIT_NAMES else ""
    action = re.sub(r"[_ -]\d+$", "", parts[-1]) or parts[-1]
    return subject, action


def validate_joints(joints: np.ndarray, key: str) -> np.ndarray:
    """Check one motion array (``(T, 17, 3)``, T ≥ 2, finite); returns it as float32."""
    a = np.asarray(joints)
    if a.ndim != 3 or a.shape[1:] != (H36M17.num_joints, 3):
        raise MotionError(f"motion {key!r} must have shape (T, 17, 3) (Human3.6M-17 joints, mm), got {a.shape}")
    if a.shape[0] < 2:
        raise MotionError(f"motion {key!r} has {a.shape[0]} frame(s); at least 2 are needed")
    if not np.issubdtype(a.dtype, np.number):
        raise MotionError(f"motion {key!r} must be numeric, got dtype {a.dtype}")
    bad = ~np.isfinite(a).all(axis=(1, 2))
    if bad.any():
        raise MotionError(f"motion {key!r} has NaN/inf joints in {int(bad.sum())} frame(s), first at frame "
                          f"{int(np.argmax(bad))}; fill or drop those frames first")
    return a.astype(np.float32, copy=False)


def shipped_motion(name: str = SHIPPED_CMU):
    """The ``.npz`` of a motion shipped with the package, as an importlib Traversable."""
    res = resources.files("selfpose").joinpath("assets", "motion", f"{name}.npz")
    if not res.is_file():
        raise MotionError(f"no shipped motion {name!r} (expected package data assets/motion/{name}.npz)")
    return res


class MotionFile:
    """An npz of named ``(T, 17, 3)`` mm motions, read one key at a time.

    Args:
        path: the ``.npz`` file, or ``None`` for the shipped CMU motion.
        fps: frame rate of the file, used only when no sibling ``.json``
            gives one (``{"fps": 25.0, ...}``).

    Use as a context manager (or call :meth:`close`) to release the file.
    """

    def __init__(self, path: str | Path | None = None, fps: float | None = None):
        self._stack = ExitStack()
        if path is None:
            res = shipped_motion()
            self.source = f"shipped:{SHIPPED_CMU}"
            npz_path = self._stack.enter_context(resources.as_file(res))
        else:
            npz_path = Path(path)
            self.source = str(path)
            if not npz_path.is_file():
                raise MotionError(f"motion file {npz_path} not found; give an .npz of (T, 17, 3) mm arrays")
        self.path = Path(npz_path)
        self.fps = self._read_fps(self.path, fps)
        try:
            self._npz = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError) as e:
            self._stack.close()
            raise MotionError(f"cannot read motion file {self.source}: {e}") from e
        if not hasattr(self._npz, "files"):
            raise MotionError(f"motion file {self.source} is a single array; it must be an .npz of named arrays")
        self.keys: list[str] = list(self._npz.files)
        if not self.keys:
            raise MotionError(f"motion file {self.source} holds no arrays")

    @staticmethod
    def _read_fps(npz_path: Path, fps: float | None) -> float:
        meta = npz_path.with_suffix(".json")
        if meta.is_file():
            try:
                info = json.loads(meta.read_text())
            except json.JSONDecodeError as e:
                raise MotionError(f"{meta} is not valid JSON: {e}") from e
            if isinstance(info, dict) and "fps" in info:
                return float(info["fps"])
        if fps is None:
            raise MotionError(f"frame rate of {npz_path} unknown: no sibling {meta.name} with an 'fps' entry; "
                              "pass the motion's fps (motion_fps=...)")
        if fps <= 0:
            raise MotionError(f"motion fps must be positive, got {fps}")
        return float(fps)

    def __enter__(self) -> "MotionFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._npz.close()
        self._stack.close()

    def subjects(self) -> list[str]:
        """Distinct subject names (``[]`` when keys carry none, e.g. CMU splits)."""
        return sorted({s for s in (parse_key(k)[0] for k in self.keys) if s})

    def select(self, subjects: Sequence[str] = (), actions: Sequence[str] = ()) -> list[str]:
        """Keys whose first component is one of ``subjects`` and whose action is in ``actions``.

        ``subjects`` are key prefixes: ``"S1"`` keeps ``"S1/…"`` keys, ``"train"``
        keeps ``"train/…"``; empty keeps all. ``actions`` match the parsed action
        (``"walking"`` keeps ``walking_1`` and ``walking_2``) or the take name;
        empty keeps all. An entry that matches nothing is an error.
        """
        keys = list(self.keys)
        if subjects:
            prefixes = {k.split("/")[0] for k in self.keys if "/" in k}
            unknown = [s for s in subjects if not any(k.startswith(s.rstrip("/") + "/") for k in keys)]
            if unknown:
                raise MotionError(f"subject prefix(es) {', '.join(map(repr, unknown))} match no key of "
                                  f"{self.source}; available prefixes: {', '.join(sorted(prefixes)) or '(none)'}")
            keys = [k for k in keys if any(k.startswith(s.rstrip("/") + "/") for s in subjects)]
        if actions:
            def matches(k: str, a: str) -> bool:
                return parse_key(k)[1] == a or k.split("/")[-1] == a
            unknown = [a for a in actions if not any(matches(k, a) for k in keys)]
            if unknown:
                known = sorted({parse_key(k)[1] for k in keys})
                raise MotionError(f"action(s) {', '.join(map(repr, unknown))} match no selected key of "
                                  f"{self.source}; available actions: {', '.join(known)}")
            keys = [k for k in keys if any(matches(k, a) for a in actions)]
        return keys

    def num_frames(self, key: str) -> int:
        """Frames stored under ``key``, read from the array's header without decompressing it."""
        if key not in self.keys:
            raise MotionError(f"no motion {key!r} in {self.source}")
        try:
            with zipfile.ZipFile(self.path) as zf, zf.open(f"{key}.npy") as fh:
                version = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape = read(fh)[0]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise MotionError(f"cannot read the header of {key!r} in {self.source}: {e}") from e
        if len(shape) != 3 or shape[1:] != (H36M17.num_joints, 3):
            raise MotionError(f"motion {key!r} must have shape (T, 17, 3) (Human3.6M-17 joints, mm), got {shape}")
        return int(shape[0])

    def load(self, key: str) -> Motion:
        """The motion stored under ``key``, validated, at the file's fps."""
        if key not in self.keys:
            raise MotionError(f"no motion {key!r} in {self.source}")
        try:
            arr = self._npz[key]
        except (OSError, ValueError) as e:
            raise MotionError(f"cannot read {key!r} from {self.source}: {e}") from e
        subject, action = parse_key(key)
        return Motion(key, subject, action, self.fps, validate_joints(arr, key), self.source)


def load_motions(path: str | Path | None = None, *, subjects: Sequence[str] = (), actions: Sequence[str] = (),
                 fps: float | None = None, max_seconds: float | None = None,
                 source_fps: float | None = None) -> Iterator[Motion]:
    """Yield the selected motions of an npz, resampled to ``fps`` and cut to ``max_seconds``.

    Args:
        path: ``.npz`` of ``(T, 17, 3)`` mm arrays, or ``None`` for the shipped CMU motion.
        subjects, actions: selection, see :meth:`MotionFile.select`.
        fps: target frame rate (``None`` keeps the file's).
        max_seconds: keep at most this many seconds from each motion's start.
        source_fps: the file's frame rate when it has no sibling ``.json``.
    """
    with MotionFile(path, fps=source_fps) as mf:
        for key in mf.select(subjects, actions):
            m = mf.load(key)
            if fps is not None:
                m = m.resampled(fps)
            yield m.cropped(max_seconds)
