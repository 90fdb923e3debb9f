"""Train a 2D→3D lifter on a keypoint dataset, save it as a run folder, evaluate it.

``fit_lifter_run(data, out, cfg)`` (the ``selfpose fit-lifter`` command):

1. reads the training subjects' frames (:mod:`selfpose.lifting.data`; only the
   ``labels_3d`` subjects' 3D labels when set) and holds out whole 3D-labelled
   takes of *those* subjects for validation (never a test subject: model
   selection must not see the test set);
2. fits z-score statistics of the encoded 2D inputs (all training frames, and
   the 2D of ``input_stats_subjects``) and of the pelvis-centred 3D targets (the
   3D-labelled ones), stored with the weights;
3. trains the method's stages (:mod:`selfpose.lifting.loop`: windows, shared
   toolkit, validation every ``eval_every`` steps, best step, checkpoints and
   exact resume into ``RUN/checkpoints``);
4. writes into the run folder (in place, kind ``lifter``): ``config.yaml`` (at
   the start, so ``--resume`` reuses it), ``lifter.safetensors`` (weights +
   normalisation), ``lifter.json`` (format, config, shapes, best step, data,
   timing) and ``metrics.csv`` (validation curve).

``evaluate_lifter_run(run, data, subjects)`` scores it with the metrics of
image pose folders (same JSON layout) and writes ``results.json``/``results.md``
into the run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from selfpose.lifting.config import LifterConfig, load_lifter_config  # noqa: F401  (the public names live here too)
from selfpose.lifting.data import LiftingArrays, encode, load_arrays
from selfpose.lifting.model import FORMAT, KIND, META, VERSION, WEIGHTS, Lifter, LifterError  # noqa: F401

CONFIG_FILE = "config.yaml"


def _val_subset(val: LiftingArrays, max_frames: int, seed: int) -> LiftingArrays:
    """Whole held-out sequences (temporal lifters need neighbours), in a seeded order, about ``max_frames`` frames."""
    seqs = np.unique(val.sequences)
    rng = np.random.default_rng(seed)
    keep, total = [], 0
    for q in rng.permutation(seqs):
        keep.append(q)
        total += int((val.sequences == q).sum())
        if total >= max_frames:
            break
    return val.subset(np.isin(val.sequences, keep))


def split_train_val(arrays: LiftingArrays, cfg: LifterConfig,
                    people: LiftingArrays | None = None) -> tuple[LiftingArrays, LiftingArrays | None]:
    """Training and validation frames.

    With ``cfg.val_subjects``: every frame of ``arrays`` trains, and
    ``people`` (the frames of those subjects, see :func:`load_split`) validate.
    Otherwise: held-out whole takes of the 3D-labelled training frames
    (:func:`selfpose.pose.labels.holdout_mask`); 2D-only frames all stay in
    training (they cannot be validated on).
    """
    from selfpose.pose.labels import holdout_mask

    if cfg.val_subjects:
        people = None if people is None else people.subset(people.has3d)   # validation needs 3D
        if people is None or not len(people):
            raise LifterError(f"val_subjects {', '.join(cfg.val_subjects)}: no 3D-labelled frames of them to "
                              "validate on; name subjects of the data (see `selfpose info DATA`)")
        return arrays, _val_subset(people, cfg.val_max_frames, cfg.seed)
    if cfg.val_fraction == 0 or not arrays.has3d.any():
        return arrays, None
    lab = np.flatnonzero(arrays.has3d)
    mask = np.zeros(len(arrays), bool)
    mask[lab] = holdout_mask(arrays.takes[lab], arrays.sequences[lab], arrays.frame_ids[lab], cfg.val_fraction,
                             "take", cfg.seed)
    if not mask.any():
        return arrays, None
    return arrays.subset(~mask), _val_subset(arrays.subset(mask), cfg.val_max_frames, cfg.seed)


def load_split(data, cfg: LifterConfig, progress: bool = False) -> tuple[LiftingArrays, LiftingArrays | None]:
    """The training frames of ``data`` and, with ``cfg.val_subjects``, the validation people's frames (else None).

    Without ``train_subjects`` every subject trains except the validation people.
    With ``cfg.keypoints_2d`` the 2D (and, with ``image_features``, the
    features) are that network's predictions for the image dataset ``data``.
    """
    if cfg.keypoints_2d:
        return _load_predicted(data, cfg, progress)
    splits = cfg.train_splits or None
    arrays = load_arrays(data, cfg.train_subjects or None, labels_3d=cfg.labels_3d or None, splits=splits)
    if not cfg.val_subjects:
        return arrays, None
    if not cfg.train_subjects:
        arrays = arrays.subset(~np.isin(arrays.subjects, list(cfg.val_subjects)))
        if not len(arrays):
            raise LifterError("every subject of the data is in val_subjects: nothing left to train on")
    from selfpose.data.store import Dataset

    have = Dataset.open(data).subjects()
    missing = sorted(set(cfg.val_subjects) - set(have))
    if missing:
        raise LifterError(f"val_subjects {', '.join(missing)} not in {data} (it has {', '.join(have)}); "
                          "choose others (val_subjects=...)")
    return arrays, load_arrays(data, list(cfg.val_subjects), splits=splits)


def load_stats_2d(data, cfg: LifterConfig, trained: set[str]) -> LiftingArrays | None:
    """The 2D of ``cfg.input_stats_subjects`` not already trained on (their 3D never read), or None."""
    extra = [s for s in cfg.input_stats_subjects if s not in trained]
    if not extra:
        return None
    from selfpose.data.store import Dataset

    missing = sorted(set(extra) - set(Dataset.open(data).subjects()))
    if missing:
        raise LifterError(f"input_stats_subjects {', '.join(missing)} not in {data}; choose others "
                          "(input_stats_subjects=...)")
    # labels_3d=() labels no subject: every sequence comes back 2D-only and no joints3d is opened
    return load_arrays(data, extra, require_3d=False, labels_3d=(), splits=cfg.train_splits or None)


def _load_predicted(data, cfg: LifterConfig, progress: bool) -> tuple[LiftingArrays, LiftingArrays | None]:
    """:func:`load_split` on the 2D network ``cfg.keypoints_2d``'s predictions (one pass over the frames)."""
    from selfpose.lifting.heatmap2d import Heatmap2D
    from selfpose.lifting.image_chain import predict_chain

    if not is_image_dataset(data):
        raise LifterError(f"keypoints_2d predicts 2D from frames, but {data} has none; give an image dataset "
                          "(e.g. `selfpose synth lab`)")
    subjects = [*cfg.train_subjects, *cfg.val_subjects] if cfg.train_subjects else None
    chain = predict_chain(Heatmap2D.load(cfg.keypoints_2d), data, subjects, progress=progress)
    arrays = chain.with_features() if cfg.image_features else chain.arrays
    if not cfg.val_subjects:
        return arrays, None
    held = np.isin(arrays.subjects, list(cfg.val_subjects))
    if not held.any():
        raise LifterError(f"val_subjects {', '.join(cfg.val_subjects)}: no frames of them in {data}")
    if held.all():
        raise LifterError("every subject of the data is in val_subjects: nothing left to train on")
    return arrays.subset(~held), arrays.subset(held)


def build_lifter(train: LiftingArrays, cfg: LifterConfig, stats_2d: LiftingArrays | None = None) -> Lifter:
    """An untrained :class:`Lifter` of ``cfg.method`` with normalisation fitted on ``train``.

    Inputs: z-scoring of the clean encoded 2D of every training frame and of
    ``stats_2d``'s frames (2D only; see ``LifterConfig.input_stats_subjects``)
    (visibility columns stay 0/1, so "missing" is exactly 0 after it too);
    targets: of the 3D-labelled frames' pelvis-centred 3D.
    """
    from selfpose.lifting.lifters import LIFTERS
    from selfpose.training.toolkit import column_spread

    J = train.num_joints
    raw = torch.from_numpy(encode(train, None, cfg.input_norm))
    has_stats = stats_2d is not None and len(stats_2d)
    extra = [torch.from_numpy(encode(stats_2d, None, cfg.input_norm))] if has_stats else []
    in_mean, in_std = column_spread(torch.cat([raw, *extra]))
    in_mean[2 * J + 2:3 * J + 2], in_std[2 * J + 2:3 * J + 2] = 0.0, 1.0   # visibility 0/1; features z-scored
    y = torch.from_numpy(train.joints3d[train.has3d].reshape(-1, 3 * J))
    out_mean, out_std = column_spread(y)
    torch.manual_seed(cfg.seed)
    net = LIFTERS[cfg.method](raw.shape[1], 3 * J, cfg)
    return Lifter(net, cfg, in_mean, in_std, out_mean, out_std, J)


def _check_2d_only(train: LiftingArrays, cfg: LifterConfig) -> None:
    """Refuse 2D-only subjects for a method that cannot learn from them (they would be silently ignored)."""
    from selfpose.lifting.lifters import LIFTERS

    if not LIFTERS[cfg.method].learns_from_2d_only and not train.has3d.all() and cfg.labels_3d:
        raise LifterError(f"{cfg.method} learns from 3D labels only: the 2D-only subjects would be ignored; "
                          "use method=pose_machine, or drop labels_3d (and train_subjects) to the 3D-labelled ones")


def fit_lifter(train: LiftingArrays, cfg: LifterConfig, val: LiftingArrays | None = None, progress: bool = True,
               run_dir=None, resume: bool = False, stats_2d: LiftingArrays | None = None) -> Lifter:
    """Train ``cfg.method`` on ``train``; keep the best step (over all stages) on ``val``.

    Args:
        train: training frames; frames without 3D (``has3d`` False) reach only
            methods that learn from 2D alone (``pose_machine``).
        val: held-out frames with 3D (whole sequences), or None.
        run_dir, resume: checkpoints (see :func:`selfpose.lifting.loop.train_stages`).
        stats_2d: frames whose 2D also fits the input z-scoring (never trained on).

    Returns:
        the :class:`Lifter`; ``info`` holds the curve, best step and seconds.
    """
    from selfpose.lifting.loop import default_stages, train_stages

    if train.joints3d is None or int(train.has3d.sum()) < 2:
        raise LifterError(f"need at least 2 training frames with 3D, got {int(train.has3d.sum())}")
    lifter = build_lifter(train, cfg, stats_2d)
    method = lifter.method
    _check_2d_only(train, cfg)
    stages = (method.stages or default_stages)(lifter, cfg)
    lifter.info = train_stages(lifter, train, val, cfg, stages, run_dir=run_dir, resume=resume, progress=progress)
    return lifter


def fit_lifter_run(data, out, cfg: LifterConfig, overwrite: bool = False, resume: bool = False,
                   progress: bool = True) -> dict:
    """``selfpose fit-lifter``: train on ``cfg.train_subjects`` of ``data``, writing the run folder ``out`` in place.

    ``resume`` continues from the run's newest checkpoint; ``overwrite``
    deletes only the files a lifter run writes, then starts again.
    """
    import shutil

    import yaml

    from selfpose.config import to_dict
    from selfpose.errors import OutputError
    from selfpose.outputs import KINDS, inplace_output
    from selfpose.training.logs import write_metrics

    out = Path(out)
    if resume and overwrite:
        raise LifterError("choose either --resume (continue the run) or --overwrite (start over), not both")

    def written() -> list[Path]:
        return [p for p in out.iterdir() if any(p.match(pat) for pat in KINDS[KIND].entries)] if out.is_dir() else []

    def check() -> None:
        if written() and not resume and not overwrite:
            raise OutputError(f"{out} already holds a lifter run; pass --resume to continue it, --overwrite "
                              "to start over, or choose another output folder")
        if resume and not (out / "checkpoints").is_dir():
            raise LifterError(f"{out} has no checkpoints to resume from; run fit-lifter without --resume")

    check()   # before reading the data: a refusal costs nothing and creates nothing
    if cfg.keypoints_2d:   # the run's config names the 2D network wherever it is called from
        import dataclasses

        cfg = dataclasses.replace(cfg, keypoints_2d=str(Path(cfg.keypoints_2d).resolve()))
    arrays, people = load_split(data, cfg, progress)
    _check_2d_only(arrays, cfg)
    train, val = split_train_val(arrays, cfg, people)
    stats_2d = load_stats_2d(data, cfg, set(arrays.subjects.tolist()))
    with inplace_output(out, KIND, inputs=[data, *([cfg.keypoints_2d] if cfg.keypoints_2d else [])]):
        check()
        if not resume:
            for p in written():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            (out / CONFIG_FILE).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        lifter = fit_lifter(train, cfg, val, progress=progress, run_dir=out, resume=resume, stats_2d=stats_2d)
        lifter.info.update({"data": str(Path(data).resolve()), "subjects": sorted(set(arrays.subjects.tolist())),
                            "subjects_3d": sorted(set(arrays.subjects[arrays.has3d].tolist())),
                            "input_stats_frames": len(train) + (len(stats_2d) if stats_2d is not None else 0)})
        lifter.save(out)
        write_metrics(out, lifter.info["curve"])
        return {k: v for k, v in lifter.info.items() if k != "curve"}


def is_image_dataset(data) -> bool:
    """Whether the store ``data`` holds frames (an image dataset: the 2D network's data) rather than keypoints only."""
    from selfpose.data.store import Dataset

    return any(rec.has("frames") for rec in Dataset.open(data))


def is_lifter_run(folder) -> bool:
    """Whether ``folder`` is a lifter run (its marker says so, or it holds ``lifter.json``)."""
    from selfpose.outputs import output_kind

    folder = Path(folder)
    return folder.is_dir() and (output_kind(folder) == KIND or (folder / META).is_file())


def evaluate_lifter_run(run, data, subjects=None, noise: bool | None = None, correction: bool | None = None,
                        write: bool = True, splits=None, exclude_takes=None, keypoints_2d=None,
                        flip: bool | None = None) -> dict:
    """Score the lifter run ``run`` on ``data`` (optionally ``subjects``); write ``results.json``/``.md`` into it.

    ``noise``: evaluate on 2D through the run's noise model (seeded by its
    seed); None = the run's ``test_noise``. ``correction``: the method's
    test-time correction on/off (None: the method's default; methods without
    one ignore it). ``write``: False leaves the run folder untouched.
    ``splits``: only sequences of these splits (e.g. HumanEva-I's ``Validate``).
    ``exclude_takes``: take ids left out of the score (e.g. test takes whose
    motion repeats a training take).
    ``keypoints_2d``: a 2D heatmap network run (the image path): on an image
    dataset, lift the 2D it predicts from the frames instead of the 2D labels
    (the whole image → 2D → 3D chain); ``2d`` in the result holds its 2D error.
    ``flip``: average with the prediction from the mirrored 2D (None: the run's ``flip_test``).

    Returns:
        :func:`selfpose.evaluation.metrics.evaluate_poses`' layout (``overall``,
        ``per_action``, ``action_average``; MPJPE/N-MPJPE/P-MPJPE mm) plus
        ``num_samples``, ``excluded_frames``, ``data``, ``subjects``, ``method``, ``input_2d``,
        ``correction`` (the rule counts, or None when it did not run) and ``seconds`` (prediction wall time).
    """
    import time

    from selfpose.evaluation.metrics import evaluate_poses
    from selfpose.outputs import sibling_lock
    from selfpose.pose.evaluate import write_report

    run = Path(run)
    if not is_lifter_run(run):
        raise LifterError(f"{run} is not a lifter run (no {META}); create one with `selfpose fit-lifter`")
    with sibling_lock(run):
        lifter = Lifter.load(run)
        chain = None
        if keypoints_2d is not None:
            from selfpose.lifting.heatmap2d import Heatmap2D
            from selfpose.lifting.image_chain import predict_chain

            if splits:
                raise LifterError("--keypoints-2d cannot be combined with --split yet; choose the frames with "
                                  "--subjects and --exclude-takes")
            if lifter.feature_dim and lifter.cfg.keypoints_2d and \
                    Path(keypoints_2d).resolve() != Path(lifter.cfg.keypoints_2d).resolve():
                import warnings

                warnings.warn(f"{run} was trained on the image features of {lifter.cfg.keypoints_2d}, not of "
                              f"{keypoints_2d}: another network's features mean other things", stacklevel=2)
            chain = predict_chain(Heatmap2D.load(keypoints_2d), data, subjects, progress=True)
            arrays = chain.inputs_for(lifter)   # with its image features when the lifter was trained on them
        else:
            arrays = load_arrays(data, subjects, splits=splits)
        if exclude_takes:
            arrays = arrays.subset(~np.isin(arrays.takes, list(exclude_takes)))
            if not len(arrays):
                raise LifterError("every test take is excluded (exclude_takes): nothing to score")
        use_noise = lifter.cfg.test_noise if noise is None else noise
        t0 = time.perf_counter()
        pred = lifter.predict(arrays, lifter.cfg.noise if use_noise else None, seed=lifter.cfg.seed + 2,
                              correction=correction, flip=flip)
        seconds = time.perf_counter() - t0
        usable = np.isfinite(arrays.joints3d).all(axis=(1, 2))
        if not usable.any():
            raise LifterError(f"no frame of {data} has finite 3D labels: nothing to score")
        res = evaluate_poses(pred[usable], arrays.joints3d[usable], actions=list(arrays.actions[usable]))
        res.update({"num_samples": len(arrays), "excluded_frames": int((~usable).sum()),
                    "data": str(Path(data).resolve()), "subjects": sorted(set(arrays.subjects.tolist())),
                    "method": lifter.cfg.method, "input_2d": "noisy (run's noise model)" if use_noise else "ground truth",
                    "correction": lifter.last_correction, "seconds": seconds,
                    "flip_test": bool(lifter.cfg.flip_test if flip is None else flip),
                    "splits": list(splits) if splits else None,
                    "excluded_takes": sorted(exclude_takes) if exclude_takes else [],
                    "frames_per_second": len(arrays) / max(seconds, 1e-9)})
        if chain is not None:
            from selfpose.lifting.heatmap2d import errors_2d

            res["input_2d"] = f"predicted by {Path(keypoints_2d).resolve()}"
            res["2d"] = errors_2d(chain.arrays.joints2d, chain.joints2d_true, mask=chain.inside())
        if write:
            res["picture"] = _write_picture(run, pred[usable], arrays.subset(usable))
            write_report(res, run, title=f"Lifter evaluation ({lifter.cfg.method})")
    return res


def _write_picture(run: Path, pred: np.ndarray, arrays) -> str | None:
    """``run/skeletons.png`` (:func:`selfpose.lifting.pictures.lifting_figure`); its name, or None when it failed.

    A picture is a courtesy next to the figures: a failure to draw it is a
    warning, never a lost evaluation.
    """
    import warnings

    from selfpose.lifting.pictures import lifting_figure
    from selfpose.viz.skeleton import save_figure

    labels = [f"{q} f{f}" for q, f in zip(arrays.sequences, arrays.frame_ids)]   # the sequence names subject, take, camera
    try:
        save_figure(lifting_figure(pred, arrays.joints3d, labels), run / "skeletons.png")
    except (OSError, ValueError) as e:
        warnings.warn(f"could not draw {run / 'skeletons.png'}: {e}", stacklevel=2)
        return None
    return "skeletons.png"
