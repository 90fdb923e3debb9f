"""Keypoint datasets → arrays for lifting 2D to 3D, and the lifter's input encoding.

A lifter reads a store with ``joints2d`` (px) and ``joints3d`` (camera frame,
mm) per frame — e.g. ``selfpose prepare mocap`` — and never touches a frame.

What a lifter is fed (:func:`encode_2d`), per frame, and why:

1. **Root-centred 2D.** The pelvis's 2D position is subtracted (the midpoint of
   the visible hips when the pelvis is missing, else the mean of the visible
   joints): the target is pelvis-centred 3D, so where the person stands in the
   image should not matter much.
2. **Scaled by the focal length** (``input_norm="focal"``, default, needs the
   sequence's camera): ``(u − u_root) / f`` is the angle a limb subtends, the
   same for a 1000-px and a 500-px image of the same view. ``"image"`` divides
   by half the image width instead (VideoPose3D's normalisation), for data
   without intrinsics.
3. **The root's own position** ``((u_root − c_x)/f, (v_root − c_y)/f)`` (or the
   image-scaled equivalent) as 2 extra inputs: a person off the optical axis is
   seen obliquely, which the centred 2D alone cannot tell.
4. **Visibility** ``(J,)`` 0/1: a missing joint (NaN after 2D noise, see
   :mod:`selfpose.lifting.noise`) has its coordinates set to 0 — after the
   per-input z-scoring fitted on the training set, i.e. the training mean — and
   its visibility to 0, so the network can tell "missing" from "at the mean".

So ``in_dim = 2J + 2 + J`` (53 for J = 17), plus ``F`` image-feature columns
when :attr:`LiftingArrays.features` is set (the image path). Targets: pelvis-centred 3D in the
camera frame, mm, ``(N, J, 3)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from selfpose.errors import SelfposeError

InputNorm = Literal["focal", "image"]
PELVIS, HIPS = 0, (1, 4)


class LiftingDataError(SelfposeError, ValueError):
    """The dataset cannot be read for lifting (no 2D, no 3D, no camera where one is needed)."""


@dataclass
class LiftingArrays:
    """All frames of a keypoint dataset (or a selection), flat.

    Attributes:
        joints2d: ``(N, J, 2)`` float32 px (as stored: distorted projection).
        joints3d: ``(N, J, 3)`` float32 mm, camera frame, pelvis-centred; None without 3D.
        visible: ``(N, J)`` float32 0/1 (stored 2D that is NaN counts as missing).
        image_hw: ``(N, 2)`` float32 image height and width, px.
        focal: ``(N, 2)`` float32 ``(fx, fy)`` px; NaN where the sequence has no camera.
        principal: ``(N, 2)`` float32 ``(cx, cy)`` px; NaN likewise.
        subjects, actions, takes, sequences: ``(N,)`` str.
        frame_ids: ``(N,)`` int64 frame id within its take.
        has3d: ``(N,)`` bool, whether the frame's 3D label was read (False for
            2D-only subjects, whose ``joints3d`` rows are NaN and never read).
        features: optional ``(N, F)`` float32 per-frame image features (e.g. the
            2D network's pooled backbone features, :mod:`selfpose.lifting.image_chain`),
            appended to the encoded 2D by :func:`encode` so that a lifter sees
            the image as well as the keypoints (Wang et al.'s transformer input).

    Each sequence's frames are contiguous and in time order (temporal lifters
    cut their windows from them, :mod:`selfpose.lifting.windows`).
    """

    joints2d: np.ndarray
    joints3d: np.ndarray | None
    visible: np.ndarray
    image_hw: np.ndarray
    focal: np.ndarray
    principal: np.ndarray
    subjects: np.ndarray
    actions: np.ndarray
    takes: np.ndarray
    sequences: np.ndarray
    frame_ids: np.ndarray
    has3d: np.ndarray | None = None
    features: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.features is not None and (self.features.ndim != 2 or len(self.features) != len(self.joints2d)):
            raise LiftingDataError(f"features must be (N, F) with N = {len(self.joints2d)} frames, "
                                   f"got {self.features.shape}")
        if self.has3d is None:
            self.has3d = (np.zeros(len(self.joints2d), bool) if self.joints3d is None
                          else np.isfinite(self.joints3d).all(axis=(1, 2)))

    def __len__(self) -> int:
        return len(self.joints2d)

    @property
    def num_joints(self) -> int:
        return int(self.joints2d.shape[1])

    def subset(self, mask_or_index: np.ndarray) -> "LiftingArrays":
        """The frames selected by a bool mask or an index array."""
        pick = lambda a: None if a is None else a[mask_or_index]  # noqa: E731
        return LiftingArrays(**{k: pick(v) for k, v in self.__dict__.items()})


def load_arrays(data: str | Path, subjects=None, require_3d: bool = True, labels_3d=None,
                splits=None) -> LiftingArrays:
    """Read every frame of the store ``data`` (optionally only ``subjects``) for lifting.

    ``splits``: keep only sequences whose ``attrs["split"]`` is one of these
    (HumanEva-I's ``Train``/``Validate`` chunks, see :mod:`selfpose.lifting.humaneva`).

    ``labels_3d``: when given, only these subjects' 3D labels are read; the
    other subjects' sequences are 2D-only (``has3d`` False, ``joints3d`` NaN) —
    their ``joints3d`` array is never opened (the 2D-only training of
    ``pose_machine`` must not see it; ``tests/lifting`` asserts this).

    Raises:
        LiftingDataError: no sequence selected, a sequence without ``joints2d``
            (or without ``joints3d`` when ``require_3d``).
    """
    from selfpose.data.store import Dataset

    ds = Dataset.open(data)
    if subjects:
        wanted = set(subjects)
        have = ds.subjects()
        ds = ds.select(subjects=wanted)
        if not len(ds):
            raise LiftingDataError(f"no sequence of {data} has subjects {', '.join(sorted(wanted))} (it has "
                                   f"{', '.join(have)}); choose others (fit-lifter: train_subjects=...)")
    if not len(ds):
        raise LiftingDataError(f"{data} holds no sequence")
    records = list(ds)
    if splits:
        found = sorted({str((r.meta.attrs or {}).get("split")) for r in records})
        records = [r for r in records if (r.meta.attrs or {}).get("split") in set(splits)]
        if not records:
            raise LiftingDataError(f"no sequence of {data} is in split {', '.join(splits)} (its splits: "
                                   f"{', '.join(found)}); choose others")
    parts: dict[str, list] = {k: [] for k in ("j2", "j3", "hw", "f", "c", "sub", "act", "take", "seq", "fid")}
    for rec in records:
        if not rec.has("joints2d"):
            raise LiftingDataError(f"sequence {rec.id} of {data} has no joints2d; a lifter needs 2D keypoints "
                                   "(prepare the data with `selfpose prepare mocap`)")
        n = len(rec)
        parts["j2"].append(np.asarray(rec["joints2d"], np.float32))
        labelled = labels_3d is None or rec.meta.subject in labels_3d
        if labelled and rec.has("joints3d"):
            j3 = np.asarray(rec["joints3d"], np.float32)
            parts["j3"].append(j3 - j3[:, PELVIS:PELVIS + 1])
        elif require_3d and labelled:
            raise LiftingDataError(f"sequence {rec.id} of {data} has no joints3d; training and evaluation need 3D")
        else:
            parts["j3"].append(np.full((n, parts["j2"][-1].shape[1], 3), np.nan, np.float32))
        m, cam = rec.meta, rec.meta.camera
        parts["hw"].append(np.tile(np.float32([m.height, m.width]), (n, 1)))
        parts["f"].append(np.tile(np.float32([cam.fx, cam.fy] if cam else [np.nan, np.nan]), (n, 1)))
        parts["c"].append(np.tile(np.float32([cam.cx, cam.cy] if cam else [np.nan, np.nan]), (n, 1)))
        for key, v in (("sub", m.subject), ("act", m.action), ("take", m.take), ("seq", m.id)):
            parts[key].append(np.full(n, v, dtype=object))
        parts["fid"].append(np.asarray(rec["frame_ids"], np.int64) if rec.has("frame_ids") else np.arange(n))
    j2 = np.concatenate(parts["j2"])
    j3 = np.concatenate(parts["j3"])
    return LiftingArrays(
        joints2d=j2, joints3d=j3,
        visible=np.isfinite(j2).all(axis=-1).astype(np.float32),
        image_hw=np.concatenate(parts["hw"]), focal=np.concatenate(parts["f"]),
        principal=np.concatenate(parts["c"]),
        **{name: np.concatenate(parts[key]).astype(str) for name, key in
           (("subjects", "sub"), ("actions", "act"), ("takes", "take"), ("sequences", "seq"))},
        frame_ids=np.concatenate(parts["fid"]), has3d=np.isfinite(j3).all(axis=(1, 2)))


def _root(j2: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """``(N, 2)`` the pelvis, else the midpoint of the visible hips, else the mean of the visible joints (0 if none)."""
    vis = visible > 0
    z = np.where(vis[..., None], j2, 0.0)

    def mean_of(idx) -> tuple[np.ndarray, np.ndarray]:
        cnt = vis[:, idx].sum(1, keepdims=True)
        return z[:, idx].sum(1) / np.maximum(cnt, 1), cnt[:, 0] > 0

    hips, has_hips = mean_of(list(HIPS))
    every, has_any = mean_of(slice(None))
    root = np.where(has_any[:, None], every, 0.0)
    root = np.where(has_hips[:, None], hips, root)
    return np.where(vis[:, PELVIS, None], z[:, PELVIS], root)


def encode_2d(joints2d: np.ndarray, visible: np.ndarray, image_hw: np.ndarray, focal: np.ndarray,
              principal: np.ndarray, input_norm: InputNorm = "focal") -> np.ndarray:
    """The lifter's raw input ``(N, 2J + 2 + J)`` float32 (before z-scoring), see the module docstring.

    Args:
        joints2d: ``(N, J, 2)`` px; NaN where missing.
        visible: ``(N, J)`` 0/1; a non-finite joint counts as missing whatever it says.
        image_hw, focal, principal: ``(N, 2)`` px (see :class:`LiftingArrays`).
        input_norm: ``focal`` or ``image``.

    Missing joints come out as NaN in the coordinate columns (made 0 after
    z-scoring, by :func:`fill_missing`) and 0 in the visibility columns.
    """
    j2 = np.asarray(joints2d, np.float64)
    vis = (np.asarray(visible) > 0) & np.isfinite(j2).all(axis=-1)
    if input_norm == "focal":
        if not np.isfinite(focal).all():
            raise LiftingDataError("input_norm=focal needs each sequence's camera intrinsics; this data has "
                                   "sequences without a camera — use input_norm=image")
        scale = np.asarray(focal, np.float64)                    # (N, 2) fx, fy
        centre = np.asarray(principal, np.float64)
    elif input_norm == "image":
        w = np.asarray(image_hw, np.float64)[:, 1:2]
        scale = np.repeat(w / 2, 2, axis=1)                       # x and y both by half the width
        centre = np.asarray(image_hw, np.float64)[:, ::-1] / 2   # image centre (x, y)
    else:
        raise LiftingDataError(f"input_norm must be 'focal' or 'image', got {input_norm!r}")
    root = _root(j2, vis.astype(np.float32))
    rel = (j2 - root[:, None]) / scale[:, None]
    rel = np.where(vis[..., None], rel, np.nan)
    where = (root - centre) / scale
    n = len(j2)
    return np.concatenate([rel.reshape(n, -1), where, vis.astype(np.float64)], axis=1).astype(np.float32)


def fill_missing(x):
    """Non-finite inputs (missing joints, after z-scoring) → 0; works on numpy arrays and torch tensors."""
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    except ImportError:  # pragma: no cover
        pass
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def noisy_2d(arrays: LiftingArrays, index: np.ndarray, noise, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The 2D of frames ``index`` with detector noise (:func:`selfpose.lifting.noise.corrupt`).

    ``index`` is ``(B,)`` (each frame a clip of one frame: temporal dropouts
    reduce to their per-frame start probabilities) or ``(B, T)`` windows of
    consecutive frames (dropout runs then span frames of a window). Joints
    outside each frame's own image go missing when ``noise.outside_image ==
    "missing"``.

    Returns:
        ``(joints2d (*index.shape, J, 2) px with NaN where missing, visible (*index.shape, J) 0/1)``.
    """
    from selfpose.lifting.noise import corrupt, outside_mask

    index = np.asarray(index)
    clips = index if index.ndim == 2 else index[:, None]
    j2 = arrays.joints2d[clips]
    noisy, vis = corrupt(j2, noise, rng, image_size=None)
    if noise.outside_image == "missing":
        hw = arrays.image_hw[clips]
        with np.errstate(invalid="ignore"):
            gone = outside_mask(noisy, (hw[..., 0:1], hw[..., 1:2]))
        vis = np.where(gone, 0.0, vis).astype(np.float32)
        noisy = np.where(gone[..., None], np.nan, noisy).astype(np.float32)
    vis = vis * arrays.visible[clips]
    if index.ndim == 1:
        noisy, vis = noisy[:, 0], vis[:, 0]
    return noisy, vis


def encode(arrays: LiftingArrays, index=None, input_norm: InputNorm = "focal", noise=None,
           rng: np.random.Generator | None = None) -> np.ndarray:
    """:func:`encode_2d` of the frames ``index`` (default all), optionally through 2D ``noise`` (needs ``rng``).

    ``index`` may be ``(B,)`` frames or ``(B, T)`` windows; the result is ``(*index.shape, in_dim)``,
    ``in_dim = 3J + 2`` plus ``F`` when ``arrays.features`` is set (its columns come last, untouched by noise).
    """
    idx = np.arange(len(arrays)) if index is None else np.asarray(index)
    if noise is not None:
        if rng is None:
            raise LiftingDataError("2D noise needs a seeded rng")
        j2, vis = noisy_2d(arrays, idx, noise, rng)
    else:
        j2, vis = arrays.joints2d[idx], arrays.visible[idx]
    flat = idx.reshape(-1)
    x = encode_2d(j2.reshape(len(flat), *j2.shape[-2:]), vis.reshape(len(flat), -1), arrays.image_hw[flat],
                  arrays.focal[flat], arrays.principal[flat], input_norm)
    if arrays.features is not None:
        x = np.concatenate([x, arrays.features[flat].astype(x.dtype)], axis=1)
    return x.reshape(*idx.shape, x.shape[-1])
