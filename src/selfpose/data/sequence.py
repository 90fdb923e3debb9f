"""The sequence: one video of one subject from one camera, with its labels.

A sequence's metadata (:class:`SequenceMeta`) is small and JSON-serialisable;
its data are named arrays whose names, shapes, dtypes and units are fixed by
:data:`ARRAY_SPECS` so that every loader, renderer and model agrees on them.
Views of one take share ``take`` and ``frame_ids``: frame ``frame_ids[i]`` of
two views of the same take was recorded at the same instant.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from selfpose.geometry.camera import Camera


@dataclass(frozen=True)
class ArraySpec:
    """Shape (with ``T`` frames, ``H``×``W`` pixels, ``J`` joints), dtype and meaning."""

    shape: tuple[str | int, ...]
    dtype: str
    doc: str
    temporal: bool = True


ARRAY_SPECS: dict[str, ArraySpec] = {
    "frames": ArraySpec(("T", "H", "W", 3), "uint8", "RGB frames"),
    "frame_ids": ArraySpec(("T",), "int64", "index of each stored frame in its take (shared across views)"),
    "masks": ArraySpec(("T", "H", "W"), "uint8", "foreground masks, 1 = person"),
    "boxes": ArraySpec(("T", 4), "float32", "person boxes x0, y0, x1, y1 in pixels of the stored frame"),
    "joints2d": ArraySpec(("T", "J", 2), "float32", "2D joints, pixels of the stored frame, house order; NaN = unknown"),
    "joints2d_conf": ArraySpec(("T", "J"), "float32", "2D joint confidence in [0, 1] (1 = ground truth)"),
    "joints2d_outside": ArraySpec(("T", "J"), "bool", "2D joint lies outside the image (kept, flagged)"),
    "joints3d": ArraySpec(("T", "J", 3), "float32", "3D joints, camera frame, millimetres, house order"),
    "camera_R": ArraySpec(("T", 3, 3), "float32", "per-frame world→camera rotation (moving cameras)"),
    "camera_t": ArraySpec(("T", 3), "float32", "per-frame world→camera translation, mm (moving cameras)"),
    "background": ArraySpec(("H", "W", 3), "uint8", "estimated background, one image (static camera)", temporal=False),
    "backgrounds": ArraySpec(("T", "H", "W", 3), "uint8", "estimated background per frame (moving camera)"),
    "true_background": ArraySpec(("H", "W", 3), "uint8", "true background (synthetic, static camera)", temporal=False),
    "true_backgrounds": ArraySpec(("T", "H", "W", 3), "uint8", "true background per frame (synthetic, moving camera)"),
}

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_id(*parts: str) -> str:
    """A file-system-safe sequence id made of ``parts`` (``'S1/walk 1'`` → ``'S1_walk_1'``)."""
    return "__".join(_SAFE.sub("_", str(p)).strip("_") or "x" for p in parts if p != "")


@dataclass
class SequenceMeta:
    """Everything about a sequence except its arrays.

    Attributes:
        id: unique, file-system-safe name within its dataset.
        subject: who is filmed (for synthetic data: the rendered identity).
        action: what they do.
        take: recording id; views of one take share it and their frame ids.
        view: camera name within the take.
        fps: frames per second of the *stored* frames.
        num_frames: ``T``.
        height, width: stored frame size in pixels.
        camera: intrinsics (and extrinsics when known) at the stored size.
        scenario: ``lab``/``dive``/``pan``/``wild`` for synthetic data,
            ``static``/``moving`` camera for real data when known.
        attrs: free-form extra facts (source file, motion name, ...).
    """

    id: str
    subject: str
    action: str
    take: str
    view: str
    fps: float
    num_frames: int
    height: int
    width: int
    camera: Camera | None = None
    scenario: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["camera"] = None if self.camera is None else self.camera.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SequenceMeta":
        d = dict(d)
        cam = d.pop("camera", None)
        return cls(camera=None if cam is None else Camera.from_dict(cam), **d)


def outside_image(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(...)`` bool: pixels ``(..., 2)`` outside the image ``[-0.5, W-0.5] × [-0.5, H-0.5]``.

    Integer pixel coordinates are pixel centres (OpenCV), so the image's edge
    is half a pixel beyond the outer centres. NaN (unknown) is not outside.
    This is what the ``joints2d_outside`` array flags.
    """
    uv = np.asarray(uv)
    u, v = uv[..., 0], uv[..., 1]
    with np.errstate(invalid="ignore"):
        return (u < -0.5) | (u > width - 0.5) | (v < -0.5) | (v > height - 0.5)


def check_array(name: str, arr: np.ndarray, meta: SequenceMeta, num_frames: int | None = None) -> np.ndarray:
    """Validate ``arr`` against :data:`ARRAY_SPECS` and cast it to the spec's dtype.

    ``num_frames`` is the expected leading size of a temporal chunk (defaults
    to the whole sequence).
    """
    if name not in ARRAY_SPECS:
        raise KeyError(f"unknown sequence array {name!r}; known: {', '.join(ARRAY_SPECS)}")
    spec = ARRAY_SPECS[name]
    arr = np.asarray(arr)
    sizes = {"T": meta.num_frames if num_frames is None else num_frames, "H": meta.height, "W": meta.width}
    if arr.ndim != len(spec.shape):
        raise ValueError(f"{meta.id}: {name} must have shape {spec.shape}, got {arr.shape}")
    for axis, (want, got) in enumerate(zip(spec.shape, arr.shape)):
        if want == "J":
            continue
        expected = sizes.get(want, want) if isinstance(want, str) else want
        if expected is not None and got != expected:
            raise ValueError(f"{meta.id}: {name} must have shape {spec.shape} = "
                             f"{tuple(sizes.get(s, s) for s in spec.shape)}, got {arr.shape} (axis {axis})")
    if spec.dtype == "uint8" and arr.dtype != np.uint8:
        raise TypeError(f"{meta.id}: {name} must be uint8, got {arr.dtype}")
    return arr.astype(spec.dtype, copy=False)
