"""Closed-form probes of frozen features and the shortcut inputs they are compared with.

The self-supervised-learning literature reads a representation with probes
that have (almost) no capacity of their own, so that what they score is what
the features already hold: a linear ridge regression solved in closed form and
a k-nearest-neighbour lookup on standardised features. Here they map
``(N, D)`` features to pelvis-centred 3D poses (mm), next to the MLP head of
:mod:`selfpose.pose.fit`.

:func:`box_camera_inputs` builds the *shortcut* input — the person box and the
camera index, no pixels — so that a benchmark can show how much of its score a
method could get from where the person stands.

Every function here is pure (numpy in, numpy out); shapes and units are in
each docstring. Standardisation statistics always come from the training rows
only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from selfpose.errors import SelfposeError


class ProbeError(SelfposeError, ValueError):
    """Probe inputs with wrong shapes, no rows, or non-finite values."""


def _rows(x, name: str, ndim: int = 2) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim or len(a) == 0:
        raise ProbeError(f"{name} must be a non-empty {ndim}-D array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ProbeError(f"{name} holds non-finite values; drop or fill those rows first")
    return a


def scale_of(train, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` ``(D,)`` of the training rows ``(N, D)`` that :func:`standardise` applies.

    A dimension that is constant in training keeps a scale of 1.
    """
    tr = _rows(train, "train")
    std = tr.std(axis=0)
    return tr.mean(axis=0), np.where(std > eps, std, 1.0)


def standardise(train, *others, eps: float = 1e-8) -> tuple[np.ndarray, ...]:
    """Z-score ``train`` ``(N, D)`` and each of ``others`` ``(M, D)`` with the training rows' mean and std.

    A dimension that is constant in training keeps a scale of 1 (it carries no
    information there, and must not blow up elsewhere).

    Returns:
        ``(train_z, *others_z)``, float64.
    """
    tr = _rows(train, "train")
    mean, std = scale_of(tr, eps)
    out = [(tr - mean) / std]
    for i, o in enumerate(others):
        a = _rows(o, f"others[{i}]")
        if a.shape[1] != tr.shape[1]:
            raise ProbeError(f"others[{i}] has {a.shape[1]} columns, train has {tr.shape[1]}")
        out.append((a - mean) / std)
    return tuple(out)


def _flat_poses(y, name: str) -> tuple[np.ndarray, tuple[int, ...]]:
    a = np.asarray(y, dtype=np.float64)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ProbeError(f"{name} must be (N, J, 3) mm, got shape {a.shape}")
    return _rows(a.reshape(len(a), -1), name), a.shape[1:]


def ridge_fit(x, y, alpha: float) -> np.ndarray:
    """Ridge regression weights ``(D + 1, K)``: ``[x, 1] @ W ≈ y`` (flattened), solved in closed form.

    Args:
        x: ``(N, D)`` inputs (standardise them first: the ridge is isotropic).
        y: ``(N, ...)`` targets, ``K`` numbers per row (e.g. ``(N, J, 3)``
            pelvis-centred poses in mm, or one-hot classes).
        alpha: ridge weight, relative to the mean diagonal of ``xᵀx`` (scale-free);
            the bias column is not penalised.
    """
    return ridge_fit_many(x, y, (alpha,))[float(alpha)]


def ridge_fit_many(x, y, alphas: Sequence[float]) -> dict[float, np.ndarray]:
    """:func:`ridge_fit` for several ``alphas`` at once: ``{alpha: (D + 1, K) weights}``.

    ``xᵀx`` and ``xᵀy`` — the O(N·D²) part — are formed once; each alpha costs
    one (D + 1)² solve.
    """
    xa = _rows(x, "x")
    ya = np.asarray(y, dtype=np.float64)
    if ya.ndim < 2:
        raise ProbeError(f"y must be (N, ...) with at least one number per row, got shape {ya.shape}")
    yf = _rows(ya.reshape(len(ya), -1), "y")
    if len(xa) != len(yf):
        raise ProbeError(f"x has {len(xa)} rows, y has {len(yf)}")
    if any(a < 0 for a in alphas):
        raise ProbeError(f"alpha must be >= 0, got {list(alphas)}")
    xb = np.hstack([xa, np.ones((len(xa), 1))])
    gram, xty = xb.T @ xb, xb.T @ yf
    d = xa.shape[1]
    diag = np.arange(d)
    mean_diag = np.trace(gram[:d, :d]) / max(d, 1)
    out = {}
    for a in alphas:
        g = gram.copy()
        g[diag, diag] += float(a) * mean_diag
        out[float(a)] = np.linalg.lstsq(g, xty, rcond=None)[0]
    return out


def ridge_predict(w: np.ndarray, x, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``(N, *shape)`` (default ``(N, K)``) predictions from :func:`ridge_fit`'s weights and ``(N, D)`` inputs.

    E.g. ``shape=(J, 3)`` gives poses in the targets' unit (mm).
    """
    xa = _rows(x, "x")
    if w.shape[0] != xa.shape[1] + 1:
        raise ProbeError(f"weights expect {w.shape[0] - 1} input columns, x has {xa.shape[1]}")
    out = np.hstack([xa, np.ones((len(xa), 1))]) @ w
    return out if shape is None else out.reshape(len(xa), *shape)


def knn_predict(train_x, train_y, test_x, k: int = 10, batch: int | None = None) -> np.ndarray:
    """The mean pose of each test row's ``k`` nearest training rows (Euclidean), ``(M, J, 3)`` mm.

    Args:
        train_x: ``(N, D)`` inputs (standardise them first: distances weigh every column alike).
        train_y: ``(N, J, 3)`` their poses, mm.
        test_x: ``(M, D)``.
        k: neighbours averaged (clipped to ``N``); ties go to the earlier training row.
        batch: test rows per distance block (``batch × N`` float32 at a time); None: blocks of
            about 2²⁵ numbers (128 MB).
    """
    return knn_predict_many(train_x, train_y, test_x, (k,), batch)[min(int(k), len(np.asarray(train_x)))]


def knn_predict_many(train_x, train_y, test_x, ks: Sequence[int], batch: int | None = None) -> dict[int, np.ndarray]:
    """:func:`knn_predict` for several ``k`` at the cost of one neighbour search: ``{k: (M, J, 3) mm}``.

    Each ``k`` is clipped to ``N`` (the key is the clipped value). The
    neighbours of a row are ordered by distance, ties by training row, so the
    ``k`` nearest are the first ``k`` of the ``max(ks)`` nearest. Distances are
    computed in float32: on this machine's BLAS a float64 product of the sizes a
    benchmark meets costs about 25 times the CPU time; neighbours whose squared
    distances differ by less than float32's rounding (~1e-7 relative) may swap places.
    """
    tr = _rows(train_x, "train_x")
    yf, shape = _flat_poses(train_y, "train_y")
    te = _rows(test_x, "test_x")
    if len(tr) != len(yf):
        raise ProbeError(f"train_x has {len(tr)} rows, train_y has {len(yf)}")
    if te.shape[1] != tr.shape[1]:
        raise ProbeError(f"test_x has {te.shape[1]} columns, train_x has {tr.shape[1]}")
    if not len(ks) or min(int(k) for k in ks) < 1:
        raise ProbeError(f"k must be >= 1, got {list(ks)}")
    n = len(tr)
    ks = sorted({min(int(k), n) for k in ks})
    kmax = ks[-1]
    if batch is None:
        batch = max(1, (1 << 25) // n)
    import torch

    # torch for the product and the selection: its top-k runs on every core, where numpy's partition of a
    # (batch, N) block ran on one and cost three times the product (measured at N = 140,000).
    tr_t = torch.from_numpy(np.ascontiguousarray(tr, dtype=np.float32))
    sq = (tr_t * tr_t).sum(dim=1)
    out = {k: np.empty((len(te), yf.shape[1])) for k in ks}
    for i in range(0, len(te), batch):
        # |a - b|² = |a|² - 2 a·b + |b|²; |b|² is the same along a row and does not change the order
        q = torch.from_numpy(np.ascontiguousarray(te[i:i + batch], dtype=np.float32))
        d_t = torch.addmm(sq[None, :], q, tr_t.T, alpha=-2.0)   # one (batch, N) block, not two
        # One more than kmax: the kmax nearest are a unique set unless the (kmax+1)-th ties the kmax-th, which
        # two sorted columns tell without comparing the whole block against the kmax-th distance (that pass
        # cost a 100% benchmark cell 27 s of its 69-s test search).
        k1 = min(kmax + 1, n)
        dist_t, idx_t = torch.topk(d_t, k1, dim=1, largest=False, sorted=True)
        idx, dist = idx_t[:, :kmax].numpy().astype(np.int64), dist_t[:, :kmax].numpy()
        # Ties at the kmax-th distance: top-k may keep any of the tied rows; the rule is the earliest training
        # rows, so such a row is chosen again exactly from its whole distance row (rare) ...
        if k1 > kmax:
            tied_rows = np.flatnonzero((dist_t[:, kmax] == dist_t[:, kmax - 1]).numpy())
            if len(tied_rows):
                d = d_t.numpy()
                for r in tied_rows:
                    kth = dist[r, kmax - 1]   # top-k is sorted: the kmax-th distance
                    below = np.flatnonzero(d[r] < kth)
                    tied = np.flatnonzero(d[r] == kth)[:kmax - len(below)]
                    idx[r] = np.concatenate([below, tied])
                    dist[r] = d[r, idx[r]]
        # ... ordered by distance, then by training row.
        order = np.lexsort((idx, dist), axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        csum = np.cumsum(yf[idx], axis=1)                # (b, kmax, 3J)
        for k in ks:
            out[k][i:i + batch] = csum[:, k - 1] / k
    return {k: v.reshape(len(te), *shape) for k, v in out.items()}


def linear_classifier_accuracy(train_x, train_labels: Sequence[str], test_x, test_labels: Sequence[str],
                               alpha: float = 1e-3) -> float:
    """Accuracy in [0, 1] of a closed-form ridge classifier (one-hot targets, argmax) from features to labels.

    E.g. how well the subject can be read from a pose code: fit on some takes
    of the training people, score on their other takes (an identity test, so
    the labels of ``test`` must be among those of ``train``). Standardise the
    features first. Chance is about ``1 / classes`` for balanced classes.

    Args:
        train_x, test_x: ``(N, D)``, ``(M, D)`` features.
        train_labels, test_labels: ``(N,)``, ``(M,)`` class names.
        alpha: ridge weight relative to the mean diagonal of ``xᵀx``.

    Raises:
        ProbeError: fewer than two classes, or test labels unseen in training.
    """
    classes = sorted(set(map(str, train_labels)))
    if len(classes) < 2:
        raise ProbeError(f"a classifier needs at least two classes, got {classes}")
    unseen = sorted(set(map(str, test_labels)) - set(classes))
    if unseen:
        raise ProbeError(f"test labels {', '.join(unseen)} never occur in training; a classifier cannot name them")
    col = {c: i for i, c in enumerate(classes)}
    onehot = np.zeros((len(train_labels), len(classes)))
    onehot[np.arange(len(train_labels)), [col[str(c)] for c in train_labels]] = 1.0
    pred = np.argmax(ridge_predict(ridge_fit(train_x, onehot, alpha), test_x), axis=1)
    return float(np.mean(pred == np.array([col[str(c)] for c in test_labels])))


def box_camera_inputs(boxes, frame_hw, views: Sequence[str], view_names: Sequence[str] | None = None) -> np.ndarray:
    """The shortcut input (no pixels): box centre, size and aspect relative to the frame, plus a one-hot camera.

    Args:
        boxes: ``(N, 4)`` person boxes ``x0, y0, x1, y1``, px.
        frame_hw: ``(N, 2)`` frame height, width, px.
        views: ``(N,)`` camera names.
        view_names: the one-hot's column order (default: the sorted names in ``views``);
            a view not in it gets an all-zero row.

    Returns:
        ``(N, 5 + V)`` float64: centre x / width, centre y / height, box width /
        frame width, box height / frame height, log(box height / box width), then
        one column per view.
    """
    b = _rows(boxes, "boxes")
    hw = _rows(frame_hw, "frame_hw")
    if b.shape[1] != 4 or hw.shape != (len(b), 2) or len(views) != len(b):
        raise ProbeError(f"boxes (N, 4), frame_hw (N, 2) and views (N,) must match, got {b.shape}, "
                         f"{hw.shape}, {len(views)}")
    w = np.maximum(b[:, 2] - b[:, 0], 1e-6)
    h = np.maximum(b[:, 3] - b[:, 1], 1e-6)
    geo = np.stack([(b[:, 0] + b[:, 2]) / 2 / hw[:, 1], (b[:, 1] + b[:, 3]) / 2 / hw[:, 0],
                    w / hw[:, 1], h / hw[:, 0], np.log(h / w)], axis=1)
    names = sorted(set(map(str, views))) if view_names is None else [str(v) for v in view_names]
    col = {n: i for i, n in enumerate(names)}
    onehot = np.zeros((len(b), len(names)))
    for r, v in enumerate(map(str, views)):
        if v in col:
            onehot[r, col[v]] = 1.0
    return np.hstack([geo, onehot])


def held_out_subjects(subjects: Sequence[str], held_out: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Row masks ``(train, val)`` that put every row of the ``held_out`` people in validation, none in training.

    Raises:
        ProbeError: a held-out name is not among ``subjects``, or nobody is left to train on.
    """
    s = np.asarray(subjects).astype(str)
    missing = sorted(set(map(str, held_out)) - set(s.tolist()))
    if missing:
        raise ProbeError(f"held-out subjects {', '.join(missing)} are not in the data "
                         f"(it has {', '.join(sorted(set(s.tolist())))})")
    val = np.isin(s, [str(h) for h in held_out])
    if val.all():
        raise ProbeError("every subject is held out: nothing left to train on")
    return ~val, val


def _val_n_mpjpe(pred: np.ndarray, target: np.ndarray) -> float:
    from selfpose.evaluation.metrics import n_mpjpe

    return float(n_mpjpe(np.ascontiguousarray(pred), np.ascontiguousarray(target)))


def select_ridge(train_x, train_y, val_x, val_y, alphas: Sequence[float]) -> tuple[float, dict[float, float]]:
    """The ridge weight with the lowest validation N-MPJPE (mm), fitted on the training rows only.

    Args:
        train_x, val_x: ``(N, D)``, ``(M, D)`` standardised features.
        train_y, val_y: ``(N, J, 3)``, ``(M, J, 3)`` pelvis-centred poses, mm.
        alphas: candidate weights (:func:`ridge_fit`'s ``alpha``); ties go to the earlier one.

    Returns:
        ``(best alpha, {alpha: validation N-MPJPE mm})``.
    """
    if not len(alphas):
        raise ProbeError("no ridge weight to choose from; give at least one alpha")
    _, shape = _flat_poses(train_y, "train_y")
    weights = ridge_fit_many(train_x, train_y, [float(a) for a in alphas])   # one xᵀx for every alpha
    scores = {a: _val_n_mpjpe(ridge_predict(w, val_x, shape), val_y) for a, w in weights.items()}
    return min(scores, key=lambda a: (scores[a], list(scores).index(a))), scores


def select_knn(train_x, train_y, val_x, val_y, ks: Sequence[int]) -> tuple[int, dict[int, float]]:
    """The neighbour count with the lowest validation N-MPJPE (mm), neighbours among the training rows only.

    Arguments as :func:`select_ridge`, with ``ks`` candidate ``k`` of :func:`knn_predict`.

    Returns:
        ``(best k, {k: validation N-MPJPE mm})``.
    """
    if not len(ks):
        raise ProbeError("no neighbour count to choose from; give at least one k")
    preds = knn_predict_many(train_x, train_y, val_x, ks)   # one neighbour search for every k
    n = len(np.asarray(train_x))
    scores = {int(k): _val_n_mpjpe(preds[min(int(k), n)], val_y) for k in ks}
    return min(scores, key=lambda k: (scores[k], list(scores).index(k))), scores
