"""The full image → 2D → 3D chain: a trained 2D heatmap network feeds a lifter, scored like any lifter.

:func:`predict_chain` runs a :class:`~selfpose.lifting.heatmap2d.Heatmap2D`
over every frame of an image store (e.g. ``selfpose synth lab``) and returns
the store's :class:`~selfpose.lifting.data.LiftingArrays` — 3D labels, cameras,
subjects, actions, takes exactly as :func:`~selfpose.lifting.data.load_arrays`
reads them — with ``joints2d`` replaced by the network's predictions (every
joint visible: a soft-argmax always answers), plus the label 2D and the pooled
features. Any lifter then runs on it unchanged (``Lifter.predict(arrays)``),
whether it was fit on ground-truth 2D or on predicted 2D of the training
subjects (:func:`predict_chain` on the training store).

:func:`evaluate_chain` scores the chain with
:func:`selfpose.evaluation.metrics.evaluate_poses` (MPJPE, N-MPJPE, P-MPJPE,
pelvis-centred camera frame, mm; overall, per action, action average: the
layout of ``selfpose evaluate``) and adds the 2D error of the first link
(:func:`~selfpose.lifting.heatmap2d.errors_2d`, px, joints inside the frame).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selfpose.errors import SelfposeError
from selfpose.lifting.data import LiftingArrays


class ImageChainError(SelfposeError, RuntimeError):
    """The image → 2D → 3D chain cannot be run on this data."""


@dataclass
class ChainInputs:
    """What the 2D network made of an image store, row-aligned with ``load_arrays`` of the same store.

    Attributes:
        arrays: the store's lifting arrays with ``joints2d`` = predicted px and ``visible`` = 1.
        joints2d_true: ``(N, J, 2)`` float32 the stored 2D labels, px.
        features: ``(N, C)`` float32 pooled backbone features of each frame.
    """

    arrays: LiftingArrays
    joints2d_true: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.arrays)

    def with_features(self) -> LiftingArrays:
        """The arrays with :attr:`features` attached: the input of a lifter trained on 2D + image features."""
        return dataclasses.replace(self.arrays, features=self.features)

    def inputs_for(self, lifter) -> LiftingArrays:
        """:attr:`arrays`, with the image features when ``lifter`` was trained with them."""
        return self.with_features() if lifter.feature_dim else self.arrays

    def inside(self) -> np.ndarray:
        """``(N, J)`` bool: the label lies inside its frame (what the 2D network is scored on)."""
        j2, hw = self.joints2d_true, self.arrays.image_hw
        with np.errstate(invalid="ignore"):
            return (np.isfinite(j2).all(-1) & (j2 >= 0).all(-1) & (j2[..., 0] <= hw[:, None, 1])
                    & (j2[..., 1] <= hw[:, None, 0]))

    def save(self, path: str | Path) -> Path:
        """Cache the predictions (2D, features, row sequence ids) as one ``.npz``; see :func:`load_chain`."""
        path = Path(path)
        np.savez(path, joints2d=self.arrays.joints2d, features=self.features, sequences=self.arrays.sequences,
                 frame_ids=self.arrays.frame_ids)
        return path


def _with_predictions(arrays: LiftingArrays, joints2d: np.ndarray, features: np.ndarray) -> ChainInputs:
    if joints2d.shape != arrays.joints2d.shape or len(features) != len(arrays):
        raise ImageChainError(f"2D predictions have shape {joints2d.shape} but the store has "
                              f"{arrays.joints2d.shape}; predict the same store and subjects again")
    pred = dataclasses.replace(arrays, joints2d=joints2d.astype(np.float32),
                               visible=np.ones(joints2d.shape[:2], np.float32))
    return ChainInputs(pred, arrays.joints2d, features.astype(np.float32))


def predict_chain(model, data, subjects=None, progress: bool = False) -> ChainInputs:
    """Run the 2D network ``model`` (a :class:`~selfpose.lifting.heatmap2d.Heatmap2D`) over the image store ``data``.

    Args:
        model: the trained 2D network (its frame size must be the store's).
        data: an image store with ``frames``, ``joints2d``, ``joints3d`` and cameras.
        subjects: only these subjects (e.g. ``["S8"]``); None = all.

    Returns:
        :class:`ChainInputs` whose rows are those of ``load_arrays(data, subjects)``.
    """
    from selfpose.data.store import Dataset
    from selfpose.lifting.data import load_arrays
    from selfpose.lifting.heatmap2d import frame_index

    arrays = load_arrays(data, subjects)
    ds = Dataset.open(data)
    if subjects:
        ds = ds.select(subjects=set(subjects))
    missing = [r.id for r in ds if not r.has("frames")]
    if missing:
        raise ImageChainError(f"sequence {missing[0]} of {data} has no frames; the image chain needs an image "
                              "dataset (e.g. `selfpose synth lab`), not a keypoint one")
    index = frame_index(ds)
    ids = np.array([r.id for r in ds])[index[:, 0]]
    if len(ids) != len(arrays) or not (ids == arrays.sequences).all():
        raise ImageChainError(f"frames of {data} do not line up with its keypoint arrays; re-prepare the dataset")
    p = model.predict(ds, index, progress=progress)
    return _with_predictions(arrays, p.joints2d, p.features)


def load_chain(path: str | Path, data, subjects=None) -> ChainInputs:
    """The :class:`ChainInputs` cached by :meth:`ChainInputs.save` for the store ``data`` (same ``subjects``)."""
    from selfpose.lifting.data import load_arrays

    arrays = load_arrays(data, subjects)
    with np.load(path) as z:
        if len(z["sequences"]) != len(arrays) or not (z["sequences"].astype(str) == arrays.sequences).all():
            raise ImageChainError(f"{path} holds predictions of other frames than {data} ({subjects or 'all'}); "
                                  "delete it and predict again")
        return _with_predictions(arrays, z["joints2d"], z["features"])


def evaluate_chain(lifter, chain: ChainInputs) -> dict:
    """Score ``lifter`` (a :class:`~selfpose.lifting.train.Lifter`) on the chain's predicted 2D.

    Returns:
        :func:`~selfpose.evaluation.metrics.evaluate_poses`' layout (``overall``,
        ``per_action``, ``action_average``; mm) plus ``"2d"``: the first link's
        :func:`~selfpose.lifting.heatmap2d.errors_2d` on joints inside the frame,
        and ``num_samples``/``excluded_frames`` (frames without finite 3D).
    """
    from selfpose.evaluation.metrics import evaluate_poses
    from selfpose.lifting.heatmap2d import errors_2d

    a = chain.arrays
    usable = np.isfinite(a.joints3d).all(axis=(1, 2))
    if not usable.any():
        raise ImageChainError("no frame has finite 3D labels: nothing to score")
    pred = lifter.predict(chain.inputs_for(lifter))
    res = evaluate_poses(pred[usable], a.joints3d[usable], actions=list(a.actions[usable]))
    res["2d"] = errors_2d(a.joints2d, chain.joints2d_true, mask=chain.inside())
    res.update({"num_samples": len(a), "excluded_frames": int((~usable).sum())})
    return res


__all__ = ("ChainInputs", "ImageChainError", "evaluate_chain", "load_chain", "predict_chain")
