"""Frozen features of stored frames, with their labels: :class:`FeatureSet` and :func:`extract`.

:func:`extract` streams the frames of a frame index (see
:mod:`selfpose.pose.labels`) from the store's memory maps batch by batch
through a *feature function* — the dataset is never loaded whole — and
gathers, for the same rows, every label the pose stage and its evaluation
need (3D in mm pelvis-centred, 2D, boxes, subject, action, take...).

Feature function contract::

    feature_fn(frames: Tensor) -> Tensor | Mapping[str, Tensor]
        frames: float32 (B, 3, H, W) in [0, 1], on ``device``
        returns (B, D) features, or a mapping with "features" (B, D) and
        optionally "boxes" (B, 4) px and "joints2d" (B, J, 2) px, so that a
        model that predicts several things runs once per batch.

    box_fn(frames) -> (B, 4) predicted boxes x0, y0, x1, y1 in px of the frame

    With ``extract(..., pass_boxes=True)`` the feature function is called as
    ``feature_fn(frames, boxes)`` with the stored (true) person boxes ``(B, 4)``
    px of the rows, e.g. to encode the crop a perfect detector would cut.
    A feature function whose attribute ``reads_background`` is true is also
    given ``background=`` the estimated background of each row (float32
    ``(B, 3, H, W)`` in [0, 1], from the store's ``backgrounds`` or
    ``background``; :func:`read_backgrounds`), e.g. to mask the person as the
    method did while pretraining.
    joints2d_fn(frames) -> (B, J, 2) predicted 2D joints in px of the frame
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from selfpose.data.store import Dataset
from selfpose.errors import SelfposeError
from selfpose.pose.labels import check_frames
from selfpose.training.precision import bf16_autocast
from selfpose.utils.progress import track

FeatureFn = Callable[[torch.Tensor], "torch.Tensor | Mapping[str, torch.Tensor]"]

FORMAT = "selfpose-features"
VERSION = 1
_STRINGS = ("sequence_ids", "subjects", "actions", "takes", "views")


class FeatureError(SelfposeError, ValueError):
    """A feature function or feature set is not what the pose stage needs."""


@dataclass
class FeatureSet:
    """Features of N frames and their labels, row-aligned (numpy arrays).

    Attributes:
        features: ``(N, D)`` float32, the (frozen) feature of each frame.
        joints3d: ``(N, J, 3)`` float32 mm, camera frame, **pelvis-centred**
            (joint 0 at the origin); None when the sequences have no 3D.
        root3d: ``(N, 3)`` float32 mm, the pelvis in the camera frame (what
            was subtracted); None with ``joints3d``.
        joints2d: ``(N, J, 2)`` float32 px of the stored frame, the *stored*
            2D (ground truth or an off-the-shelf detector's; NaN = unknown).
        pred_joints2d: ``(N, J, 2)`` float32 px, 2D predicted by the model
            (``joints2d_fn`` or the feature function's "joints2d").
        boxes: ``(N, 4)`` float32 px, stored (true) person boxes.
        pred_boxes: ``(N, 4)`` float32 px, predicted boxes (``box_fn``).
        seq: ``(N,)`` int64 index into the dataset's ``sequences``.
        frame: ``(N,)`` int64 stored frame index within its sequence.
        frame_ids: ``(N,)`` int64 frame id within the take (shared by views).
        frame_hw: ``(N, 2)`` int64 stored frame height, width in px.
        sequence_ids, subjects, actions, takes, views: ``(N,)`` str.
    """

    features: np.ndarray
    seq: np.ndarray
    frame: np.ndarray
    frame_ids: np.ndarray
    frame_hw: np.ndarray
    sequence_ids: np.ndarray
    subjects: np.ndarray
    actions: np.ndarray
    takes: np.ndarray
    views: np.ndarray
    joints3d: np.ndarray | None = None
    root3d: np.ndarray | None = None
    joints2d: np.ndarray | None = None
    pred_joints2d: np.ndarray | None = None
    boxes: np.ndarray | None = None
    pred_boxes: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.features)
        if self.features.ndim != 2:
            raise FeatureError(f"features must be (N, D), got {self.features.shape}")
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None and len(v) != n:
                raise FeatureError(f"FeatureSet.{f.name} has {len(v)} rows, features have {n}")

    def __len__(self) -> int:
        return len(self.features)

    @property
    def dim(self) -> int:
        """``D``, the feature size."""
        return int(self.features.shape[1])

    def subset(self, rows) -> "FeatureSet":
        """The rows ``rows`` (indices, a boolean mask or a slice) of every array."""
        rows = rows if isinstance(rows, slice) else np.asarray(rows)
        return FeatureSet(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[rows]
                             for f in fields(self)})

    def joints2d_input(self) -> np.ndarray | None:
        """The 2D the pose head may use: the model's prediction when present, else the stored 2D (px)."""
        return self.pred_joints2d if self.pred_joints2d is not None else self.joints2d

    # -- persistence: arrays in safetensors, strings in JSON (no pickle) -----------------
    def save(self, path: str | Path) -> Path:
        """Write ``path/features.safetensors`` + ``path/features.json``; returns ``path``."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {f.name: np.ascontiguousarray(getattr(self, f.name)) for f in fields(self)
                  if f.name not in _STRINGS and getattr(self, f.name) is not None}
        save_file(arrays, str(path / "features.safetensors"))
        meta = {"format": FORMAT, "version": VERSION, "rows": len(self),
                **{k: getattr(self, k).tolist() for k in _STRINGS}}
        (path / "features.json").write_text(json.dumps(meta))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FeatureSet":
        """Read a feature set written by :meth:`save`."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = Path(path)
        try:
            meta = json.loads((path / "features.json").read_text())
            arrays = load_file(str(path / "features.safetensors"))
        except (OSError, ValueError, SafetensorError) as e:
            raise FeatureError(f"cannot read a feature set from {path} ({e}); extract the features again") from e
        if meta.get("format") != FORMAT:
            raise FeatureError(f"{path / 'features.json'} is not a {FORMAT} file")
        strings = {k: np.asarray(meta[k], dtype=str) for k in _STRINGS}
        return cls(**arrays, **strings)


def read_arrays(ds: Dataset, frames: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Temporal arrays ``names`` of the rows of a frame index, in row order.

    Reads each sequence's rows with one sorted fancy index on its memory map
    (only those pages are touched). All rows must come from sequences that
    have every name, and frames must share one size.
    """
    f = np.asarray(frames, dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for s in np.unique(f[:, 0]):
        rec = ds.sequences[s]
        rows = np.flatnonzero(f[:, 0] == s)
        idx = f[rows, 1]
        order = np.argsort(idx, kind="stable")
        for name in names:
            arr = rec[name]
            if name not in out:
                out[name] = np.empty((len(f), *arr.shape[1:]), dtype=arr.dtype)
            elif out[name].shape[1:] != arr.shape[1:]:
                raise FeatureError(f"{name} of {rec.meta.id!r} has shape {arr.shape[1:]} per frame, other "
                                   f"sequences {out[name].shape[1:]}; read sequences of one size together")
            out[name][rows[order]] = arr[idx[order]]
    return out


def read_backgrounds(ds: Dataset, frames: np.ndarray) -> np.ndarray:
    """uint8 ``(N, H, W, 3)``: the estimated background of each row of a frame index, in row order — the
    sequence's per-frame ``backgrounds`` (a moving camera) or its one ``background`` (a static camera)."""
    f = np.asarray(frames, dtype=np.int64)
    out: np.ndarray | None = None
    for s in np.unique(f[:, 0]):
        rec = ds.sequences[s]
        rows = np.flatnonzero(f[:, 0] == s)
        if rec.has("backgrounds"):
            bg = np.asarray(rec["backgrounds"][np.sort(f[rows, 1])])[np.argsort(np.argsort(f[rows, 1]))]
        elif rec.has("background"):
            bg = np.broadcast_to(np.asarray(rec["background"]), (len(rows), *rec["background"].shape))
        else:
            raise FeatureError(f"sequence {rec.meta.id!r} of {ds.root} has no estimated background, and the "
                               "features are read with it (pose_background: as_pretrained); prepare the data "
                               "with background estimation, or read the frames as they are "
                               "(method_config.sync.pose_background=keep)")
        if out is None:
            out = np.empty((len(f), *bg.shape[1:]), np.uint8)
        elif out.shape[1:] != bg.shape[1:]:
            raise FeatureError(f"the background of {rec.meta.id!r} has shape {bg.shape[1:]}, other sequences "
                               f"{out.shape[1:]}; read sequences of one size together")
        out[rows] = bg
    return out if out is not None else np.empty((0, 0, 0, 3), np.uint8)


def frames_to_tensor(frames: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` → float32 ``(B, 3, H, W)`` in [0, 1] on ``device`` (converted there)."""
    t = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def _as_numpy(x, name: str, rows: int, tail: tuple[int, ...] | None = None) -> np.ndarray:
    if not isinstance(x, torch.Tensor):
        raise FeatureError(f"{name} must return a torch tensor, got {type(x).__name__}")
    a = x.detach().float().cpu().numpy()
    if a.shape[0] != rows or (tail is not None and a.shape[1:] != tail):
        want = (rows, *tail) if tail is not None else f"({rows}, ...)"
        raise FeatureError(f"{name} returned shape {tuple(a.shape)}, expected {want}")
    return a


def label_arrays(ds: Dataset, f: np.ndarray) -> dict[str, np.ndarray | None]:
    """Per-row labels and metadata of a frame index (no frames)."""
    seqs = [ds.sequences[i] for i in np.unique(f[:, 0])]
    n = len(f)
    metas = [s.meta for s in ds.sequences]
    out: dict[str, np.ndarray | None] = {
        "seq": f[:, 0].copy(), "frame": f[:, 1].copy(),
        "frame_hw": np.array([(metas[i].height, metas[i].width) for i in f[:, 0]], dtype=np.int64).reshape(n, 2),
    }
    for key, attr in (("sequence_ids", "id"), ("subjects", "subject"), ("actions", "action"),
                      ("takes", "take"), ("views", "view")):
        out[key] = np.array([getattr(metas[i], attr) for i in f[:, 0]], dtype=str).reshape(n)
    present = [n_ for n_ in ("frame_ids", "joints3d", "joints2d", "boxes") if all(s.has(n_) for s in seqs)]
    got = read_arrays(ds, f, tuple(present)) if n else {}
    out["frame_ids"] = got["frame_ids"].astype(np.int64) if "frame_ids" in got else f[:, 1].copy()
    if "joints3d" in got:
        j3 = got["joints3d"].astype(np.float32)
        out["root3d"] = j3[:, 0].copy()
        out["joints3d"] = j3 - j3[:, :1]
    for name in ("joints2d", "boxes"):
        if name in got:
            out[name] = got[name].astype(np.float32)
    return out


def extract(feature_fn: FeatureFn, ds: Dataset, frames_index: np.ndarray, batch_size: int = 64,
            box_fn: Callable | None = None, joints2d_fn: Callable | None = None,
            device: str | torch.device = "cpu", autocast: bool | str = False, progress: bool = True,
            pass_boxes: bool = False) -> FeatureSet:
    """Run ``feature_fn`` over the frames of ``frames_index`` and collect their labels.

    Args:
        feature_fn: see the module docstring; called under
            ``torch.inference_mode()`` (put the model in eval mode first).
        ds: the dataset ``frames_index`` refers to.
        frames_index: ``(N, 2)`` rows ``(sequence index, stored frame index)``
            (e.g. from :func:`~selfpose.pose.labels.label_subset`).
        batch_size: frames per call of ``feature_fn``. Batches never mix
            frame sizes; frames are read sequence by sequence in order.
        box_fn, joints2d_fn: optional predicted boxes / 2D (px), see above.
        device: where frames are sent (as uint8, converted there).
        autocast: run the functions under bf16 autocast (outputs are stored
            as float32); ``"auto"``: only where the CPU has native bf16.
        progress: show a progress bar.
        pass_boxes: call ``feature_fn(frames, boxes)`` with the stored person
            boxes ``(B, 4)`` px (float32, on ``device``) of the batch's rows.

    Returns:
        A :class:`FeatureSet` whose rows follow ``frames_index``'s order.
    """
    f = check_frames(ds, frames_index)
    if batch_size < 1:
        raise FeatureError(f"batch_size must be >= 1, got {batch_size}")
    n = len(f)
    labels = label_arrays(ds, f)
    if pass_boxes and labels.get("boxes") is None and n:
        raise FeatureError(f"pass_boxes: the sequences of {ds.root} hold no person boxes to pass")
    wants_bg = bool(getattr(feature_fn, "reads_background", False))
    # Read order: by frame size, then sequence, then frame — sequential memory-map reads,
    # and one frame size per batch.
    hw = labels["frame_hw"]
    order = np.lexsort((f[:, 1], f[:, 0], hw[:, 1], hw[:, 0]))
    batches: list[np.ndarray] = []
    start = 0
    while start < n:
        stop = min(start + batch_size, n)
        size_change = np.flatnonzero((hw[order[start:stop]] != hw[order[start]]).any(axis=1))
        if len(size_change):
            stop = start + int(size_change[0])
        batches.append(order[start:stop])
        start = stop
    feats: np.ndarray | None = None
    pred_boxes = np.full((n, 4), np.nan, np.float32) if box_fn is not None else None
    pred_2d: np.ndarray | None = None
    dev = torch.device(device)
    amp = bf16_autocast(autocast, dev.type)
    with torch.inference_mode():
        for rows in track(batches, "features", total=len(batches), enabled=None if progress else False):
            frames = frames_to_tensor(read_arrays(ds, f[rows], ("frames",))["frames"], dev)
            kw = {"background": frames_to_tensor(read_backgrounds(ds, f[rows]), dev)} if wants_bg else {}
            with amp:
                out = (feature_fn(frames, torch.from_numpy(labels["boxes"][rows]).to(dev), **kw) if pass_boxes
                       else feature_fn(frames, **kw))
                boxes = box_fn(frames) if box_fn is not None else None
                j2d = joints2d_fn(frames) if joints2d_fn is not None else None
            if isinstance(out, Mapping):
                if "features" not in out:
                    raise FeatureError(f"feature_fn returned a mapping without 'features' (keys: {list(out)})")
                boxes = out["boxes"] if boxes is None and "boxes" in out else boxes
                j2d = out["joints2d"] if j2d is None and "joints2d" in out else j2d
                out = out["features"]
            x = _as_numpy(out, "feature_fn", len(rows))
            if x.ndim != 2:
                raise FeatureError(f"feature_fn must return (B, D) features, got shape {x.shape}; flatten them")
            if feats is None:
                feats = np.empty((n, x.shape[1]), np.float32)
            feats[rows] = x
            if boxes is not None:
                if pred_boxes is None:
                    pred_boxes = np.full((n, 4), np.nan, np.float32)
                pred_boxes[rows] = _as_numpy(boxes, "box_fn", len(rows), (4,))
            if j2d is not None:
                a = _as_numpy(j2d, "joints2d_fn", len(rows))
                if pred_2d is None:
                    pred_2d = np.full((n, *a.shape[1:]), np.nan, np.float32)
                pred_2d[rows] = a
    if feats is None:
        feats = np.empty((0, 0), np.float32)
    return FeatureSet(features=feats, pred_boxes=pred_boxes, pred_joints2d=pred_2d, **labels)


def concat_feature_sets(sets) -> FeatureSet:
    """Rows of several :class:`FeatureSet` (same fields present) one after the other."""
    sets = list(sets)
    if not sets:
        raise FeatureError("nothing to concatenate")
    out = {}
    for f in fields(FeatureSet):
        vals = [getattr(s, f.name) for s in sets]
        if any(v is None for v in vals) and not all(v is None for v in vals):
            raise FeatureError(f"cannot concatenate feature sets where only some have {f.name}")
        out[f.name] = None if vals[0] is None else np.concatenate(vals)
    return FeatureSet(**out)


class FeatureCache:
    """The features of one frozen model on one dataset, each frame extracted at most once.

    A benchmark fits a pose head per label share on one run: the shares'
    frames overlap (every share's frames are among the 100% set) and the test
    set is the same for every share, so most frames would be encoded several
    times. :meth:`get` extracts only the frames it has not seen.

    Args:
        feature_fn, ds: as for :func:`extract` (the model in eval mode).
        source: what made the features (the loaded :class:`~selfpose.pretrain.Run`),
            so that a pose folder fitted on them records that exact encoder.
        **extract_kw: further :func:`extract` arguments (batch size, autocast, progress...).
    """

    def __init__(self, feature_fn: FeatureFn, ds: Dataset, source: Any = None, **extract_kw):
        self.feature_fn, self.ds, self.extract_kw, self.source = feature_fn, ds, extract_kw, source
        self._fs: FeatureSet | None = None
        self._keys = np.zeros(0, np.int64)
        self.extracted = 0   # frames encoded so far

    def _key(self, seq: np.ndarray, frame: np.ndarray) -> np.ndarray:
        return seq.astype(np.int64) * (1 << 32) + frame.astype(np.int64)

    def get(self, frames_index: np.ndarray) -> FeatureSet:
        """The :class:`FeatureSet` of ``frames_index`` (rows in its order), extracting the unseen frames."""
        f = check_frames(self.ds, frames_index)
        keys = self._key(f[:, 0], f[:, 1])
        new = ~np.isin(keys, self._keys)
        if new.any():
            _, first = np.unique(keys[new], return_index=True)
            todo = f[new][np.sort(first)]
            fs = extract(self.feature_fn, self.ds, todo, **self.extract_kw)
            self._fs = fs if self._fs is None else concat_feature_sets([self._fs, fs])
            self._keys = np.concatenate([self._keys, self._key(fs.seq, fs.frame)])
            self.extracted += len(todo)
        order = np.argsort(self._keys, kind="stable")
        return self._fs.subset(order[np.searchsorted(self._keys[order], keys)])
