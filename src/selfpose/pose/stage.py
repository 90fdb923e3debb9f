"""The pose stage wired to pretraining runs: what ``fit-pose``, ``evaluate``,
``predict`` and ``analyze`` call.

A *pose folder* (``fit-pose --out POSE``) holds ``pose.json`` (which run,
which data, which labels, the config, and ``encoder``: the checkpoint step
and sha256 of the weights it was fitted on), the fitted head (``pose_head/``:
``pose_head.safetensors``, ``.json``, ``metrics.csv``) and its own link to
those weights and copy of the run's config (``encoder/``, see
:mod:`selfpose.pose.encoder`): it is everything needed to predict, whatever
later happens to the run. Later commands may add ``results.json``/``.md``
(``evaluate``) and ``analysis/`` (``analyze POSE``). Nothing is unpickled.

Every model access goes through the method interface
(:class:`~selfpose.methods.base.Method`): ``encode_for_pose`` for features
and boxes, ``codes`` and ``drawings`` for the analyses, so any registered
method runs through this stage. ``finetune.enabled`` (``fit-pose --finetune``)
trains the backbone's later stages with the head instead
(:mod:`selfpose.pose.finetune`); its pose folder has the same layout, with the
fine-tuned weights in ``encoder/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from selfpose.config import ConfigError, from_dict, to_dict
from selfpose.errors import SelfposeError
from selfpose.pose.finetune import FinetuneConfig
from selfpose.pose.fit import PoseConfig
from selfpose.pose.probe_fit import ProbeConfig

POSE_JSON = "pose.json"
PROBES_DIR = "probes"


class PoseStageError(SelfposeError, RuntimeError):
    """A pose folder or its run is missing or inconsistent."""


@dataclass
class PoseStageConfig:
    """``selfpose fit-pose`` settings.

    Attributes:
        pose: the head and its training (:class:`~selfpose.pose.fit.PoseConfig`;
            ``pose.fraction`` is the share of labelled frames).
        probes: the closed-form probes fitted beside the head on the same
            frames and chosen on the same validation frames
            (:class:`~selfpose.pose.probe_fit.ProbeConfig`; ``probes.kinds=[]``: none).
        finetune: ``finetune.enabled`` trains the backbone's later stages with the
            head instead of freezing the encoder (:mod:`selfpose.pose.finetune`).
        subjects: subjects whose frames may be labelled (empty: all of the dataset).
        looks_per_subject: of those, only each subject's first this many rendered looks
            (:meth:`~selfpose.data.store.Dataset.with_looks`; None: every look). The paper's S1 protocol
            labels one person in one outfit; the house renders give each subject several looks.
        batch_size: frames per forward pass when extracting features.
        autocast: bf16 feature extraction (about 2.5× faster on a CPU with native bf16; ``auto``:
            only there — elsewhere it is emulated and many times slower).
    """

    pose: PoseConfig = field(default_factory=PoseConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    subjects: tuple[str, ...] = ()
    looks_per_subject: int | None = None
    batch_size: int = 64
    autocast: bool | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        looks = self.looks_per_subject
        if looks is not None and (isinstance(looks, bool) or not isinstance(looks, int) or looks < 1):
            raise ConfigError(f"looks_per_subject must be a whole number >= 1 (or null for every look), got {looks!r}")


def pose_feature_fn(method):
    """``feature_fn`` of :mod:`selfpose.pose.features`: ``{"features", "boxes" (with a detector)}`` of ``method``.

    Boxes are in pixels of the frames given (the stored frames), as the
    dataset's boxes are.
    """
    from selfpose.methods.base import as_method

    method = as_method(method)

    def fn(frames: torch.Tensor, boxes: torch.Tensor | None = None, background: torch.Tensor | None = None) -> dict:
        if background is not None:
            frames = method.pose_input(frames, background)
        out = method.encode_for_pose(frames, boxes) if boxes is not None else method.encode_for_pose(frames)
        res = {"features": out["features"].float()}
        if out.get("boxes") is not None:
            res["boxes"] = out["boxes"].float()
        return res

    # extract() hands a function with this flag the estimated background of each frame.
    fn.reads_background = reads_background(method)
    return fn


def reads_background(method) -> bool:
    """Whether ``method`` reads its pose frames through ``pose_input`` with each frame's estimated background."""
    return bool(getattr(method, "reads_background", False))


def reads_boxes(method) -> bool:
    """Whether ``method``'s features are read at the stored person boxes (``extract(..., pass_boxes=...)``)."""
    return bool(getattr(method, "reads_boxes", False))


def split_labels(ds, cfg: PoseConfig):
    """``(labelled, train, val)`` frame indices of ``ds`` for a pose head: the labelled share and its split.

    Every fit of the pose stage (the head, the probes, the benchmark's
    references) draws its frames here, so they see the same frames;
    ``val`` keeps at most ``cfg.val_max_frames`` of the held-out frames.
    """
    from selfpose.pose.labels import evenly_spaced, label_subset, split_validation

    labelled = label_subset(ds, cfg.fraction, seed=cfg.seed)
    tr, va = split_validation(ds, labelled, cfg.val_fraction, cfg.val_by, cfg.seed)
    # frames beyond val_max_frames stay out of training too: the held-out person is never trained on
    return labelled, tr, evenly_spaced(va, cfg.val_max_frames)


def fit_heads(train_fs, val_fs, cfg: PoseStageConfig, progress: bool = True):
    """The MLP head and the probes of ``cfg`` on training features, both chosen on ``val_fs`` (or None).

    Returns:
        ``(FittedPose, FittedProbes or None)``.
    """
    from selfpose.pose.fit import fit_pose
    from selfpose.pose.probe_fit import fit_probes

    return fit_pose(train_fs, cfg.pose, val_fs, progress=progress), fit_probes(train_fs, cfg.probes, val_fs)


def score_heads(head, probes, fs) -> dict:
    """:func:`~selfpose.pose.evaluate.evaluate` of the head on ``fs``, with ``"probes"``:
    ``{probe: {"chosen": alpha or k, **overall metrics}}`` scored on the same frames."""
    from selfpose.pose.evaluate import evaluate

    results = evaluate(head.predict(fs), fs)
    if probes is not None:
        results["probes"] = {k: {"chosen": probes.chosen[k], **evaluate(pred, fs)["overall"]}
                             for k, pred in probes.predict(fs.features).items()}
    return results


def subjects_of(fs) -> list[str]:
    """The sorted subjects of a feature set's rows (``[]`` for none)."""
    return [] if fs is None else sorted(set(fs.subjects.tolist()))


def fit_pose_stage(run_dir, data, out, cfg: PoseStageConfig, overwrite: bool = False, progress: bool = True,
                   features=None, read: list[str] | tuple[str, ...] = ()) -> dict:
    """Fit a pose head on frozen features of ``run_dir`` using ``cfg.pose.fraction`` of ``data``'s labels.

    ``features``: an optional :class:`~selfpose.pose.features.FeatureCache` of
    this run's model on ``data`` (a benchmark shares one across label shares).
    ``read``: KEY=VALUE overrides of the run's config that change how its weights are read, never which
    (:func:`~selfpose.pretrain.read_run_as`, e.g. ``method_config.sync.pose_background=as_pretrained`` for a run
    made before that key); the pose folder keeps the config it was read with and records ``read``.

    The pose folder is built beside ``out`` and swapped in only when complete
    (:func:`selfpose.outputs.atomic_output`): a failing fit leaves an earlier
    pose folder as it was, and ``--overwrite`` replaces only a pose folder —
    never the run, the dataset or a folder holding other files.
    """
    from selfpose.outputs import atomic_output
    from selfpose.training.device import resolve_device

    resolve_device(cfg.pose.device, "pose.device")   # a missing GPU: one line, before any feature is extracted
    if read and features is not None:
        raise PoseStageError("a shared feature cache holds the run's features as the run reads them; fit without "
                             "--read, or without the cache")
    # The pose folder may live inside its run folder (RUN/pose), not inside the dataset.
    with atomic_output(out, "pose", overwrite=overwrite, inputs=[(run_dir, True), data]) as tmp:
        return _fit_pose_into(tmp, run_dir, data, cfg, progress, features, tuple(read))


def _fit_pose_into(out: Path, run_dir, data, cfg: PoseStageConfig, progress: bool, features,
                   read: tuple[str, ...] = ()) -> dict:
    """The body of :func:`fit_pose_stage`, writing into the (partial) folder ``out``."""
    from selfpose.data.store import Dataset
    from selfpose.pose.encoder import pin_encoder
    from selfpose.pose.features import extract
    from selfpose.pretrain import load_run, read_run_as

    if cfg.finetune.enabled:
        return _finetune_into(out, run_dir, data, cfg, progress, features, read)
    run = getattr(features, "source", None) if features is not None else None
    if run is None or Path(run.path).resolve() != Path(run_dir).resolve():
        from selfpose.training.device import resolve_device

        run = read_run_as(load_run(run_dir), read)
        run.method.to(resolve_device(cfg.pose.device, "pose.device"))   # features where the head trains
    ds = Dataset.open(data).with_subjects(cfg.subjects).with_looks(cfg.looks_per_subject)
    fn = pose_feature_fn(run.method)
    labelled, tr, va = split_labels(ds, cfg.pose)
    kw = dict(batch_size=cfg.batch_size, autocast=cfg.autocast, progress=progress,
              device=next(run.method.parameters()).device, pass_boxes=reads_boxes(run.method))
    get = features.get if features is not None else (lambda frames: extract(fn, ds, frames, **kw))
    narrowed = bool(cfg.subjects) or cfg.looks_per_subject is not None
    if features is not None and (narrowed or Path(features.ds.root).resolve() != Path(ds.root).resolve()):
        raise PoseStageError(f"a feature cache serves the whole dataset it was made for ({features.ds.root}), "
                             "without pose.subjects or looks_per_subject")
    train_fs = get(tr)
    val_fs = get(va) if len(va) else None
    fitted, probes = fit_heads(train_fs, val_fs, cfg, progress)
    out.mkdir(parents=True, exist_ok=True)
    fitted.save(out / "pose_head")
    if probes is not None:
        probes.save(out / PROBES_DIR)
    encoder = pin_encoder(run, out)   # the exact weights the features came from, kept with the head
    info = {"run": str(Path(run_dir).resolve()), "data": str(Path(data).resolve()), "config": to_dict(cfg),
            "method": run.config.method, "encoder": encoder, **({"read": list(read)} if read else {}),
            "num_labelled": int(len(labelled)), "train_frames": int(len(tr)), "val_frames": int(len(va)),
            "val_n_mpjpe": _float_or_none(fitted.best_val_n_mpjpe),
            "best_step": None if fitted.best_step is None else int(fitted.best_step),
            # who trained the heads and who chose among their steps and settings (held-out people with val_by=subject)
            "train_subjects": subjects_of(train_fs), "val_subjects": subjects_of(val_fs),
            "probes": probes.info() if probes is not None else {}}
    (out / POSE_JSON).write_text(json.dumps(info, indent=1))
    return info


def _finetune_into(out: Path, run_dir, data, cfg: PoseStageConfig, progress: bool, features,
                   read: tuple[str, ...] = ()) -> dict:
    """Fine-tuning's body of :func:`fit_pose_stage` (a fresh copy of the run: its weights change)."""
    from selfpose.data.store import Dataset
    from selfpose.pose.finetune import finetune_pose, write_finetuned_folder
    from selfpose.pretrain import load_run, read_run_as
    from selfpose.training.device import resolve_device

    if features is not None:
        raise PoseStageError("fine-tuning changes the encoder, so a shared feature cache cannot serve it")
    run = read_run_as(load_run(run_dir), read)
    run.method.to(resolve_device(cfg.pose.device, "pose.device"))
    ds = Dataset.open(data).with_subjects(cfg.subjects).with_looks(cfg.looks_per_subject)
    pose, info = finetune_pose(run, ds, cfg, progress)
    return write_finetuned_folder(out, run, run_dir, data, cfg, pose, {**info, **({"read": list(read)} if read else {})})


def _float_or_none(v) -> float | None:
    return None if v is None else float(v)


@dataclass
class LoadedPose:
    """A pose folder, loaded: the method it was fitted on (its pinned weights, eval mode), the fitted head
    and its probes (None in a pose folder fitted without them)."""

    path: Path
    info: dict
    run: Any
    head: Any
    probes: Any = None

    @property
    def method(self):
        return self.run.method

    @property
    def model(self):
        return self.run.model

    @torch.inference_mode()
    def predict_frames(self, frames: torch.Tensor, boxes: torch.Tensor | None = None,
                       background: torch.Tensor | None = None) -> dict:
        """uint8/float frames (B, 3, H, W) → {"joints3d" (B,17,3) mm pelvis-centred, "features", "boxes" px/None}.

        ``boxes``: the person boxes (B, 4) px, for a method that reads them (``reads_boxes``);
        ``background``: each frame's estimated background (uint8/float, as ``frames``), for a method that reads
        it (``reads_background``)."""
        if reads_boxes(self.method) and boxes is None:
            raise PoseStageError(f"method {self.info.get('method')!r} reads the person at given boxes and none were "
                                 "given; pass the person boxes (B, 4) px")
        if reads_background(self.method):
            if background is None:
                raise PoseStageError(f"method {self.info.get('method')!r} reads each frame with its estimated "
                                     "background (pose_background: as_pretrained) and none was given; pass the "
                                     "backgrounds (B, 3, H, W)")
            from selfpose.data.loader import to_float

            as_float = lambda t: to_float(t) if t.dtype == torch.uint8 else t.float()  # noqa: E731
            frames = self.method.pose_input(as_float(frames), as_float(background))
        out = self.method.encode_for_pose(frames, boxes) if boxes is not None else self.method.encode_for_pose(frames)
        feats = out["features"].float()
        return {"joints3d": torch.as_tensor(self.head.predict(feats.cpu().numpy())), "features": feats,
                "boxes": out.get("boxes"), "v": feats}


def load_pose(pose_dir) -> LoadedPose:
    """Load a pose folder written by :func:`fit_pose_stage`, with exactly the encoder it was fitted on.

    Raises:
        PoseStageError: not a pose folder.
        EncoderMismatch: its encoder weights are missing or were changed.
    """
    from selfpose.pose.encoder import load_pinned
    from selfpose.pose.fit import FittedPose
    from selfpose.pose.probe_fit import FittedProbes

    pose_dir = Path(pose_dir)
    p = pose_dir / POSE_JSON
    if not p.is_file():
        raise PoseStageError(f"{pose_dir} is not a pose folder (no {POSE_JSON}); create one with `selfpose fit-pose`")
    try:
        info = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PoseStageError(f"{p} is unreadable ({e}); fit the pose head again") from None
    if not isinstance(info, dict):
        raise PoseStageError(f"{p} does not hold a pose-folder record (a JSON object); fit the pose head again")
    run = load_pinned(pose_dir, info.get("encoder"))
    probes = FittedProbes.load(pose_dir / PROBES_DIR) if (pose_dir / PROBES_DIR).is_dir() else None
    return LoadedPose(pose_dir, info, run, FittedPose.load(pose_dir / "pose_head"), probes)


def evaluate_pose_stage(pose_dir, data, subjects=None, every: int = 1, progress: bool = True,
                        features=None) -> dict:
    """Evaluate a pose folder on ``data`` (optionally some subjects, every ``every``-th frame).

    ``features``: an optional :class:`~selfpose.pose.features.FeatureCache` of
    the pose folder's run on ``data`` (without subject selection).
    """
    from selfpose.outputs import sibling_lock

    # The pose folder's own lock (the one fit-pose holds while it builds or replaces it): an evaluation never
    # reads a folder that is being replaced, nor writes results into it meanwhile.
    with sibling_lock(pose_dir):
        return _evaluate_locked(pose_dir, data, subjects, every, progress, features)


def _evaluate_locked(pose_dir, data, subjects, every: int, progress: bool, features) -> dict:
    from selfpose.data.store import Dataset
    from selfpose.pose.evaluate import write_report
    from selfpose.pose.features import extract
    from selfpose.pose.labels import label_subset

    lp = load_pose(pose_dir)
    cfg = from_dict(PoseStageConfig, lp.info["config"])
    ds = Dataset.open(data).with_subjects(subjects)
    frames = label_subset(ds, 1.0 / every if every > 1 else 1.0, finite_only=False)
    if features is not None:
        if subjects or Path(features.ds.root).resolve() != Path(ds.root).resolve():
            raise PoseStageError("a feature cache serves the whole dataset it was made for, without --subjects")
        src = getattr(features, "source", None)
        if src is not None and src.weights_sha256 != lp.run.weights_sha256:
            raise PoseStageError(f"the feature cache was made with other encoder weights than {pose_dir} was "
                                 "fitted on; evaluate without the cache")
        fs = features.get(frames)
    else:
        fs = extract(pose_feature_fn(lp.method), ds, frames, batch_size=cfg.batch_size,
                     autocast=cfg.autocast, progress=progress, pass_boxes=reads_boxes(lp.method))
    results = score_heads(lp.head, lp.probes, fs)
    results["box_iou"] = results.get("detection", {}).get("mean_iou", float("nan"))
    results["data"] = str(Path(data).resolve())
    results["subjects"] = ds.subjects()
    write_report(results, pose_dir)
    return results


def predict_with_pose(pose_dir, video, out, step: int = 1, progress: bool = True) -> dict:
    """Run :func:`selfpose.pose.predict.predict_video` with a pose folder's model and head.

    ``out`` may not be a dataset, run, pose or other selfpose output folder:
    predictions written into one would mix with its files (and make its
    ``--overwrite`` refuse it as holding files selfpose did not write).
    """
    from selfpose.outputs import output_kind
    from selfpose.pose.predict import PredictError, predict_video

    kind = output_kind(out) if Path(out).is_dir() else None
    if kind is not None:
        raise PredictError(f"{out} is a selfpose {kind} folder; predictions go into a folder of their own — "
                           "choose another --out")
    lp = load_pose(pose_dir)
    return predict_video(lp.method, lp.head, video, out, step=step, progress=progress)


def analyze_run(run_dir, data, out=None, labels: float = 0.1, pose_steps: int = 1000, progress: bool = True,
                val_by: str = "take") -> dict:
    """Transfers, KMeans subject accuracy of v and i, and pose from i vs v (validation N-MPJPE).

    ``val_by``: what the pose heads on ``v`` and ``i`` hold out for validation
    (:func:`selfpose.pose.labels.holdout_mask`; the benchmark passes ``subject``).

    ``run_dir``: a pretraining run (its latest valid checkpoint) or a pose
    folder (exactly the encoder it was fitted on; the default output is then
    ``POSE/analysis``). Transfer pictures are drawn when the method can draw
    them (``"transfers"`` in its ``drawings()``).
    """
    from selfpose.data.store import Dataset
    from selfpose.pose.analyze import analyze, transfer_pictures
    from selfpose.pose.features import extract
    from selfpose.pose.fit import fit_pose
    from selfpose.pretrain import load_run

    from selfpose.outputs import output_kind
    from selfpose.pose.analyze import AnalyzeError

    kind = output_kind(out) if out is not None and Path(out).is_dir() else None
    if kind is not None:   # its pictures and analysis.json would mix with that output's files
        raise AnalyzeError(f"{out} is a selfpose {kind} folder; the analysis goes into a folder of its own "
                           "(default: RUN/analysis) — choose another --out")
    run = load_pose(run_dir).run if (Path(run_dir) / POSE_JSON).is_file() else load_run(run_dir)
    ds = Dataset.open(data)
    out = Path(out) if out is not None else Path(run_dir) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    method = run.method
    pics = {}
    if "transfers" in method.drawings():
        transfer_pictures(method, ds, out_png=out / "transfers.png")
        pics["transfers"] = str(out / "transfers.png")

    has3d = all(s.has("joints3d") for s in ds.sequences)
    fit_fn = None
    if has3d:
        cfg = PoseConfig(fraction=labels, steps=pose_steps, val_by=val_by)
        _, tr, va = split_labels(ds, cfg)

        def fit_fn(feature_fn):
            # Same labelled frames and held-out takes for v and for i.
            kw = dict(batch_size=64, autocast="auto", progress=progress)
            fitted = fit_pose(extract(feature_fn, ds, tr, **kw), cfg, extract(feature_fn, ds, va, **kw),
                              progress=progress)
            return {"val_n_mpjpe": float(fitted.best_val_n_mpjpe)}

    res = analyze(method, ds, fit_fn=fit_fn, progress=progress)
    res.update(pics)
    res["encoder"] = {"run": str(run.path), "step": run.step, "sha256": run.weights_sha256}
    (out / "analysis.json").write_text(json.dumps(res, indent=1, default=str))
    return res
