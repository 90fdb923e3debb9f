"""Analyses of a trained model's codes (docs/design.md §1.1 "Analyses"; Honari et al., TPAMI 2022, §5).

Does the time-variant code ``v`` hold the pose and the time-invariant code
``i`` the appearance? Three answers:

- :func:`transfer_pictures` — swap them: decode ``v`` of one frame with ``i``
  of another (another subject's, when the dataset has several). A
  disentangled model draws row ``r``'s pose in column ``c``'s clothes.
- :func:`kmeans_subject_accuracy` — cluster the codes with KMeans into as many
  clusters as there are subjects and score how well clusters match subjects.
  Appearance codes should cluster by subject (the paper: 96% for ``i`` on
  Human3.6M), pose codes much less (52% for ``v``).
- a pose head trained on ``i`` instead of ``v`` (through a caller-supplied
  fitting callback): it should be clearly worse.

:func:`analyze` runs the last two on a dataset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from selfpose.errors import SelfposeError


class AnalyzeError(SelfposeError, ValueError):
    """An analysis cannot run on this model or data (no decoder/split, too few subjects or frames)."""


# -- KMeans against subject identity -------------------------------------------------------


def kmeans_subject_accuracy(features, subjects, n_clusters: int | None = None, seed: int = 0,
                            normalize: bool = True, n_init: int = 10) -> float:
    """How well KMeans clusters of ``features`` recover subject identity, in [0, 1].

    KMeans (scikit-learn, ``n_clusters`` = number of subjects by default)
    clusters the features; then clusters are matched one-to-one to subjects
    so as to maximise the number of frames whose cluster's subject is their own
    subject (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment`` on
    the cluster × subject contingency table). The accuracy is the fraction of
    frames so matched. With ``n_clusters ≠ #subjects`` only
    ``min(n_clusters, #subjects)`` pairs are matched; frames in unmatched
    clusters count as wrong.

    Reference levels: 1.0 = clusters are the subjects; a clustering unrelated
    to subjects scores about the largest subject's share (1/#subjects when
    balanced), a little above it on small samples because the matching picks
    the luckiest pairing.

    Args:
        features: ``(N, D)`` codes (numpy or torch).
        subjects: ``(N,)`` subject labels (any hashable values: names or ids).
        n_clusters: number of clusters (default: number of distinct subjects).
        seed: KMeans seed.
        normalize: L2-normalise each feature first. The contrastive losses
            (DSL, CSS) shape codes by *cosine* similarity, so their direction,
            not their length, is what carries meaning; on unit vectors KMeans
            groups by angle.
        n_init: KMeans restarts (the best inertia is kept).

    Raises:
        AnalyzeError: fewer than 2 subjects, mismatched lengths, or fewer
            frames than clusters.
    """
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans

    x = np.asarray(features.detach().cpu().numpy() if hasattr(features, "detach") else features, dtype=np.float64)
    s = np.asarray(subjects)
    if x.ndim != 2 or s.shape != (len(x),):
        raise AnalyzeError(f"features must be (N, D) and subjects (N,), got {x.shape} and {s.shape}")
    if not np.isfinite(x).all():
        raise AnalyzeError("features contain NaN or inf; the model diverged or the frames are broken")
    names, labels = np.unique(s, return_inverse=True)
    if len(names) < 2:
        raise AnalyzeError(f"KMeans subject accuracy needs frames of at least 2 subjects, got {len(names)} "
                           f"({', '.join(map(str, names))}); with one subject every clustering is 'right'")
    k = len(names) if n_clusters is None else int(n_clusters)
    if not 1 <= k <= len(x):
        raise AnalyzeError(f"n_clusters must be in [1, {len(x)}] (the number of frames), got {k}")
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    clusters = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(x)
    table = np.zeros((k, len(names)), np.int64)
    np.add.at(table, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(x))


def sample_frames_by_subject(ds, max_frames: int = 2000, key: Callable | None = None) -> np.ndarray:
    """A frame index ``(N, 2)`` (sequence, frame) with up to ``max_frames // #subjects`` frames per subject.

    Each subject's frames (all its sequences, in dataset order, concatenated)
    are sampled at evenly spaced positions, so every subject weighs the same
    and each contributes frames from across its whole recording. Deterministic.
    ``key(sequence) -> str`` groups by something else than ``meta.subject``
    (e.g. :func:`person_of`).
    """
    by_subject: dict[str, list[int]] = {}
    for k, rec in enumerate(ds.sequences):
        if rec.meta.num_frames > 0 and rec.has("frames"):
            by_subject.setdefault(rec.meta.subject if key is None else key(rec), []).append(k)
    if not by_subject:
        raise AnalyzeError(f"dataset {ds.root} has no sequence with frames")
    per = max(1, max_frames // len(by_subject))
    out = []
    for subj in sorted(by_subject):
        seqs = np.array(by_subject[subj])
        lens = np.array([ds.sequences[k].meta.num_frames for k in seqs])
        starts = np.concatenate([[0], np.cumsum(lens)])
        total = int(starts[-1])
        pos = np.unique(np.linspace(0, total - 1, min(per, total)).round().astype(np.int64))
        which = np.searchsorted(starts, pos, side="right") - 1
        out.append(np.stack([seqs[which], pos - starts[which]], axis=1))
    return np.concatenate(out).astype(np.int64)


# -- linear classification of the person ---------------------------------------------------


def person_of(ds) -> tuple[str, Callable]:
    """``(what, key)``: who a sequence shows — its rendered ``identity`` (``meta.attrs``) when every
    sequence records one (a motion subject may be rendered as several people), else its ``subject``."""
    if ds.sequences and all("identity" in (rec.meta.attrs or {}) for rec in ds.sequences):
        return "identity", lambda rec: str(rec.meta.attrs["identity"])
    return "subject", lambda rec: str(rec.meta.subject)


def take_halves(people, takes) -> np.ndarray:
    """``(N,)`` bool, True = classifier-training row: each person's takes (sorted) alternate between
    training and testing, so the classifier is always scored on takes it was not fitted on."""
    people, takes = np.asarray(people).astype(str), np.asarray(takes).astype(str)
    fit = np.zeros(len(people), bool)
    for p in np.unique(people):
        own = sorted(set(takes[people == p].tolist()))
        fit[(people == p) & np.isin(takes, own[0::2])] = True
    return fit


def person_classification(model, ds, max_frames: int = 2000, batch_size: int = 64,
                          progress: bool = True) -> dict[str, Any]:
    """How well a linear classifier reads *who* is filmed from ``v`` and from ``i``, on takes it never saw.

    Frames are sampled evenly per person (:func:`sample_frames_by_subject`,
    person = :func:`person_of`); each person's takes alternate between the
    classifier's training and test rows (:func:`take_halves`); codes are
    standardised with the training rows' statistics and read by a
    closed-form ridge classifier (:func:`selfpose.pose.probes.linear_classifier_accuracy`).
    Run on people never seen in pretraining (the test data) it says how much
    of the person a code keeps for anyone, not only for the people it learnt.

    Returns:
        ``{"label": "identity"|"subject", "people", "frames", "chance", "v", "i"}``:
        accuracies in [0, 1] (``i`` None without an appearance code); ``chance``
        is the largest person's share of the test rows. ``v``/``i`` are None
        (with ``"reason"``) when fewer than two people have two takes or more.
    """
    from selfpose.methods.base import as_method

    method = as_method(model)
    label, key = person_of(ds)
    frames = sample_frames_by_subject(ds, max_frames, key=key)
    people = np.array([key(ds.sequences[s]) for s in frames[:, 0]], dtype=str)
    takes = np.array([ds.sequences[s].meta.take for s in frames[:, 0]], dtype=str)
    fit = take_halves(people, takes)
    both = sorted(set(people[fit].tolist()) & set(people[~fit].tolist()))   # people on both sides
    out: dict[str, Any] = {"label": label, "people": len(both), "frames": 0, "chance": None, "v": None, "i": None}
    if len(both) < 2:
        out["reason"] = f"{len(both)} {label}(s) with two takes or more; a classifier needs two"
        return out
    rows = np.isin(people, both)
    frames, people, fit = frames[rows], people[rows], fit[rows]
    v, i, _ = _codes(method, ds, frames, batch_size, progress)
    codes = {"v": v, "i": i}
    out.update(classify_people(codes, people, fit))
    return out


def classify_people(codes: dict, people, fit) -> dict[str, Any]:
    """Accuracy of a linear classifier of ``people`` from each code, fitted on the ``fit`` rows, scored on the rest.

    Args:
        codes: ``{name: (N, D) features or None}``.
        people: ``(N,)`` who each row shows; every person must have rows on both sides.
        fit: ``(N,)`` bool, True = classifier-training row (e.g. :func:`take_halves`).

    Returns:
        ``{"frames": N, "chance": largest person's share of the scored rows, name: accuracy or None}``.
    """
    from selfpose.pose.probes import linear_classifier_accuracy, standardise

    people, fit = np.asarray(people).astype(str), np.asarray(fit, bool)
    _, counts = np.unique(people[~fit], return_counts=True)
    out: dict[str, Any] = {"frames": int(len(people)), "chance": float(counts.max() / counts.sum())}
    for name, x in codes.items():
        if x is None:
            out[name] = None
            continue
        tr, te = standardise(np.asarray(x)[fit], np.asarray(x)[~fit])
        out[name] = linear_classifier_accuracy(tr, people[fit], te, people[~fit])
    return out


# -- feature functions of a method (its codes) ----------------------------------------------


def _has_i(method) -> bool:
    """Whether the method has an appearance code ``i``."""
    return "i" in method.code_names()


def _codes(model, ds, frames, batch_size: int, progress: bool):
    """``(v (N, Dv), i (N, Di) or None, the extracted FeatureSet)`` of ``frames`` of ``ds``, the model in eval mode."""
    from selfpose.pose.features import extract

    from selfpose.methods.base import as_method
    from selfpose.pose.stage import pose_feature_fn, reads_boxes

    split = _has_i(model)
    with _EvalMode(model):
        v_dim = int(model.feature_dim)
        if reads_boxes(as_method(model)):
            # A method that reads the person at the stored box (e.g. sync's true_box crop) has one code, its pose
            # features, read by the pose stage's own feature function at the stored boxes (float32, no autocast).
            fs = extract(pose_feature_fn(model), ds, frames, batch_size=batch_size,
                         device=next(model.parameters()).device, progress=progress, pass_boxes=True)
            return fs.features, None, fs
        fs = extract(code_fn(model, "vi" if split else "v"), ds, frames, batch_size=batch_size,
                     device=next(model.parameters()).device, progress=progress)
    return fs.features[:, :v_dim], (fs.features[:, v_dim:] if split else None), fs


def code_fn(model, which: str) -> Callable:
    """``frames float32 (B, 3, H, W) in [0, 1] → (B, D)``: the method's ``v`` (pose), ``i`` (appearance) or both.

    ``model``: a :class:`~selfpose.methods.base.Method` (or a bare ``TemporalModel``);
    its ``codes`` give the codes. ``which``: ``"v"``, ``"i"`` or ``"vi"``
    (concatenated ``[v, i]``). The function follows the pose stage's
    feature-function contract (:mod:`selfpose.pose.features`); it does not
    switch the model to eval mode.
    """
    from selfpose.methods.base import as_method

    method = as_method(model)
    if which not in ("v", "i", "vi"):
        raise AnalyzeError(f"which must be 'v', 'i' or 'vi', got {which!r}")
    if "i" in which and not _has_i(method):
        raise AnalyzeError(f"method {method.name!r} has no separate appearance code i (e.g. model.split=false); "
                           "only 'v' (the whole latent) exists")

    def fn(frames):
        import torch

        c = method.codes(frames)
        if which == "v":
            return c["v"]
        if which == "i":
            return c["i"]
        return torch.cat([c["v"], c["i"]], dim=1)

    return fn


class _EvalMode:
    """Context manager: modules in eval mode, their previous modes restored after."""

    def __init__(self, *modules):
        self.modules = [m for m in modules if m is not None and hasattr(m, "train")]

    def __enter__(self):
        self.modes = [m.training for m in self.modules]
        for m in self.modules:
            m.eval()

    def __exit__(self, *exc):
        for m, mode in zip(self.modules, self.modes):
            m.train(mode)


def analyze(model, ds, fit_fn: Callable[[Callable], Any] | None = None, max_frames: int = 2000, seed: int = 0,
            batch_size: int = 64, progress: bool = True) -> dict[str, Any]:
    """KMeans subject accuracy of ``v`` and ``i`` and, optionally, pose from ``i`` vs from ``v``.

    Args:
        model: a :class:`~selfpose.methods.base.Method` (or a bare ``TemporalModel``).
        ds: a :class:`~selfpose.data.store.Dataset` with at least 2 subjects.
        fit_fn: optional pose-fitting callback ``fit_fn(feature_fn) -> result``
            where ``feature_fn`` maps frames float32 ``(B, 3, H, W)`` in [0, 1]
            to ``(B, D)`` features (the pose stage's contract); it should
            train a pose head on those features and return its test N-MPJPE
            (mm) or a dict of metrics. It is called with ``v`` and, for split
            models, with ``i``.
        max_frames: frames sampled for KMeans, evenly across subjects
            (:func:`sample_frames_by_subject`).
        seed: KMeans seed.
        batch_size: frames per forward pass.
        progress: show progress bars.

    Returns:
        ``{"num_frames", "num_subjects", "subjects", "chance", "kmeans_v",
        "kmeans_i", "pose_from_v", "pose_from_i"}`` — ``chance`` is the
        largest subject's share of the sampled frames (what a clustering that
        ignores identity scores); ``kmeans_i``/``pose_from_i`` are None for a
        model without split, ``pose_from_*`` None without ``fit_fn``.
    """
    from selfpose.methods.base import as_method

    model = as_method(model)
    if len(ds.subjects()) < 2:
        raise AnalyzeError(f"the KMeans analysis needs at least 2 subjects; {ds.root} has "
                           f"{len(ds.subjects())} ({', '.join(ds.subjects())})")
    frames = sample_frames_by_subject(ds, max_frames)
    v, i, fs = _codes(model, ds, frames, batch_size, progress)
    _, counts = np.unique(fs.subjects, return_counts=True)
    out: dict[str, Any] = {
        "num_frames": int(len(fs)), "num_subjects": int(len(counts)), "subjects": sorted(set(fs.subjects.tolist())),
        "chance": float(counts.max() / counts.sum()),
        "kmeans_v": kmeans_subject_accuracy(v, fs.subjects, seed=seed),
        "kmeans_i": kmeans_subject_accuracy(i, fs.subjects, seed=seed) if i is not None else None,
        "pose_from_v": None, "pose_from_i": None,
    }
    if fit_fn is not None:
        with _EvalMode(model):
            out["pose_from_v"] = fit_fn(code_fn(model, "v"))
            if i is not None:
                out["pose_from_i"] = fit_fn(code_fn(model, "i"))
    return out


# -- transfer pictures ---------------------------------------------------------------------


def pick_transfer_frames(ds, num: int = 4, seed: int = 0) -> list[tuple[str, int]]:
    """``num`` (sequence id, frame index) picks, each from a different subject while there are enough.

    Subjects are shuffled with ``seed``; a random sequence of each and a random
    frame in it are taken. With fewer subjects than ``num`` the subjects are
    reused (other frames).
    """
    rng = np.random.default_rng(seed)
    by_subject: dict[str, list] = {}
    for rec in ds.sequences:
        if rec.meta.num_frames > 0 and rec.has("frames"):
            by_subject.setdefault(rec.meta.subject, []).append(rec)
    if not by_subject:
        raise AnalyzeError(f"dataset {ds.root} has no sequence with frames")
    subjects = sorted(by_subject)
    rng.shuffle(subjects)
    picks = []
    for k in range(num):
        recs = by_subject[subjects[k % len(subjects)]]
        rec = recs[int(rng.integers(len(recs)))]
        picks.append((rec.meta.id, int(rng.integers(rec.meta.num_frames))))
    return picks




def transfer_pictures(model, ds, frames: Sequence[tuple[str, int]] | None = None,
                      out_png: str | os.PathLike | None = None, *, seed: int = 0, num: int = 4,
                      cell_px: int = 112) -> np.ndarray:
    """Pose/appearance transfer grid: cell ``(r, c)`` = ``decode(v of frame r, i of frame c)``.

    Each cell shows the decoded crop weighted by its decoded mask over grey
    (what the composite of Eq. 1 pastes into the frame).

    Args:
        model: a :class:`~selfpose.methods.base.Method` that can draw transfers
            (``"transfers"`` in its ``drawings()``; e.g. a split temporal model
            with a decoder), or such a bare ``TemporalModel``.
        ds: the dataset the frames come from.
        frames: (sequence id, stored frame index) pairs used both as pose
            sources (rows) and appearance sources (columns), so the diagonal is
            the plain reconstruction; default :func:`pick_transfer_frames`
            (``num`` frames of different subjects, ``seed``).
        out_png: also write the picture here (PNG).
        cell_px: side of a cell in the picture, pixels.

    Returns:
        The ``(H, W, 3)`` uint8 RGB picture (see :func:`selfpose.viz.model_pictures.transfer_grid`):
        first column and first row are the crops the detector cut.

    Raises:
        AnalyzeError: the method cannot draw transfers (e.g. no decoder or no v/i split); unknown frames.
    """
    import torch

    from selfpose.methods.base import MethodError, as_method
    from selfpose.viz.model_pictures import save_png

    method = as_method(model)
    if "transfers" not in method.drawings():
        try:
            method.draw_transfers(torch.zeros(0, 3, 8, 8), [], cell_px)   # its own reason why not
        except MethodError as e:
            raise AnalyzeError(str(e)) from None
        raise AnalyzeError(f"method {method.name!r} cannot draw transfers")
    picks = list(frames) if frames is not None else pick_transfer_frames(ds, num, seed)
    if not picks:
        raise AnalyzeError("no frame to show")
    imgs, labels = [], []
    for seq_id, idx in picks:
        try:
            rec = ds.sequence(seq_id)
        except KeyError as e:
            raise AnalyzeError(f"no sequence {seq_id!r} in {ds.root}") from e
        if not 0 <= int(idx) < rec.meta.num_frames:
            raise AnalyzeError(f"frame {idx} out of range for {seq_id!r} ({rec.meta.num_frames} frames)")
        imgs.append(np.asarray(rec["frames"][int(idx)]))
        labels.append(f"{rec.meta.subject} #{int(idx)}")
    if len({im.shape for im in imgs}) > 1:
        raise AnalyzeError(f"the frames have different sizes {sorted({im.shape for im in imgs})}; "
                           "pick frames of one size")
    device = next(method.parameters()).device
    with _EvalMode(method), torch.no_grad():
        x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).to(device)
        try:
            grid = method.draw_transfers(x, labels, cell_px=cell_px)
        except MethodError as e:
            raise AnalyzeError(str(e)) from None
    if out_png is not None:
        save_png(grid, Path(out_png))
    return grid
