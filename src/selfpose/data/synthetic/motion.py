"""Human motion for the synthetic generator: mocap files and procedural motion.

A :class:`Motion` is one take of one body: ``joints`` ``(T, 17, 3)`` in
millimetres, world frame, z up, floor at ``z = 0``, Human3.6M-17 order.

Two sources:

* **Mocap files**: any ``.npz`` of named ``(T, 17, 3)`` arrays (e.g. the
  Human3.6M mocap in ``../shared/data/mocap``, keys ``"S1/walking_1"``) and
  the CMU motion shipped with the package (:data:`SHIPPED_CMU`, keys
  ``"train/…"``/``"test/…"``). The frame rate comes from the sibling ``.json``
  (its ``"fps"``) or from the caller. :class:`MotionFile` selects keys by
  subject prefix and action, loads one key at a time (an ``.npz`` member is
  decompressed only when read) and validates it.
* **Procedural motion** (:func:`procedural_motion`): walk, run, jump, wave,
  squat and dive, built by forward kinematics of joint angles on a fixed
  Human3.6M-like rest skeleton (:data:`REST_OFFSETS_MM`), seeded.
"""

from __future__ import annotations

from selfpose.errors import SelfposeError

import json
import re
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from selfpose.geometry.skeleton import H36M17

#: Name of the CMU motion shipped with the package (CMU's mocap is free for any use).
SHIPPED_CMU = "cmu_h36m17approx_30fps"
#: First key components that name a data split rather than a subject.
SPLIT_NAMES = frozenset({"train", "test", "val", "valid", "validation"})
#: Procedural motions :func:`procedural_motion` can make.
PROCEDURAL_ACTIONS = ("walk", "run", "jump", "wave", "squat", "dive")

GRAVITY_MM_S2 = 9810.0
"""Standard gravity, mm/s²."""


class MotionError(SelfposeError, ValueError):
    """A motion file, key or array is unusable; the message says what to fix."""


@dataclass(frozen=True)
class Motion:
    """One take of one body.

    Attributes:
        name: unique name within its source (the npz key, e.g. ``"S1/walking_1"``).
        subject: the recorded person (``"S1"``), or ``""`` when the source has
            no subjects (CMU splits, procedural motion).
        action: what they do (``"walking"``).
        fps: frames per second of ``joints``.
        joints: ``(T, 17, 3)`` float32, mm, world frame, z up, floor at z = 0,
            Human3.6M-17 order.
        source: where it came from (a file path, ``"shipped:<name>"`` or ``"procedural"``).
    """

    name: str
    subject: str
    action: str
    fps: float
    joints: np.ndarray
    source: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def duration_s(self) -> float:
        """Time from the first to the last frame, seconds."""
        return (self.num_frames - 1) / self.fps

    def resampled(self, fps: float) -> "Motion":
        """The same motion at ``fps`` frames per second (linear interpolation in time)."""
        if fps == self.fps:
            return self
        return replace(self, fps=float(fps), joints=resample(self.joints, self.fps, fps))

    def cropped(self, max_seconds: float | None) -> "Motion":
        """The first ``max_seconds`` of the motion (all of it when ``None``)."""
        if max_seconds is None:
            return self
        n = int(np.floor(max_seconds * self.fps + 1e-6)) + 1
        return self if n >= self.num_frames else replace(self, joints=self.joints[:n])


# ---------------------------------------------------------------------------
# Mocap files
# ---------------------------------------------------------------------------

def parse_key(key: str) -> tuple[str, str]:
    """``(subject, action)`` of an npz key.

    ``"S1/walking_1"`` → ``("S1", "walking")``; ``"train/running_3"`` →
    ``("", "running")`` (a split is not a subject); ``"jump"`` → ``("", "jump")``.
    """
    parts = key.split("/")
    subject = parts[0] if len(parts) > 1 and parts[0].lower() not in SPLIT_NAMES else ""
    action = re.sub(r"[_ -]\d+$", "", parts[-1]) or parts[-1]
    return subject, action


def resample(joints: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Resample ``(T, ...)`` samples taken at ``src_fps`` to ``dst_fps`` (linear in time).

    The output covers the same time span from the first sample: frame ``i``
    is at ``i / dst_fps`` seconds, up to the last input sample.
    """
    if src_fps <= 0 or dst_fps <= 0:
        raise MotionError(f"frame rates must be positive, got {src_fps} → {dst_fps}")
    joints = np.asarray(joints)
    T = joints.shape[0]
    n = int(np.floor((T - 1) * dst_fps / src_fps + 1e-6)) + 1
    pos = np.arange(n) * (src_fps / dst_fps)
    i0 = np.minimum(np.floor(pos).astype(np.int64), T - 1)
    i1 = np.minimum(i0 + 1, T - 1)
    w = (pos - i0).reshape((n,) + (1,) * (joints.ndim - 1))
    out = joints[i0] * (1 - w) + joints[i1] * w
    return out.astype(joints.dtype, copy=False)


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


def resampled_length(num_frames: int, src_fps: float, dst_fps: float, max_seconds: float | None = None) -> int:
    """Frames of a ``num_frames`` motion after :func:`resample` to ``dst_fps`` and :meth:`Motion.cropped`."""
    n = int(np.floor((num_frames - 1) * dst_fps / src_fps + 1e-6)) + 1
    if max_seconds is not None:
        n = min(n, int(np.floor(max_seconds * dst_fps + 1e-6)) + 1)
    return n


def implausibility(motion: Motion) -> str | None:
    """Why ``motion`` cannot be a person standing on a z-up floor, or None when it can.

    Catches mocap takes stored upside down or far below the floor (one
    Human3.6M take of the motion-prediction release is both).
    """
    j = motion.joints
    if np.median(j[:, 10, 2] - j[:, 0, 2]) < 0:
        return "upside down (head below pelvis in most frames)"
    if np.median(j[..., 2].min(axis=1)) < -300:
        return "below the floor (z < -300 mm in most frames)"
    return None


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


# ---------------------------------------------------------------------------
# Forward kinematics on a Human3.6M-like rest skeleton
# ---------------------------------------------------------------------------

def _dir(x: float, y: float, z: float, length: float) -> tuple[float, float, float]:
    v = np.array([x, y, z], dtype=np.float64)
    return tuple(v / np.linalg.norm(v) * length)


# Body frame: x forward, y to the body's left, z up (right-handed).
# Bone lengths are the medians of the Human3.6M training mocap
# (../shared/data/mocap/h36m17_train_S1-S8_25fps.npz, measured once; that
# release uses one skeleton for all subjects). Rest directions of the torso,
# neck, head and shoulder bones are the medians of its walking/directions
# takes in the pelvis's heading frame; limbs hang straight down at rest.
REST_OFFSETS_MM = np.array([
    (0.0, 0.0, 0.0),                    # 0 pelvis (root)
    (0.0, -132.9, 0.0),                 # 1 right hip
    (0.0, 0.0, -442.9),                 # 2 right knee
    (0.0, 0.0, -454.2),                 # 3 right ankle
    (0.0, 132.9, 0.0),                  # 4 left hip
    (0.0, 0.0, -442.9),                 # 5 left knee
    (0.0, 0.0, -454.2),                 # 6 left ankle
    _dir(-32.0, 0.0, 230.0, 233.5),     # 7 spine
    _dir(12.0, 0.0, 254.0, 257.1),      # 8 thorax
    _dir(83.0, 0.0, 82.0, 121.1),       # 9 neck/nose
    _dir(-43.0, 0.0, 102.0, 115.0),     # 10 head top
    _dir(-12.0, 136.0, -60.0, 151.0),   # 11 left shoulder
    (0.0, 0.0, -278.9),                 # 12 left elbow
    (0.0, 0.0, -251.7),                 # 13 left wrist
    _dir(-12.0, -136.0, -60.0, 151.0),  # 14 right shoulder
    (0.0, 0.0, -278.9),                 # 15 right elbow
    (0.0, 0.0, -251.7),                 # 16 right wrist
])
"""Offset of each joint from its parent in the rest pose, mm, body frame."""

#: Height of the ankle joint above the floor when the foot is flat, mm
#: (the Human3.6M walking takes' median lowest ankle height is ~31 mm).
ANKLE_HEIGHT_MM = 40.0

_PARENTS = H36M17.parents
_L_HIP, _L_KNEE, _R_HIP, _R_KNEE = 4, 5, 1, 2
_SPINE, _THORAX, _NECK = 7, 8, 9
_L_SHO, _L_ELB, _R_SHO, _R_ELB = 11, 12, 14, 15
_ANKLES = (3, 6)


def rot_x(a: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations by angles ``a`` (radians) about x."""
    a = np.asarray(a, dtype=np.float64)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(a: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations by angles ``a`` (radians) about y."""
    a = np.asarray(a, dtype=np.float64)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(a: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations by angles ``a`` (radians) about z."""
    a = np.asarray(a, dtype=np.float64)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def forward_kinematics(local_R: np.ndarray, root_mm: np.ndarray,
                       offsets_mm: np.ndarray = REST_OFFSETS_MM) -> np.ndarray:
    """Joint positions from per-joint local rotations.

    Args:
        local_R: ``(T, 17, 3, 3)``; ``local_R[:, j]`` rotates the bones leaving
            joint ``j`` (the pelvis's is the body's global orientation).
        root_mm: ``(T, 3)`` pelvis positions, mm.
        offsets_mm: ``(17, 3)`` rest offsets from each joint's parent, mm.

    Returns:
        ``(T, 17, 3)`` float64 positions, mm. Bone lengths equal the offsets'
        norms in every frame.
    """
    T = local_R.shape[0]
    glob = np.empty_like(local_R)
    pos = np.empty((T, len(_PARENTS), 3))
    for j, p in enumerate(_PARENTS):  # parents precede children in H36M17
        if p < 0:
            glob[:, j] = local_R[:, j]
            pos[:, j] = root_mm
        else:
            glob[:, j] = glob[:, p] @ local_R[:, j]
            pos[:, j] = pos[:, p] + glob[:, p] @ offsets_mm[j]
    return pos


class _Pose:
    """Joint angles (radians, ``(T,)`` each) of the simple procedural body model.

    Conventions, body frame x forward / y left / z up: ``*_flex`` swings a
    hanging limb (or the torso, for ``lean``) forward; knee flexion bends the
    shin backward; ``*_abd`` raises an arm or leg sideways, away from the body;
    ``elbow_*_abd`` bends the forearm further outward in the body's frontal
    plane (waving).
    """

    NAMES = ("yaw", "pitch", "roll", "lean", "twist", "nod",
             "hip_l_flex", "hip_r_flex", "hip_l_abd", "hip_r_abd", "knee_l", "knee_r",
             "sho_l_flex", "sho_r_flex", "sho_l_abd", "sho_r_abd",
             "elb_l", "elb_r", "elb_l_abd", "elb_r_abd")

    def __init__(self, T: int):
        self.T = T
        for n in self.NAMES:
            setattr(self, n, np.zeros(T))
        # Arms hang slightly away from the body at rest.
        self.sho_l_abd = np.full(T, np.radians(8.0))
        self.sho_r_abd = np.full(T, np.radians(8.0))

    def local_rotations(self) -> np.ndarray:
        T = self.T
        R = np.broadcast_to(np.eye(3), (T, 17, 3, 3)).copy()
        R[:, 0] = rot_z(self.yaw) @ rot_y(self.pitch) @ rot_x(self.roll)
        R[:, _SPINE] = rot_y(self.lean * 0.6) @ rot_z(self.twist * 0.5)
        R[:, _THORAX] = rot_y(self.lean * 0.4) @ rot_z(self.twist * 0.5)
        R[:, _NECK] = rot_y(self.nod)
        for side, hip, knee, sho, elb in ((1.0, _L_HIP, _L_KNEE, _L_SHO, _L_ELB),
                                          (-1.0, _R_HIP, _R_KNEE, _R_SHO, _R_ELB)):
            s = "l" if side > 0 else "r"
            R[:, hip] = rot_y(-getattr(self, f"hip_{s}_flex")) @ rot_x(side * getattr(self, f"hip_{s}_abd"))
            R[:, knee] = rot_y(getattr(self, f"knee_{s}"))
            R[:, sho] = rot_y(-getattr(self, f"sho_{s}_flex")) @ rot_x(side * getattr(self, f"sho_{s}_abd"))
            R[:, elb] = rot_x(side * getattr(self, f"elb_{s}_abd")) @ rot_y(-getattr(self, f"elb_{s}"))
        return R

    def joints(self, root_mm: np.ndarray | None = None) -> np.ndarray:
        root = np.zeros((self.T, 3)) if root_mm is None else root_mm
        return forward_kinematics(self.local_rotations(), root)


def _deg(x) -> np.ndarray:
    return np.radians(x)


def _on_floor(joints: np.ndarray, lift_mm: np.ndarray | None = None) -> np.ndarray:
    """Shift each frame vertically so the lower ankle is at :data:`ANKLE_HEIGHT_MM` (+ ``lift_mm``)."""
    low = joints[:, _ANKLES, 2].min(axis=1)
    dz = ANKLE_HEIGHT_MM - low + (0.0 if lift_mm is None else lift_mm)
    out = joints.copy()
    out[..., 2] += dz[:, None]
    return out


def _pin_feet(joints: np.ndarray) -> np.ndarray:
    """Shift each frame horizontally so the ankles' midpoint stays where it is in frame 0."""
    mid = joints[:, _ANKLES, :2].mean(axis=1)
    out = joints.copy()
    out[..., :2] -= (mid - mid[0])[:, None]
    return out


def _path(rng: np.random.Generator, t: np.ndarray, speed_mm_s: float, path: str,
          radius_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Root ``(T, 2)`` xy mm and heading ``(T,)`` rad for travel at ``speed_mm_s``."""
    heading0 = rng.uniform(-np.pi, np.pi)
    if path == "straight":
        heading = np.full_like(t, heading0)
    elif path == "circle":
        direction = rng.choice([-1.0, 1.0])
        heading = heading0 + direction * speed_mm_s / radius_mm * t
    else:
        raise MotionError(f"unknown path {path!r}; use 'circle' or 'straight'")
    dt = np.diff(t, prepend=t[0])
    xy = np.cumsum(speed_mm_s * dt[:, None] * np.stack([np.cos(heading), np.sin(heading)], -1), axis=0)
    return xy, heading


def _gait(rng: np.random.Generator, t: np.ndarray, run: bool, path: str) -> np.ndarray:
    T = len(t)
    p = _Pose(T)
    if run:
        f = rng.uniform(1.3, 1.5)          # strides per second
        stride = rng.uniform(2.2, 2.9)     # m per stride (two steps)
        hip_amp, hip_off, knee_amp, knee_base = 38.0, 12.0, 95.0, 20.0
        lean, arm_amp, elbow = rng.uniform(8, 14), 32.0, rng.uniform(75, 95)
        radius = rng.uniform(2500, 3500)
    else:
        f = rng.uniform(0.85, 1.05)
        stride = rng.uniform(1.25, 1.5)
        hip_amp, hip_off, knee_amp, knee_base = rng.uniform(20, 26), 6.0, 55.0, 5.0
        lean, arm_amp, elbow = rng.uniform(0, 5), rng.uniform(10, 20), rng.uniform(10, 25)
        radius = rng.uniform(1500, 2500)
    phi = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
    for side, ph in (("r", phi), ("l", phi + np.pi)):
        setattr(p, f"hip_{side}_flex", _deg(hip_off + hip_amp * np.sin(ph)))
        # The knee flexes most early in the swing (hip moving forward) and a
        # little at heel strike.
        swing = np.maximum(0, np.cos(ph + np.pi / 6)) ** 2
        load = np.maximum(0, np.cos(ph - 2 * np.pi / 3)) ** 2
        setattr(p, f"knee_{side}", _deg(knee_base + knee_amp * swing + 10 * load))
        # Arms swing opposite to the leg on their side.
        setattr(p, f"sho_{side}_flex", _deg(-arm_amp * np.sin(ph)))
        setattr(p, f"elb_{side}", _deg(elbow + 0.4 * arm_amp * np.maximum(0, -np.sin(ph))))
    p.lean = np.full(T, _deg(lean))
    p.twist = _deg(6 * np.sin(phi))
    p.roll = _deg(3 * np.sin(2 * phi))
    xy, heading = _path(rng, t, stride * f * 1000, path, radius)
    p.yaw = heading
    joints = p.joints()
    lift = (rng.uniform(40, 90) * np.maximum(0, np.sin(2 * phi - np.pi / 3))) if run else None
    joints = _on_floor(joints, lift)
    joints[..., :2] += (xy - joints[:1, 0, :2])[:, None]
    return joints


def _smooth_step(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def _jump(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    T = len(t)
    p = _Pose(T)
    period = rng.uniform(1.5, 2.2)
    v0 = rng.uniform(2000, 2800)            # take-off speed, mm/s
    flight = 2 * v0 / GRAVITY_MM_S2         # seconds in the air
    crouch_t = 0.45                         # countermovement: down and up again
    tau = np.mod(t + rng.uniform(0, period), period)
    # Crouch depth: dip before take-off, absorb after landing.
    dip = np.sin(np.pi * np.clip(tau / crouch_t, 0, 1)) ** 2
    land = tau - crouch_t - flight
    absorb = np.where(land > 0, np.sin(np.pi * np.clip(land / 0.35, 0, 1)) ** 2 * 0.6, 0.0)
    c = np.maximum(dip, absorb)
    in_air = (tau >= crouch_t) & (tau < crouch_t + flight)
    ta = tau - crouch_t
    height = np.where(in_air, v0 * ta - 0.5 * GRAVITY_MM_S2 * ta ** 2, 0.0)
    depth = rng.uniform(0.6, 0.9)
    for side in ("l", "r"):
        setattr(p, f"hip_{side}_flex", _deg(75 * depth * c + 15 * in_air))
        setattr(p, f"knee_{side}", _deg(105 * depth * c + 25 * in_air))
        # Arms swing back in the dip, then up through take-off and flight.
        up = _smooth_step((tau - crouch_t * 0.6) / 0.2) * (1 - _smooth_step((land - 0.1) / 0.3))
        setattr(p, f"sho_{side}_flex", _deg(-45 * dip * (tau < crouch_t * 0.6) + 150 * up))
        setattr(p, f"elb_{side}", _deg(15 + 10 * c))
    p.lean = _deg(35 * depth * c)
    p.yaw = np.full(T, rng.uniform(-np.pi, np.pi))
    joints = _on_floor(p.joints(), height)
    return _pin_feet(joints)


def _wave(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    T = len(t)
    p = _Pose(T)
    f = rng.uniform(1.5, 2.5)
    sides = [rng.choice(["l", "r"])] if rng.random() < 0.7 else ["l", "r"]
    for s in sides:
        # Raise the arm sideways, forearm up, and swing the forearm in the
        # frontal plane; the arm comes up over the first ~0.6 s.
        ramp = _smooth_step(t / 0.6)
        setattr(p, f"sho_{s}_abd", _deg(8 + ramp * rng.uniform(75, 100)))
        setattr(p, f"sho_{s}_flex", _deg(ramp * rng.uniform(0, 20)))
        setattr(p, f"elb_{s}_abd", _deg(ramp * (70 + 28 * np.sin(2 * np.pi * f * t))))
    sway = rng.uniform(0.2, 0.4)
    p.roll = _deg(2 * np.sin(2 * np.pi * sway * t))
    p.nod = _deg(rng.uniform(-10, 10) + 3 * np.sin(2 * np.pi * 0.3 * t))
    p.yaw = np.full(T, rng.uniform(-np.pi, np.pi))
    p.hip_l_abd = p.hip_r_abd = np.full(T, _deg(rng.uniform(2, 6)))
    return _pin_feet(_on_floor(p.joints()))


def _squat(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    T = len(t)
    p = _Pose(T)
    period = rng.uniform(2.5, 4.0)
    depth = rng.uniform(0.6, 1.0)
    c = depth * (0.5 - 0.5 * np.cos(2 * np.pi * t / period))
    for s in ("l", "r"):
        # Thighs to horizontal and shins tilted forward (knee ahead of ankle)
        # at full depth; arms forward for balance.
        setattr(p, f"hip_{s}_flex", _deg(90 * c))
        setattr(p, f"knee_{s}", _deg(115 * c))
        setattr(p, f"hip_{s}_abd", _deg(8 + 6 * c))
        setattr(p, f"sho_{s}_flex", _deg(85 * c))
        setattr(p, f"elb_{s}", _deg(10 + 10 * c))
    p.lean = _deg(40 * c)
    p.nod = _deg(-20 * c)
    p.yaw = np.full(T, rng.uniform(-np.pi, np.pi))
    return _pin_feet(_on_floor(p.joints()))


#: Dive body positions: joint angles in degrees.
_DIVE_POSITIONS = {
    "straight": dict(hip=0, knee=0, lean=0, sho=175, elb=0, nod=0),
    "pike": dict(hip=125, knee=0, lean=25, sho=95, elb=0, nod=-25),
    "tuck": dict(hip=130, knee=140, lean=30, sho=55, elb=100, nod=-30),
}


def _dive(rng: np.random.Generator, t: np.ndarray, position: str | None = None) -> np.ndarray:
    T = len(t)
    dur = max(t[-1], 1e-6)
    position = position or rng.choice(["tuck", "pike", "straight"])
    if position not in _DIVE_POSITIONS:
        raise MotionError(f"unknown dive position {position!r}; use one of {', '.join(_DIVE_POSITIONS)}")
    # Straight arms-up at take-off, close into the position, open straight
    # again (arms overhead) for the entry.
    close_t, open_t = rng.uniform(0.05, 0.15) * dur, rng.uniform(0.7, 0.85) * dur
    w = _smooth_step((t - close_t) / (0.12 * dur + 1e-6)) * (1 - _smooth_step((t - open_t) / (0.12 * dur + 1e-6)))
    a, s = _DIVE_POSITIONS[position], _DIVE_POSITIONS["straight"]
    p = _Pose(T)

    def blend(k):
        return _deg(s[k] + w * (a[k] - s[k]))
    for side in ("l", "r"):
        setattr(p, f"hip_{side}_flex", blend("hip"))
        setattr(p, f"knee_{side}", blend("knee"))
        setattr(p, f"sho_{side}_flex", blend("sho"))
        setattr(p, f"elb_{side}", blend("elb"))
        setattr(p, f"sho_{side}_abd", _deg(np.full(T, 4.0)))
    p.lean, p.nod = blend("lean"), blend("nod")
    body = p.joints()                                   # pelvis at origin, upright, facing +x
    body -= body.mean(axis=1, keepdims=True)            # about the centre (joint centroid)
    # Somersault about the lateral (y) axis; angular momentum is conserved,
    # so the rate is inversely proportional to the moment of inertia (joints
    # as equal point masses): tucking spins faster, opening slows the spin.
    inertia = (body[..., 0] ** 2 + body[..., 2] ** 2).sum(axis=1)
    # Half-integer somersaults (1½, 2½, …) so the diver enters the water head first.
    turns = (rng.choice([1.5, 2.5]) if position != "straight" else rng.choice([0.5, 1.5])) + rng.uniform(-0.05, 0.05)
    dt = np.diff(t, prepend=t[0])
    theta = np.cumsum(dt / inertia)
    theta = theta / max(theta[-1], 1e-12) * 2 * np.pi * turns
    R = rot_y(theta)                                    # forward somersault: head towards +x
    return np.einsum("tij,tkj->tki", R, body)


def procedural_motion(action: str, rng: np.random.Generator, fps: float, duration_s: float, *,
                      path: str = "circle", name: str | None = None) -> Motion:
    """A seeded procedural motion on the rest skeleton :data:`REST_OFFSETS_MM`.

    Args:
        action: one of :data:`PROCEDURAL_ACTIONS`.
        rng: randomness for speed, amplitude, phase, heading, dive position…
        fps: frames per second.
        duration_s: length in seconds (``round(duration_s * fps) + 1`` frames).
        path: ``"circle"`` (stays within a few metres, for static cameras) or
            ``"straight"`` (for a camera that pans along); walk and run only.
        name: motion name (default ``"procedural/<action>"``).

    Returns:
        A :class:`Motion` with ``(T, 17, 3)`` mm joints, world z up. Walk,
        run, jump, wave and squat stand on the floor (the lower ankle at
        :data:`ANKLE_HEIGHT_MM`, except in flight). ``dive`` is the diver's
        body only: centred on its joint centroid at the origin in every frame,
        somersaulting about the world y axis (facing +x at the start); the
        dive scenario adds the ballistic trajectory.
    """
    if action not in PROCEDURAL_ACTIONS:
        raise MotionError(f"unknown procedural action {action!r}; choose one of {', '.join(PROCEDURAL_ACTIONS)}")
    if fps <= 0 or duration_s <= 0:
        raise MotionError(f"fps and duration must be positive, got fps={fps}, duration_s={duration_s}")
    T = int(round(duration_s * fps)) + 1
    t = np.arange(T) / fps
    if action in ("walk", "run"):
        joints = _gait(rng, t, run=action == "run", path=path)
    elif action == "jump":
        joints = _jump(rng, t)
    elif action == "wave":
        joints = _wave(rng, t)
    elif action == "squat":
        joints = _squat(rng, t)
    else:
        joints = _dive(rng, t)
    return Motion(name or f"procedural/{action}", "", action, float(fps), joints.astype(np.float32), "procedural")
