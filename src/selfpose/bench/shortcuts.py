"""Reference rows of the lab benchmark that see no pixels: where the person stands, and which camera filmed them.

A benchmark measures pose only if these lose clearly to the methods. On a
static-camera lab render the box's position and size, plus the camera index,
can tell a lot about the pose (a crouching person's box is short and wide, a
person far to the left of camera 2 is facing it…): the issue-14 probes found
such a regressor beating every learned feature. Two readers of the same input
(:func:`selfpose.pose.probes.box_camera_inputs`: box centre, size and aspect
relative to the frame, one-hot camera), both fitted on the labelled training
frames of the share:

- ``box_camera_ridge``: closed-form ridge regression (:func:`~selfpose.pose.probes.ridge_fit`);
- ``box_camera_knn``: the mean pose of the 10 nearest labelled frames (:func:`~selfpose.pose.probes.knn_predict`).

Inputs are standardised with the training rows' statistics; the targets are
pelvis-centred 3D in the camera frame (mm), scored like every cell.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Reference names → the reader of the box + camera input.
SHORTCUTS = ("box_camera_ridge", "box_camera_knn")
#: Ridge weight (relative to the mean diagonal of XᵀX): a handful of well-conditioned inputs need little.
RIDGE_ALPHA = 1e-3
#: Neighbours averaged by the k-NN reader.
KNN_K = 10


def box_camera_cell(train_dir: Path, test_dir: Path, share: float, seed: int, kind: str) -> dict:
    """One shortcut reference cell: ``kind`` in :data:`SHORTCUTS`, trained on ``share`` of the training labels.

    Returns:
        The cell's metrics (``n_mpjpe``, ``mpjpe``, ``p_mpjpe`` mm), ``frames``
        (test), ``labelled`` (training rows) and ``box_iou`` None (no detector).

    Raises:
        BenchmarkError: the stores hold no person boxes, or ``kind`` is unknown.
    """
    from selfpose.bench.run import BenchmarkError
    from selfpose.data.store import Dataset
    from selfpose.evaluation.metrics import mpjpe, n_mpjpe, p_mpjpe
    from selfpose.pose.features import label_arrays
    from selfpose.pose.labels import label_subset
    from selfpose.pose.probes import box_camera_inputs, knn_predict, ridge_fit, ridge_predict, standardise

    if kind not in SHORTCUTS:
        raise BenchmarkError(f"unknown shortcut reference {kind!r}; choose from {', '.join(SHORTCUTS)}")
    train, test = Dataset.open(train_dir), Dataset.open(test_dir)
    tr = label_arrays(train, label_subset(train, share, seed=seed))
    te = label_arrays(test, label_subset(test, 1.0))
    for name, a in (("training", tr), ("test", te)):
        if a.get("boxes") is None:
            raise BenchmarkError(f"the {name} data hold no person boxes; the box + camera references need them "
                                 "(render with `selfpose synth`, or drop them from `references`)")
    views = sorted(set(tr["views"].tolist()))
    x_tr, x_te = standardise(box_camera_inputs(tr["boxes"], tr["frame_hw"], tr["views"], views),
                             box_camera_inputs(te["boxes"], te["frame_hw"], te["views"], views))
    y, t = tr["joints3d"].astype(np.float64), te["joints3d"].astype(np.float64)   # both pelvis-centred
    J = y.shape[1]
    if kind == "box_camera_ridge":
        pred = ridge_predict(ridge_fit(x_tr, y, RIDGE_ALPHA), x_te, (J, 3))
    else:
        pred = knn_predict(x_tr, y, x_te, k=KNN_K)
    pred = np.ascontiguousarray(pred)
    return {"n_mpjpe": float(n_mpjpe(pred, t)), "mpjpe": float(mpjpe(pred, t)), "p_mpjpe": float(p_mpjpe(pred, t)),
            "frames": int(len(t)), "box_iou": None, "labelled": int(len(y))}
