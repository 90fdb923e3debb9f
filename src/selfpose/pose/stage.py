"""The pose stage wired to pretraining runs: what ``fit-pose``, ``evaluate``,
``predict`` and ``analyze`` call.

A *pose folder* (``fit-pose --out POSE``) holds ``pose.json`` (which run,
which data, which labels, the config) and the fitted head
(``pose_head.safetensors`` + ``.json``); with the run's weights it is
everything needed to predict. Nothing is unpickled.
"""

from __future__ import annotations

from selfpose.errors import SelfposeError

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from selfpose.config import from_dict, to_dict
from selfpose.pose.fit import PoseConfig

POSE_JSON = "pose.json"


class PoseStageError(SelfposeError, RuntimeError):
    """A pose folder or its run is missing or inconsistent."""


@dataclass
class PoseStageConfig:
    """``selfpose fit-pose`` settings.

    Attributes:
        pose: the head and its training (:class:`~selfpose.pose.fit.PoseConfig`;
            ``pose.fraction`` is the share of labelled frames).
        subjects: subjects whose frames may be labelled (empty: all of the dataset).
        batch_size: frames per forward pass when extracting features.
        autocast: bf16 feature extraction (CPU with bf16 support, about 2.5× faster).
    """

    pose: PoseConfig = field(default_factory=PoseConfig)
    subjects: tuple[str, ...] = ()
    batch_size: int = 64
    autocast: bool = True


def model_fns(model, stored_hw: tuple[int, int]):
    """``feature_fn`` returning ``{"features": v, "boxes": box px of the stored frame}``.

    The model works at ``image_size``; boxes are scaled back to the stored
    frame so they compare with the dataset's boxes.
    """
    H, W = stored_hw

    def fn(frames: torch.Tensor) -> dict:
        out = model.encode(model.prepare(frames))
        s = model.cfg.image_size
        scale = torch.tensor([W / s, H / s, W / s, H / s], device=out["box_px"].device)
        return {"features": out["v"].float(), "boxes": out["box_px"].float() * scale}

    return fn


def _stored_hw(ds) -> tuple[int, int]:
    sizes = {(s.meta.height, s.meta.width) for s in ds.sequences}
    if len(sizes) != 1:
        raise PoseStageError(f"{ds.root} mixes frame sizes {sorted(sizes)}; prepare it at one size")
    return sizes.pop()


def _select(ds, subjects):
    from selfpose.data.store import DatasetError

    if not subjects:
        return ds
    sel = ds.select(subjects=set(subjects))
    if not len(sel):
        raise DatasetError(f"no sequence of {ds.root} has subjects {list(subjects)}; it has {ds.subjects()}")
    return sel


def fit_pose_stage(run_dir, data, out, cfg: PoseStageConfig, overwrite: bool = False, progress: bool = True,
                   features=None) -> dict:
    """Fit a pose head on frozen features of ``run_dir`` using ``cfg.pose.fraction`` of ``data``'s labels.

    ``features``: an optional :class:`~selfpose.pose.features.FeatureCache` of
    this run's model on ``data`` (a benchmark shares one across label shares).

    The pose folder is built beside ``out`` and swapped in only when complete
    (:func:`selfpose.outputs.atomic_output`): a failing fit leaves an earlier
    pose folder as it was, and ``--overwrite`` replaces only a pose folder —
    never the run, the dataset or a folder holding other files.
    """
    from selfpose.outputs import atomic_output

    # The pose folder may live inside its run folder (RUN/pose), not inside the dataset.
    with atomic_output(out, "pose", overwrite=overwrite, inputs=[(run_dir, True), data]) as tmp:
        return _fit_pose_into(tmp, run_dir, data, cfg, progress, features)


def _fit_pose_into(out: Path, run_dir, data, cfg: PoseStageConfig, progress: bool, features) -> dict:
    """The body of :func:`fit_pose_stage`, writing into the (partial) folder ``out``."""
    from selfpose.data.store import Dataset
    from selfpose.pose.features import extract
    from selfpose.pose.fit import fit_pose
    from selfpose.pose.labels import label_subset, split_validation
    from selfpose.pretrain import load_run

    run = load_run(run_dir)
    ds = _select(Dataset.open(data), cfg.subjects)
    fn = model_fns(run.model, _stored_hw(ds))
    labelled = label_subset(ds, cfg.pose.fraction, seed=cfg.pose.seed)
    tr, va = split_validation(ds, labelled, cfg.pose.val_fraction, cfg.pose.val_by, cfg.pose.seed)
    kw = dict(batch_size=cfg.batch_size, autocast=cfg.autocast, progress=progress)
    get = features.get if features is not None else (lambda frames: extract(fn, ds, frames, **kw))
    if features is not None and (cfg.subjects or Path(features.ds.root).resolve() != Path(ds.root).resolve()):
        raise PoseStageError(f"a feature cache serves the whole dataset it was made for ({features.ds.root}), "
                             "without pose.subjects")
    train_fs = get(tr)
    val_fs = get(va) if len(va) else None
    fitted = fit_pose(train_fs, cfg.pose, val_fs, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    fitted.save(out / "pose_head")
    info = {"run": str(Path(run_dir).resolve()), "data": str(Path(data).resolve()), "config": to_dict(cfg),
            "num_labelled": int(len(labelled)), "train_frames": int(len(tr)), "val_frames": int(len(va)),
            "val_n_mpjpe": float(fitted.best_val_n_mpjpe), "best_step": int(fitted.best_step)}
    (out / POSE_JSON).write_text(json.dumps(info, indent=1))
    return info


@dataclass
class LoadedPose:
    """A pose folder, loaded: the run's method (eval mode) and the fitted head."""

    path: Path
    info: dict
    run: Any
    head: Any

    @property
    def model(self):
        return self.run.model

    @torch.inference_mode()
    def predict_frames(self, frames: torch.Tensor) -> dict:
        """uint8/float frames (B, 3, H, W) → {"joints3d" (B,17,3) mm pelvis-centred, "boxes" px, "v"}."""
        m = self.model
        out = m.encode(m.prepare(frames))
        s, (H, W) = m.cfg.image_size, frames.shape[-2:]
        boxes = out["box_px"] * torch.tensor([W / s, H / s, W / s, H / s])
        return {"joints3d": torch.as_tensor(self.head.predict(out["v"].float().numpy())), "boxes": boxes,
                "v": out["v"]}


def load_pose(pose_dir) -> LoadedPose:
    """Load a pose folder written by :func:`fit_pose_stage`."""
    from selfpose.pose.fit import FittedPose
    from selfpose.pretrain import load_run

    pose_dir = Path(pose_dir)
    p = pose_dir / POSE_JSON
    if not p.is_file():
        raise PoseStageError(f"{pose_dir} is not a pose folder (no {POSE_JSON}); create one with `selfpose fit-pose`")
    info = json.loads(p.read_text())
    if not Path(info["run"]).is_dir():
        raise PoseStageError(f"the pretraining run {info['run']} of {pose_dir} is gone; fit the pose head again")
    return LoadedPose(pose_dir, info, load_run(info["run"]), FittedPose.load(pose_dir / "pose_head"))


def evaluate_pose_stage(pose_dir, data, subjects=None, every: int = 1, progress: bool = True,
                        features=None) -> dict:
    """Evaluate a pose folder on ``data`` (optionally some subjects, every ``every``-th frame).

    ``features``: an optional :class:`~selfpose.pose.features.FeatureCache` of
    the pose folder's run on ``data`` (without subject selection).
    """
    from selfpose.data.store import Dataset
    from selfpose.pose.evaluate import evaluate, write_report
    from selfpose.pose.features import extract
    from selfpose.pose.labels import label_subset

    lp = load_pose(pose_dir)
    cfg = from_dict(PoseStageConfig, lp.info["config"])
    ds = _select(Dataset.open(data), subjects)
    frames = label_subset(ds, 1.0 / every if every > 1 else 1.0)
    if features is not None:
        if subjects or Path(features.ds.root).resolve() != Path(ds.root).resolve():
            raise PoseStageError("a feature cache serves the whole dataset it was made for, without --subjects")
        fs = features.get(frames)
    else:
        fs = extract(model_fns(lp.model, _stored_hw(ds)), ds, frames, batch_size=cfg.batch_size,
                     autocast=cfg.autocast, progress=progress)
    results = evaluate(lp.head.predict(fs), fs)
    results["box_iou"] = results.get("detection", {}).get("mean_iou", float("nan"))
    results["data"] = str(Path(data).resolve())
    results["subjects"] = ds.subjects()
    write_report(results, pose_dir)
    return results


def predict_with_pose(pose_dir, video, out, step: int = 1, progress: bool = True) -> dict:
    """Run :func:`selfpose.pose.predict.predict_video` with a pose folder's model and head."""
    from selfpose.pose.predict import predict_video

    lp = load_pose(pose_dir)
    return predict_video(lp.model, lp.head, video, out, step=step, progress=progress)


def analyze_run(run_dir, data, out=None, labels: float = 0.1, pose_steps: int = 1000, progress: bool = True) -> dict:
    """Transfers, KMeans subject accuracy of v and i, and pose from i vs v (validation N-MPJPE)."""
    from selfpose.data.store import Dataset
    from selfpose.pose.analyze import analyze, transfer_pictures
    from selfpose.pose.features import extract
    from selfpose.pose.fit import fit_pose
    from selfpose.pose.labels import label_subset, split_validation
    from selfpose.pretrain import load_run

    run = load_run(run_dir)
    ds = Dataset.open(data)
    out = Path(out) if out is not None else Path(run_dir) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    model = run.model
    pics = {}
    if model.cfg.split and model.decoder is not None:
        transfer_pictures(model, ds, out_png=out / "transfers.png")
        pics["transfers"] = str(out / "transfers.png")

    has3d = all(s.has("joints3d") for s in ds.sequences)
    fit_fn = None
    if has3d:
        cfg = PoseConfig(fraction=labels, steps=pose_steps)
        labelled = label_subset(ds, cfg.fraction, seed=cfg.seed)
        tr, va = split_validation(ds, labelled, cfg.val_fraction, cfg.val_by, cfg.seed)

        def fit_fn(feature_fn):
            # Same labelled frames and held-out takes for v and for i.
            kw = dict(batch_size=64, autocast=True, progress=progress)
            fitted = fit_pose(extract(feature_fn, ds, tr, **kw), cfg, extract(feature_fn, ds, va, **kw),
                              progress=progress)
            return {"val_n_mpjpe": float(fitted.best_val_n_mpjpe)}

    res = analyze(model, ds, fit_fn=fit_fn, progress=progress)
    res.update(pics)
    (out / "analysis.json").write_text(json.dumps(res, indent=1, default=str))
    return res

