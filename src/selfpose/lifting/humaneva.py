"""HumanEva-I as the lifting literature uses it: splits, scoring, published figures, calibration check.

The protocol (Martinez et al. 2017; Pavllo et al. 2019 "VideoPose3D"; Wang et
al. TPAMI 2019), on a store written by ``selfpose prepare humaneva``:

* **train**: the ``Train`` chunks of subjects S1–S3, actions Walking, Jog and
  Box (VideoPose3D's multi-action model; ``train_actions=()`` takes every
  action), all three cameras.
* **model selection**: whole ``Train`` chunks held out (``val_fraction`` of the
  training frames, all views of a chunk together, :func:`selfpose.pose.labels.holdout_mask`).
  The ``Validate`` chunks are the test set and are never seen before the final score.
* **test**: the ``Validate`` chunks of Walking, Jog and Box, S1–S3, all cameras.
* **metric**: P-MPJPE (mm, per-frame similarity Procrustes), per action ×
  subject; "Avg" is the unweighted mean of those cells, as in the papers'
  tables. MPJPE and N-MPJPE (pelvis-centred) come along.
* **joints**: the 15 joints HumanEva has (:data:`REAL_JOINTS`). The stored
  17-joint poses add spine (7) and neck/nose (9) as *midpoints* of real
  joints (:func:`selfpose.geometry.skeleton.to_h36m`): interpolated points
  inside the torso whose errors after Procrustes are small, so scoring them
  flatters every lifter. Measured (benchmarks/results/lifting_humaneva.md,
  2026-12-01): the 17-joint P-MPJPE is 1.7 mm lower for a lifter trained on
  HumanEva and about 6 mm lower for lifters trained on Human3.6M. The
  published HumanEva figures are on 15 joints. ``joints="all17"`` scores all
  17 for comparison.
* **short chunks**: nothing is skipped. 24 of the 77 chunks of the sample
  files are shorter than 27 frames (some 2 frames); of the 24 test chunks, 6
  (177 of 10,569 test frames, 3 views) are shorter than 27, 13 shorter than 81,
  18 shorter than 243 (:func:`short_chunks`). A single-frame lifter
  does not care; the temporal lifters (``temporal_conv``, ``pose_machine``)
  pad a sequence shorter than their window by edge replication (repeating its
  first/last frame), so every ``Validate`` frame is scored.
  :func:`short_chunks` counts them.

:data:`PUBLISHED` holds published per-action × subject P-MPJPE figures with
where each was read. They are *not* on the same footing as ours (see its
docstring).

:func:`calibration_check` answers whether calibrating each subject's cameras
from Train and Validate chunks together (what ``prepare humaneva`` does)
matters: it calibrates from Train chunks only and measures the reprojection
error on the Validate chunks and how far the Validate poses move in the camera
frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from selfpose.errors import SelfposeError

#: Actions and subjects of the standard HumanEva-I lifting protocol (names as ``prepare humaneva`` writes them).
PROTOCOL_ACTIONS: tuple[str, ...] = ("Walking", "Jog", "Box")
PROTOCOL_SUBJECTS: tuple[str, ...] = ("S1", "S2", "S3")
#: House (Human3.6M-17) indices that HumanEva-15 really has: all but spine (7) and neck/nose (9),
#: which ``to_h36m`` derives as midpoints (pelvis–thorax, thorax–head).
REAL_JOINTS: tuple[int, ...] = tuple(j for j in range(17) if j not in (7, 9))
DERIVED_JOINTS: tuple[int, ...] = (7, 9)

#: Published HumanEva-I P-MPJPE (mm, "Protocol 2" / "reconstruction error"), per (action, subject).
#:
#: Read from tables as quoted in later papers' text (the stored copies of the
#: originals did not include their HumanEva tables):
#:
#: * Martinez et al., "A simple yet effective baseline for 3d human pose
#:   estimation", ICCV 2017 — as quoted in Pavlakos et al., "Ordinal Depth
#:   Supervision for 3D Human Pose Estimation", CVPR 2018, Table 6 (Walking and
#:   Jogging only; Avg 24.6 over those six cells).
#: * Pavlakos et al. CVPR 2018 ("Ours" of that Table 6; Avg 18.3).
#: * Lee et al., "Propagating LSTM", ECCV 2018, and Pavllo et al., "3D human
#:   pose estimation in video with temporal convolutions and semi-supervised
#:   training" (VideoPose3D), CVPR 2019 — as quoted in Xu et al., "Deep
#:   Kinematics Analysis for Monocular 3D Human Pose Estimation", CVPR 2020,
#:   Table 3 (one model trained on Walk, Jog and Box).
#:
#: Wang et al., "3D Human Pose Machines with Self-supervised Learning", TPAMI
#: 2019, also report HumanEva-I per action × subject; the stored text of that
#: paper ends where its HumanEva section begins, so its figures are not here
#: (add them from the paper's HumanEva table; do not guess).
#:
#: Not like for like: those works use the full HumanEva-I release and mostly
#: *detected* 2D (the quoting tables do not say which 2D each used); ours use
#: ground-truth 2D of the sample files in ``../shared/data/fixtures/humaneva``
#: through cameras calibrated from them.
PUBLISHED: dict[str, dict[tuple[str, str], float]] = {
    "Martinez et al. 2017": {
        ("Walking", "S1"): 19.7, ("Walking", "S2"): 17.4, ("Walking", "S3"): 46.8,
        ("Jog", "S1"): 26.9, ("Jog", "S2"): 18.2, ("Jog", "S3"): 18.6},
    "Pavlakos et al. 2018": {
        ("Walking", "S1"): 18.8, ("Walking", "S2"): 12.7, ("Walking", "S3"): 29.2,
        ("Jog", "S1"): 23.5, ("Jog", "S2"): 15.4, ("Jog", "S3"): 14.5},
    "Lee et al. 2018": {
        ("Walking", "S1"): 18.6, ("Walking", "S2"): 19.9, ("Walking", "S3"): 30.5,
        ("Jog", "S1"): 25.7, ("Jog", "S2"): 16.8, ("Jog", "S3"): 17.7,
        ("Box", "S1"): 42.8, ("Box", "S2"): 48.1, ("Box", "S3"): 53.4},
    "Pavllo et al. 2019 (VideoPose3D)": {
        ("Walking", "S1"): 13.9, ("Walking", "S2"): 10.2, ("Walking", "S3"): 46.6,
        ("Jog", "S1"): 20.9, ("Jog", "S2"): 13.1, ("Jog", "S3"): 13.8,
        ("Box", "S1"): 23.8, ("Box", "S2"): 33.7, ("Box", "S3"): 32.0},
}

#: The "Avg" the source tables print, where they print one (Pavlakos et al.'s 18.3 is not the mean of its six
#: quoted cells, 19.0; kept as printed). Rows without one show the mean of their cells, marked ``*``.
PUBLISHED_AVG: dict[str, float] = {"Martinez et al. 2017": 24.6, "Pavlakos et al. 2018": 18.3}


class HumanEvaError(SelfposeError, ValueError):
    """The data is not a HumanEva-I store as ``prepare humaneva`` writes it, or the protocol selects nothing."""


@dataclass
class HumanEvaProtocol:
    """Which HumanEva-I frames train, validate and test (strict: unknown keys are errors).

    Attributes:
        subjects: subjects of every split.
        train_actions: actions of the ``Train`` chunks trained on; empty = all.
        test_actions: actions of the ``Validate`` chunks tested on; empty = all.
        val_fraction: share of the training frames held out as whole ``Train``
            chunks for model selection; 0 = none.
        joints: ``real15`` (:data:`REAL_JOINTS`, default) or ``all17``.
        seed: which chunks are held out.
    """

    subjects: tuple[str, ...] = PROTOCOL_SUBJECTS
    train_actions: tuple[str, ...] = PROTOCOL_ACTIONS
    test_actions: tuple[str, ...] = PROTOCOL_ACTIONS
    val_fraction: float = 0.1
    joints: Literal["real15", "all17"] = "real15"
    seed: int = 0

    def __post_init__(self) -> None:
        from selfpose.config import ConfigError

        self.subjects, self.train_actions = tuple(self.subjects), tuple(self.train_actions)
        self.test_actions = tuple(self.test_actions)
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.joints not in ("real15", "all17"):
            raise ConfigError(f"joints must be 'real15' or 'all17', got {self.joints!r}")

    @property
    def joint_indices(self) -> tuple[int, ...] | None:
        """House joint indices scored (None = all)."""
        return REAL_JOINTS if self.joints == "real15" else None


def sequence_splits(data: str | Path) -> dict[str, str]:
    """``{sequence id: "Train" | "Validate"}`` of a ``prepare humaneva`` store.

    Raises:
        HumanEvaError: a sequence has no ``attrs["split"]`` (not a HumanEva store).
    """
    from selfpose.data.store import Dataset

    out = {}
    for rec in Dataset.open(data):
        split = (rec.meta.attrs or {}).get("split")
        if split is None:
            raise HumanEvaError(f"sequence {rec.id} of {data} has no split attribute; prepare the data with "
                                "`selfpose prepare humaneva`")
        out[rec.id] = str(split)
    return out


def protocol_masks(sequences: np.ndarray, subjects: np.ndarray, actions: np.ndarray, splits: dict[str, str],
                   protocol: HumanEvaProtocol) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` bool masks ``(N,)`` over frames, from their sequence ids, subjects and actions.

    Train = ``Train`` chunks of ``protocol.subjects`` × ``train_actions``;
    test = ``Validate`` chunks of ``protocol.subjects`` × ``test_actions``. No
    frame is in both.
    """
    split = np.array([splits.get(s, "") for s in np.asarray(sequences).astype(str)])
    subj = np.isin(np.asarray(subjects).astype(str), protocol.subjects)
    acts = np.asarray(actions).astype(str)

    def of(actions_: tuple[str, ...]) -> np.ndarray:
        return np.isin(acts, actions_) if actions_ else np.ones(len(acts), bool)

    return (split == "Train") & subj & of(protocol.train_actions), (split == "Validate") & subj & of(protocol.test_actions)


def protocol_arrays(data: str | Path, protocol: HumanEvaProtocol | None = None):
    """``(train, val, test)`` :class:`~selfpose.lifting.data.LiftingArrays` of a HumanEva-I store.

    ``val`` (None when ``val_fraction`` is 0) is whole ``Train`` chunks held
    out of ``train``; ``test`` is the ``Validate`` chunks.

    Raises:
        HumanEvaError: the protocol selects no training or no test frame.
    """
    from selfpose.lifting.data import load_arrays
    from selfpose.pose.labels import holdout_mask

    protocol = protocol or HumanEvaProtocol()
    splits = sequence_splits(data)
    arrays = load_arrays(data)
    train_m, test_m = protocol_masks(arrays.sequences, arrays.subjects, arrays.actions, splits, protocol)
    for name, m, acts in (("training", train_m, protocol.train_actions), ("test", test_m, protocol.test_actions)):
        if not m.any():
            raise HumanEvaError(f"no {name} frame in {data} for subjects {','.join(protocol.subjects)} and actions "
                                f"{','.join(acts) or 'all'} (it has {', '.join(sorted(set(arrays.actions)))})")
    train, test = arrays.subset(train_m), arrays.subset(test_m)
    if protocol.val_fraction == 0:
        return train, None, test
    hold = holdout_mask(train.takes, train.sequences, train.frame_ids, protocol.val_fraction, "take", protocol.seed)
    return train.subset(~hold), (train.subset(hold) if hold.any() else None), test


def score(pred: np.ndarray, target: np.ndarray, subjects, actions, joints: tuple[int, ...] | None = REAL_JOINTS) -> dict:
    """HumanEva-I metrics per action × subject.

    Args:
        pred, target: ``(N, 17, 3)`` mm, camera frame (house joint order).
        subjects, actions: ``(N,)`` labels.
        joints: scored house joints (default :data:`REAL_JOINTS`); None = all.

    Returns:
        ``{"cells": {"Action/Subject": m}, "average": m, "overall": m,
        "per_joint": {house joint index: mm}}``, each ``m = {"p_mpjpe",
        "mpjpe", "n_mpjpe", "count"}`` (mm). ``average`` is the unweighted
        mean over cells (the papers' "Avg"); ``overall`` the mean over frames;
        ``per_joint`` the P-MPJPE of each scored joint over all frames (which
        joints carry the error). MPJPE/N-MPJPE are pelvis-centred before the
        joints are selected.
    """
    from selfpose.evaluation.metrics import mpjpe, n_mpjpe, p_mpjpe
    from selfpose.geometry.alignment import procrustes_align

    sel = list(joints) if joints is not None else None
    idx = sel if sel is not None else list(range(np.shape(pred)[-2]))
    pr, tg = np.asarray(pred, np.float64)[..., idx, :], np.asarray(target, np.float64)[..., idx, :]
    per_joint = np.linalg.norm(procrustes_align(pr, tg) - tg, axis=-1).mean(0)
    per = {"p_mpjpe": p_mpjpe(pred, target, "none", joints=sel),
           "mpjpe": mpjpe(pred, target, "none", joints=sel),
           "n_mpjpe": n_mpjpe(pred, target, "none", joints=sel)}
    subjects, actions = np.asarray(subjects).astype(str), np.asarray(actions).astype(str)

    def summary(mask) -> dict:
        out = {k: float(np.mean(v[mask])) for k, v in per.items()}
        out["count"] = int(np.sum(mask))
        return out

    cells = {f"{a}/{s}": summary((actions == a) & (subjects == s))
             for a in sorted(set(actions)) for s in sorted(set(subjects)) if ((actions == a) & (subjects == s)).any()}
    average = {k: float(np.mean([c[k] for c in cells.values()])) for k in per}
    average["count"] = len(pred)
    return {"cells": cells, "average": average, "overall": summary(np.ones(len(pred), bool)),
            "per_joint": {int(j): float(e) for j, e in zip(idx, per_joint)}}


def evaluate_lifter(lifter, test, protocol: HumanEvaProtocol | None = None, noise=None, seed: int = 0,
                    correction: bool | None = None) -> dict:
    """Score any lifter (``lifter.predict(arrays, noise, seed[, correction])`` → ``(N, 17, 3)`` mm) on HumanEva-I frames.

    Args:
        lifter: a :class:`~selfpose.lifting.train.Lifter` (or anything with its ``predict``).
        test: the test :class:`~selfpose.lifting.data.LiftingArrays` (e.g. from :func:`protocol_arrays`).
        protocol: gives the scored joints.
        noise: optional 2D noise model applied at test time.
        correction: the lifter's test-time correction on/off (None: its method's default).

    Returns:
        :func:`score`'s dict.
    """
    protocol = protocol or HumanEvaProtocol()
    if test.joints3d is None:
        raise HumanEvaError("the test frames have no 3D labels; nothing to score")
    kw = {} if correction is None else {"correction": correction}   # lifters without a correction need no such argument
    pred = lifter.predict(test, noise, seed=seed, **kw)
    return score(pred, test.joints3d, test.subjects, test.actions, protocol.joint_indices)


def short_chunks(arrays, window: int) -> dict:
    """How many chunks (takes) of ``arrays`` — and their frames, all views — are shorter than ``window`` frames."""
    takes = np.asarray(arrays.takes).astype(str)
    seqs = np.asarray(arrays.sequences).astype(str)
    lengths = {}
    for s in np.unique(seqs):
        m = seqs == s
        lengths[takes[m][0]] = int(m.sum())
    short = [t for t, n in lengths.items() if n < window]
    return {"window": int(window), "chunks": len(lengths), "short_chunks": len(short),
            "short_frames": int(np.isin(takes, short).sum()), "frames": len(takes)}


def _table_cells(actions: tuple[str, ...], subjects: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(a, s) for a in actions for s in subjects]


def results_table(rows: dict[str, dict], published: bool = True, metric: str = "p_mpjpe",
                  actions: tuple[str, ...] = PROTOCOL_ACTIONS, subjects: tuple[str, ...] = PROTOCOL_SUBJECTS) -> str:
    """A markdown table like the papers': one row per method, Walking/Jog/Box × S1–S3, then Avg.

    Args:
        rows: ``{name: score dict}`` (:func:`score`'s output) of our runs.
        published: append :data:`PUBLISHED` rows (P-MPJPE only; "–" marks a
            cell they do not report; Avg as printed in the source
            (:data:`PUBLISHED_AVG`), else the mean of their cells marked ``*``).
        metric: ``p_mpjpe`` (default), ``mpjpe`` or ``n_mpjpe``.
    """
    cells = _table_cells(actions, subjects)
    head = "| Method | " + " | ".join(f"{a} {s}" for a, s in cells) + " | Avg |"
    lines = [head, "|" + "---|" * (len(cells) + 2)]

    def fmt(v) -> str:
        return "–" if v is None or not np.isfinite(v) else f"{v:.1f}"

    for name, res in rows.items():
        vals = [res["cells"].get(f"{a}/{s}", {}).get(metric) for a, s in cells]
        got = [v for v in vals if v is not None]
        avg = float(np.mean(got)) if got else None
        lines.append(f"| {name} | " + " | ".join(fmt(v) for v in vals) + f" | {fmt(avg)} |")
    if published and metric == "p_mpjpe":
        for name, table in PUBLISHED.items():
            vals = [table.get(c) for c in cells]
            avg = PUBLISHED_AVG.get(name)
            shown = fmt(avg) if avg is not None else fmt(float(np.mean([v for v in vals if v is not None]))) + "*"
            lines.append(f"| {name} (published) | " + " | ".join(fmt(v) for v in vals) + f" | {shown} |")
    return "\n".join(lines)


def calibration_check(source: str | Path, subjects: tuple[str, ...] = PROTOCOL_SUBJECTS) -> dict:
    """Does calibrating a subject's cameras from Train *and* Validate chunks matter?

    For every (subject, camera), calibrates (:func:`selfpose.data.datasets.humaneva.calibrate`)
    once from all chunks (what ``prepare humaneva`` does) and once from the
    ``Train`` chunks only, then on the ``Validate`` chunks measures:

    * ``val_rms_px`` / ``val_max_px``: reprojection error of each calibration (px);
    * ``pose_shift_mm``: mean (and ``pose_shift_max_mm``, max) distance between
      the pelvis-centred camera-frame 3D of the two calibrations (mm, 15
      joints) — how much the test *targets* change;
    * ``focal_rel``: relative difference of the focal lengths (the lifter's
      input is scaled by it).

    Args:
        source: the folder with ``data_3d_humaneva15.npz`` and ``data_2d_humaneva15_gt.npz``.
    """
    from selfpose.data.datasets.humaneva import CAMERAS, FILE_2D, FILE_3D, HEIGHT, WIDTH, calibrate
    from selfpose.data.datasets.safe_read import npz_object, read_npz

    source = Path(source)
    p3, p2 = source / FILE_3D, source / FILE_2D
    if not (p3.is_file() and p2.is_file()):
        raise HumanEvaError(f"{source} needs {FILE_3D} and {FILE_2D} (VideoPose3D's HumanEva-I files)")
    pos3d = npz_object(read_npz(p3, ("positions_3d",), error=HumanEvaError), "positions_3d", p3, error=HumanEvaError)
    pos2d = npz_object(read_npz(p2, ("positions_2d",), error=HumanEvaError), "positions_2d", p2, error=HumanEvaError)
    out: dict[str, dict] = {}
    for subj in subjects:
        for c, cname in enumerate(CAMERAS):
            pairs: dict[str, tuple[list, list]] = {"Train": ([], []), "Validate": ([], [])}
            for split in pairs:
                key = f"{split}/{subj}"
                for a, arr in pos3d.get(key, {}).items():
                    views = pos2d.get(key, {}).get(a)
                    if views is None or len(views) <= c or len(views[c]) != len(arr):
                        continue
                    pairs[split][0].append(np.asarray(arr, np.float64) * 1000.0)   # (T, 15, 3) mm
                    pairs[split][1].append(np.asarray(views[c], np.float64))        # (T, 15, 2) px
            if not pairs["Train"][0] or not pairs["Validate"][0]:
                continue
            Xt, xt = np.concatenate(pairs["Train"][0]), np.concatenate(pairs["Train"][1])
            Xv, xv = np.concatenate(pairs["Validate"][0]), np.concatenate(pairs["Validate"][1])
            cam_all, _ = calibrate(np.concatenate([Xt, Xv]).reshape(-1, 3), np.concatenate([xt, xv]).reshape(-1, 2),
                                   WIDTH, HEIGHT)
            cam_tr, _ = calibrate(Xt.reshape(-1, 3), xt.reshape(-1, 2), WIDTH, HEIGHT)
            ok = np.isfinite(Xv).all(-1) & np.isfinite(xv).all(-1)

            e_all, e_tr = (np.linalg.norm(cam.project_world(Xv[ok]) - xv[ok], axis=-1) for cam in (cam_all, cam_tr))
            va, vt = cam_all.world_to_camera(Xv), cam_tr.world_to_camera(Xv)
            shift = np.linalg.norm((va - va[:, :1]) - (vt - vt[:, :1]), axis=-1)[ok]
            out[f"{subj}_{cname}"] = {
                "val_rms_px_all": float(np.sqrt(np.mean(e_all ** 2))), "val_max_px_all": float(e_all.max()),
                "val_rms_px_train_only": float(np.sqrt(np.mean(e_tr ** 2))), "val_max_px_train_only": float(e_tr.max()),
                "pose_shift_mm": float(shift.mean()), "pose_shift_max_mm": float(shift.max()),
                "focal_rel": float(abs(cam_tr.fx - cam_all.fx) / cam_all.fx),
                "train_frames": len(Xt), "val_frames": len(Xv)}
    if not out:
        raise HumanEvaError(f"no subject of {', '.join(subjects)} has both Train and Validate chunks in {source}")
    return out
