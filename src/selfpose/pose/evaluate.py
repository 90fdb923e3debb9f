"""Evaluation of predicted poses (and boxes), reports, and the whole pose stage in one call.

:func:`evaluate` scores ``(N, J, 3)`` predictions against a
:class:`~selfpose.pose.features.FeatureSet`'s labels with
:func:`selfpose.evaluation.metrics.evaluate_poses` (MPJPE, N-MPJPE,
P-MPJPE in mm, PCK/AUC in %, overall, per action and the unweighted action
average) and, where both predicted and true boxes exist, the detector's
mean IoU. :func:`write_report` writes ``results.json`` and a readable
``results.md``. :func:`run_pose_stage` chains labels → features → fit →
evaluation for a feature function.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from selfpose.config import to_dict
from selfpose.errors import SelfposeError
from selfpose.evaluation.metrics import box_iou, evaluate_poses
from selfpose.pose.features import FeatureError, FeatureSet, extract
from selfpose.pose.fit import FittedPose, PoseConfig, fit_pose
from selfpose.pose.labels import label_subset, split_validation
from selfpose.utils.jsonsafe import jsonable

#: IoU above which a predicted box counts as a detection (PASCAL VOC convention).
IOU_HIT = 0.5

logger = logging.getLogger(__name__)


class EvaluationError(SelfposeError, ValueError):
    """Nothing can be scored: no frame has finite 3D labels, or the model predicted NaN/inf."""


def detection_quality(pred_boxes: np.ndarray, true_boxes: np.ndarray, actions=None) -> dict:
    """Mean IoU and share of boxes with IoU ≥ 0.5, overall and per action.

    Args:
        pred_boxes, true_boxes: ``(N, 4)`` x0, y0, x1, y1 px; rows with a NaN
            in either are skipped.
        actions: ``(N,)`` action names or None.

    Returns:
        ``{"mean_iou", "hit_rate", "count", "per_action": {action: {...}}}``.
    """
    iou = np.asarray(box_iou(np.asarray(pred_boxes, np.float64), np.asarray(true_boxes, np.float64)))
    ok = np.isfinite(np.asarray(pred_boxes)).all(1) & np.isfinite(np.asarray(true_boxes)).all(1)

    def summary(sel: np.ndarray) -> dict:
        v = iou[sel & ok]
        return {"mean_iou": float(v.mean()) if v.size else float("nan"),
                "hit_rate": float((v >= IOU_HIT).mean()) if v.size else float("nan"), "count": int(v.size)}

    out = summary(np.ones(len(iou), bool))
    out["per_action"] = {}
    if actions is not None:
        acts = np.asarray(actions).astype(str)
        out["per_action"] = {a: summary(acts == a) for a in sorted(set(acts.tolist()))}
    return out


def evaluate(pred, fs: FeatureSet) -> dict:
    """Score pelvis-centred predictions against ``fs``.

    Args:
        pred: ``(N, J, 3)`` mm, camera frame (root-centred again by the metrics).
        fs: the feature set the predictions were made for (``joints3d`` required).

    Frames whose 3D label has a NaN or inf (a joint the source did not
    annotate, a damaged file) are left out of the pose metrics and counted
    in ``"excluded_frames"`` (a warning says how many); the box metrics keep
    every frame.

    Returns:
        ``evaluate_poses``' dict (``overall``, ``per_action``,
        ``action_average``; ``count`` = frames scored) plus ``"detection"``
        (see :func:`detection_quality`) when ``fs`` has both predicted and
        true boxes, ``"num_samples"`` (all frames) and ``"excluded_frames"``.

    Raises:
        EvaluationError: no frame has a finite 3D label, or a prediction is NaN/inf.
    """
    if fs.joints3d is None:
        raise FeatureError("these frames have no joints3d: nothing to evaluate against")
    pred = np.asarray(pred)
    if pred.shape != fs.joints3d.shape:
        raise FeatureError(f"predictions have shape {pred.shape}, the labels {fs.joints3d.shape}")
    bad_pred = ~np.isfinite(pred).all(axis=(1, 2))
    if bad_pred.any():
        raise EvaluationError(f"the model predicted NaN/inf joints for {int(bad_pred.sum())} of {len(pred)} frames "
                              "(e.g. sequence {}); its training diverged — fit the pose head (or pretrain) again, "
                              "e.g. with a lower learning rate".format(fs.sequence_ids[np.argmax(bad_pred)]))
    usable = np.isfinite(fs.joints3d).all(axis=(1, 2))
    excluded = int((~usable).sum())
    if not usable.any():
        raise EvaluationError(f"none of the {len(fs)} frames has finite 3D labels (all hold NaN/inf): nothing to "
                              "score; check the dataset (`selfpose info DATA --check`) or prepare it again")
    if excluded:
        seqs = sorted(set(fs.sequence_ids[~usable].tolist()))
        logger.warning("evaluate: %d of %d frames have NaN/inf 3D labels and are not scored (sequences: %s%s)",
                       excluded, len(fs), ", ".join(seqs[:5]), " ..." if len(seqs) > 5 else "")
    results = evaluate_poses(pred[usable], fs.joints3d[usable], actions=list(fs.actions[usable]))
    if fs.pred_boxes is not None and fs.boxes is not None:
        results["detection"] = detection_quality(fs.pred_boxes, fs.boxes, fs.actions)
    results["num_samples"] = len(fs)
    results["excluded_frames"] = excluded
    return results


def summary(results: dict) -> dict:
    """The headline numbers of :func:`evaluate`'s results: MPJPE, N-MPJPE, P-MPJPE (mm), frame count, box IoU.

    ``box_iou`` is the mean IoU of predicted against true boxes, NaN when the data have no true boxes.
    """
    o = results["overall"]
    return {"mpjpe": o["mpjpe"], "n_mpjpe": o["n_mpjpe"], "p_mpjpe": o["p_mpjpe"], "frames": o["count"],
            "box_iou": results.get("detection", {}).get("mean_iou", float("nan"))}


def _fmt(v: Any, digits: int = 1) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


_POSE_COLUMNS = (("mpjpe", "MPJPE (mm)"), ("n_mpjpe", "N-MPJPE (mm)"), ("p_mpjpe", "P-MPJPE (mm)"),
                 ("pck", "PCK (%)"), ("auc", "AUC (%)"))


def results_markdown(results: dict, title: str = "Pose evaluation") -> str:
    """The markdown form of an :func:`evaluate` result (extra top-level keys are listed as facts)."""
    lines = [f"# {title}", ""]
    head = "| | " + " | ".join(c for _, c in _POSE_COLUMNS) + " | frames |"
    rule = "|---|" + "---:|" * (len(_POSE_COLUMNS) + 1)

    def row(name: str, m: dict) -> str:
        return f"| {name} | " + " | ".join(_fmt(m.get(k)) for k, _ in _POSE_COLUMNS) + f" | {m.get('count', '')} |"

    lines += ["## Overall", "", head, rule, row("all frames", results["overall"])]
    if "action_average" in results:
        lines.append(row("action average", results["action_average"]))
    if results.get("per_action"):
        lines += ["", "## Per action", "", head.replace("| |", "| action |", 1), rule]
        lines += [row(a, m) for a, m in results["per_action"].items()]
    if results.get("probes"):   # closed-form probes scored on the same frames (selfpose.pose.probe_fit)
        names = {"ridge": "ridge probe, alpha", "knn": "k-NN probe, k"}
        lines += ["", "## Probes", "", "The MLP head beside the closed-form probes of the same features "
                  "(standardised), each chosen on the same validation frames.", "", head, rule,
                  row("MLP head", results["overall"])]
        lines += [row(f"{names.get(k, k)} = {p.get('chosen')}", p) for k, p in results["probes"].items()]
    det = results.get("detection")
    if det:
        lines += ["", "## Detection", "", "| | mean IoU | IoU ≥ 0.5 (%) | frames |", "|---|---:|---:|---:|",
                  f"| all frames | {_fmt(det['mean_iou'], 3)} | {_fmt(100 * det['hit_rate'])} | {det['count']} |"]
        lines += [f"| {a} | {_fmt(m['mean_iou'], 3)} | {_fmt(100 * m['hit_rate'])} | {m['count']} |"
                  for a, m in det.get("per_action", {}).items()]
    if results.get("picture"):   # a file beside results.md (e.g. a lifter run's skeletons.png)
        lines += ["", "## Picture", "", "Truth solid, prediction dashed; frames at percentiles of the per-frame "
                  "MPJPE (the 10th, 50th and 90th percentile and the worst).", "",
                  f"![predicted and true skeletons]({results['picture']})"]
    extra = {k: v for k, v in results.items()
             if k not in ("overall", "per_action", "action_average", "detection", "picture", "probes")}
    if extra:
        lines += ["", "## Run", ""]
        for k, v in extra.items():
            text = json.dumps(jsonable(v)) if isinstance(v, (dict, list, tuple)) else str(v)
            lines.append(f"- **{k}**: {text}")
    return "\n".join(lines) + "\n"


def write_report(results: dict, out_dir: str | Path, title: str = "Pose evaluation") -> tuple[Path, Path]:
    """Write ``out_dir/results.json`` (everything, NaN → null) and ``out_dir/results.md``.

    Each file is replaced whole (written beside, then renamed): a full disk
    leaves the earlier results as they were and is a one-line
    :class:`~selfpose.errors.DiskFullError`.
    """
    from selfpose.errors import disk_full
    from selfpose.outputs import replace_text

    out = Path(out_dir)
    js, md = out / "results.json", out / "results.md"
    texts = {js: json.dumps(jsonable(results), indent=1), md: results_markdown(results, title)}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise disk_full(e, out) or e
    for path, text in texts.items():
        replace_text(path, text, folder=out)
    return js, md


def run_pose_stage(feature_fn: Callable, train_ds, test_ds, cfg: PoseConfig, out_dir: str | Path | None = None,
                   box_fn: Callable | None = None, test_frames: np.ndarray | None = None, batch_size: int = 64,
                   device: str = "cpu", autocast: bool = False,
                   progress: bool = True) -> tuple[FittedPose, dict]:
    """Labels → features → fit → evaluation, for one feature function.

    Args:
        feature_fn, box_fn: see :mod:`selfpose.pose.features` (model in eval mode).
        train_ds, test_ds: :class:`~selfpose.data.store.Dataset` selections.
        cfg: :class:`PoseConfig` (``fraction``, ``val_fraction``/``val_by``, ``seed`` used here).
        out_dir: when given, the head is saved to ``out_dir/pose_head`` and
            the report to ``out_dir/results.{json,md}``.
        test_frames: frame index of ``test_ds`` to evaluate; None = every frame.
        batch_size, device, autocast: feature extraction settings.

    Returns:
        ``(fitted head, results)``; results also carry ``config``,
        ``label_frames``, ``train_frames``, ``val_frames``, ``best_step`` and
        ``best_val_n_mpjpe``.
    """
    labelled = label_subset(train_ds, cfg.fraction, seed=cfg.seed)
    if cfg.val_fraction > 0:
        tr, va = split_validation(train_ds, labelled, cfg.val_fraction, cfg.val_by, cfg.seed)
    else:
        tr, va = labelled, labelled[:0]
    kw = dict(batch_size=batch_size, box_fn=box_fn, device=device, autocast=autocast, progress=progress)
    train_fs = extract(feature_fn, train_ds, tr, **kw)
    val_fs = extract(feature_fn, train_ds, va, **kw) if len(va) else None
    fitted = fit_pose(train_fs, cfg, val_fs, progress=progress)
    if test_frames is None:
        test_frames = label_subset(test_ds, 1.0, require_3d=True)
    test_fs = extract(feature_fn, test_ds, test_frames, **kw)
    results = evaluate(fitted.predict(test_fs), test_fs)
    results.update({"config": to_dict(cfg), "label_frames": int(len(labelled)), "train_frames": int(len(tr)),
                    "val_frames": int(len(va)), "best_step": fitted.best_step,
                    "best_val_n_mpjpe": fitted.best_val_n_mpjpe})
    if out_dir is not None:
        fitted.save(Path(out_dir) / "pose_head")
        write_report(results, out_dir)
    return fitted, results
