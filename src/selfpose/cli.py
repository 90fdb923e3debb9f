"""The ``selfpose`` command line: parse arguments, load a config, call the library.

Every subcommand is a few lines over a library function (see the imports
inside each command — they are local so that ``selfpose --help`` starts fast).
Errors that a user can fix (bad config key, missing dataset, corrupt video...)
are printed as one line saying what to do, with exit status 2; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    name="selfpose",
    help="Self-supervised 3D human pose from video: synthetic and real data, training, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str) -> None:
    message = " ".join(message.split())   # one line, even if a message was wrapped
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _run(fn, *args, **kwargs):
    """Call a library function; a :class:`~selfpose.errors.SelfposeError` becomes a one-line message, exit 2."""
    from selfpose.errors import SelfposeError

    try:
        return fn(*args, **kwargs)
    except SelfposeError as e:
        _fail(str(e))
    except KeyboardInterrupt as e:
        msg = str(e) or "interrupted: nothing half-written was kept"
        typer.secho(msg, fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(130)


def _overrides(pairs: dict[str, object], extra: Optional[List[str]]) -> list[str]:
    """CLI options that were given, as config ``key=value`` overrides (options win over --config)."""
    out = [f"{k}={','.join(v) if isinstance(v, (list, tuple)) else v}" for k, v in pairs.items() if v is not None]
    return out + list(extra or [])


@app.command()
def synth(
    scenario: str = typer.Argument("lab", help="lab | dive | pan | wild"),
    out: Path = typer.Option(..., "--out", "-o", help="dataset folder to create"),
    motion: Optional[str] = typer.Option(None, help="npz of (T,17,3) mm motion arrays, 'procedural', or omit for the shipped CMU motion"),
    subjects: Optional[str] = typer.Option(None, help="comma-separated subject prefixes of the motion file, e.g. S1,S5"),
    seed: Optional[int] = typer.Option(None, help="changes every random choice, identities included"),
    size: Optional[int] = typer.Option(None, help="frame height and width in pixels (default 128)"),
    fps: Optional[float] = typer.Option(None, help="frames per second of the rendered video"),
    max_seconds: Optional[float] = typer.Option(None, help="cap on each sequence's length"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file of SynthConfig keys"),
    overwrite: bool = typer.Option(False, help="replace an existing dataset folder"),
    set_: Optional[List[str]] = typer.Argument(None, metavar="[KEY=VALUE]...", help="further SynthConfig overrides"),
) -> None:
    """Render a synthetic dataset with exact 3D, 2D, masks, boxes, cameras and backgrounds."""
    from selfpose.config import load
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize

    given = {"scenario": scenario, "motion": motion, "subjects": subjects, "seed": seed,
             "height": size, "width": size, "fps": fps, "max_seconds": max_seconds}
    cfg = _run(load, SynthConfig, config, _overrides(given, set_))
    path = _run(synthesize, cfg, out, overwrite=overwrite)
    typer.echo(f"wrote {path}")


@app.command()
def prepare(
    fmt: str = typer.Argument(..., metavar="FORMAT",
                              help="h36m | mpi-inf-3dhp | humaneva | 3dpw | videos | multiview | mocap"),
    source: Path = typer.Argument(..., help="folder with the dataset's files (or of video files; mocap: the motion .npz)"),
    out: Path = typer.Option(..., "--out", "-o", help="dataset folder to create"),
    size: Optional[int] = typer.Option(None, help="stored frame size in pixels"),
    step: Optional[int] = typer.Option(None, help="keep every STEP-th frame of a video"),
    keypoints: Optional[Path] = typer.Option(None, help="folder of per-video 2D keypoint files (COCO-17 / MediaPipe-33)"),
    cameras: Optional[Path] = typer.Option(None, help="mocap: Human3.6M cameras.pkl (default: seeded synthetic cameras)"),
    calibration: Optional[Path] = typer.Option(None, help="multiview: the cameras' calibration (.qca.txt or .toml)"),
    subjects: Optional[str] = typer.Option(None, help="comma-separated subjects to keep, e.g. S1,S5"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file of PrepareConfig keys"),
    overwrite: bool = typer.Option(False, help="replace an existing dataset folder"),
    set_: Optional[List[str]] = typer.Argument(None, metavar="[KEY=VALUE]...", help="further PrepareConfig overrides"),
) -> None:
    """Convert a real dataset (or a folder of videos) to the selfpose store, in house skeleton and units."""
    from selfpose.config import load
    from selfpose.data.datasets import PrepareConfig, prepare as prepare_dataset

    given = {"size": size, "step": step, "keypoints": keypoints, "cameras": cameras, "calibration": calibration,
             "subjects": subjects}
    cfg = _run(load, PrepareConfig, config, _overrides(given, set_))
    path = _run(prepare_dataset, fmt, source, out, cfg, overwrite=overwrite)
    typer.echo(f"wrote {path}")


@app.command()
def info(
    data: Path = typer.Argument(..., help="dataset folder"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    check: bool = typer.Option(False, "--check", help="validate shapes, ranges and 3D→2D reprojection"),
    max_error: float = typer.Option(2.0, help="--check fails when the worst reprojection error exceeds this (px)"),
) -> None:
    """Describe a dataset: sequences, subjects, actions, views, frames, labels; --check validates it."""
    from selfpose.data import inspect
    from selfpose.data.store import Dataset
    from selfpose.utils.jsonsafe import dumps

    ds = _run(Dataset.open, data, verify=not check)   # --check lists every inconsistency itself
    report = {"summary": _run(inspect.summarize, ds)}
    if check:
        report["check"] = _run(inspect.check, ds, reproj_threshold_px=max_error)
    if as_json:
        typer.echo(dumps(report))
    else:
        typer.echo(inspect.format_summary(report["summary"]))
        if check:
            typer.echo(inspect.format_check(report["check"]))
    if check and not report["check"]["ok"]:
        raise typer.Exit(1)


@app.command("pool-backgrounds")
def pool_backgrounds(
    data: Path = typer.Argument(..., help="dataset folder (changed in place)"),
) -> None:
    """Give the takes of each static camera (same view) one background: the median of their own estimates.

    A person who stands still for most of a take stays in that take's own
    median; the other takes of the camera remove them. Sequences whose own
    background disagrees (another camera under the same view name) keep it.
    `selfpose synth lab ... pool_backgrounds=true` does it while rendering.
    """
    from selfpose.data.background_pool import pool_dataset_backgrounds

    report = _run(pool_dataset_backgrounds, data)
    typer.echo(str(report))


@app.command()
def show(
    data: Path = typer.Argument(..., help="dataset folder"),
    out: Path = typer.Option(Path("sheet.png"), "--out", "-o", help="PNG to write"),
    frames: int = typer.Option(16, help="number of frames in the grid"),
    seed: int = typer.Option(0, help="which frames are sampled"),
) -> None:
    """Draw a contact sheet: frames with box, 2D skeleton and mask, backgrounds, 3D skeletons."""
    from selfpose.data.store import Dataset
    from selfpose.viz.sheet import contact_sheet

    ds = _run(Dataset.open, data)
    path = _run(contact_sheet, ds, out, num_frames=frames, seed=seed)
    typer.echo(f"wrote {path}")


@app.command()
def pretrain(
    data: Path = typer.Option(..., "--data", "-d", help="dataset folder (from synth or prepare)"),
    out: Path = typer.Option(..., "--out", "-o", help="run folder: config, logs, pictures, checkpoints"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML of PretrainConfig keys (see configs/)"),
    resume: bool = typer.Option(False, help="continue from the run's last checkpoint"),
    overwrite: bool = typer.Option(False, help="start again, deleting the run's files"),
    set_: Optional[List[str]] = typer.Argument(None, metavar="[KEY=VALUE]...", help="PretrainConfig overrides, e.g. train.steps=500"),
) -> None:
    """Self-supervised pretraining (default: the temporal method, Honari et al. 2022)."""
    from selfpose.config import load
    from selfpose.pretrain import PretrainConfig, pretrain as run_pretrain

    cfg = _run(load, PretrainConfig, config, list(set_ or []))
    result = _run(run_pretrain, cfg, data, out, resume=resume, overwrite=overwrite)
    typer.echo(f"pretrained {result.step} steps in {result.seconds:.0f} s → {out}")


@app.command("fit-pose")
def fit_pose(
    run: Path = typer.Argument(..., help="pretraining run folder"),
    data: Path = typer.Option(..., "--data", "-d", help="dataset with 3D labels"),
    labels: float = typer.Option(0.01, "--labels", help="share of labelled frames (every K-th frame), e.g. 0.01"),
    out: Path = typer.Option(..., "--out", "-o", help="pose folder to create"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML of PoseStageConfig keys"),
    overwrite: bool = typer.Option(False, help="replace an existing pose folder"),
    finetune: bool = typer.Option(False, "--finetune",
                                  help="fine-tune the backbone's later stages with the head (finetune.* keys; "
                                       "default: the first 3 stages stay frozen) instead of freezing the encoder"),
    read: Optional[List[str]] = typer.Option(None, "--read", metavar="KEY=VALUE",
                                             help="read the run with this override of its config that changes no "
                                                  "weight (repeatable), e.g. "
                                                  "method_config.sync.pose_background=as_pretrained"),
    set_: Optional[List[str]] = typer.Argument(None, metavar="[KEY=VALUE]...", help="PoseStageConfig overrides"),
) -> None:
    """Freeze the pretrained encoder and fit a 3D pose head on a share of labelled frames (or fine-tune it)."""
    from selfpose.config import load
    from selfpose.pose.stage import PoseStageConfig, fit_pose_stage

    extra = ["finetune.enabled=true"] if finetune else []
    cfg = _run(load, PoseStageConfig, config, [f"pose.fraction={labels}", *extra, *(set_ or [])])
    res = _run(fit_pose_stage, run, data, out, cfg, overwrite=overwrite, read=tuple(read or ()))
    val = res.get("val_n_mpjpe")
    probes = {k: min(p["val_n_mpjpe"].values()) for k, p in res.get("probes", {}).items() if p["val_n_mpjpe"]}
    text = "no validation" if val is None else f"validation N-MPJPE {val:.1f} mm" + "".join(
        f", {k} probe {v:.1f}" for k, v in probes.items())
    how = "fine-tuned with the pose head" if res.get("finetune") else "pose head fitted"
    typer.echo(f"{how} on {res['num_labelled']} frames; {text} → {out}")


@app.command("fit-lifter")
def fit_lifter(
    data: Path = typer.Option(..., "--data", "-d", help="keypoint dataset with joints2d and joints3d (prepare mocap)"),
    out: Path = typer.Option(..., "--out", "-o", help="lifter run folder (written in place, with checkpoints)"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML of LifterConfig keys"),
    labels_3d: Optional[str] = typer.Option(None, "--labels-3d",
                                            help="comma-separated training subjects whose 3D labels are used; the "
                                                 "others are 2D-only (pose_machine), e.g. S1"),
    keypoints_2d: Optional[Path] = typer.Option(None, "--keypoints-2d",
                                                help="a 2D network run (method=heatmap2d): train on the 2D it "
                                                     "predicts for the frames of the image dataset DATA"),
    image_features: bool = typer.Option(False, "--image-features",
                                        help="with --keypoints-2d, also feed its pooled image features"),
    resume: bool = typer.Option(False, help="continue the run in OUT from its newest checkpoint (its config.yaml)"),
    overwrite: bool = typer.Option(False, help="start again, deleting the files a lifter run writes in OUT"),
    set_: Optional[List[str]] = typer.Argument(None, metavar="[KEY=VALUE]...",
                                               help="LifterConfig overrides, e.g. method=temporal_conv steps=500"),
) -> None:
    """Train a 2D→3D lifter (martinez, temporal_conv, pose_machine) on the training subjects; score it with `evaluate`.

    A method's name selects its reported defaults (`method=pose_machine`). `method=heatmap2d` on an image
    dataset (frames with 2D labels, e.g. `synth lab`) trains the image path's 2D network (Heatmap2DConfig keys);
    `evaluate LIFTER --keypoints-2d RUN2D` then lifts its 2D. `--keypoints-2d RUN2D [--image-features]` trains a
    lifter on that network's predicted 2D (and features) of an image dataset's frames.
    """
    from selfpose.lifting.train import CONFIG_FILE, fit_lifter_run, is_image_dataset, load_lifter_config

    rest = [o for o in (set_ or []) if o.replace(" ", "") != "method=heatmap2d"]
    if len(rest) < len(set_ or []):   # the image path's 2D network: a stage of its own, on frames with 2D labels
        from selfpose.config import load
        from selfpose.lifting.heatmap2d import Heatmap2DConfig, fit_heatmap_run

        if labels_3d or resume or keypoints_2d or image_features:
            _fail("--labels-3d, --resume, --keypoints-2d and --image-features apply to lifters; method=heatmap2d "
                  "trains the image path's 2D network")
        if not _run(is_image_dataset, data):
            _fail(f"{data} has no frames; method=heatmap2d trains on an image dataset with 2D labels "
                  "(e.g. `selfpose synth lab`)")
        hcfg = _run(load, Heatmap2DConfig, config, rest)
        info = _run(fit_heatmap_run, data, out, hcfg, overwrite=overwrite)
        typer.echo(f"2D heatmap network trained {info.get('steps_done', '?')} steps in "
                   f"{info.get('train_seconds', 0):.0f} s → {out}; lift its 2D with "
                   f"`selfpose evaluate LIFTER --data {data} --keypoints-2d {out}`")
        return
    overrides = (list(set_ or []) + ([f"labels_3d={labels_3d}"] if labels_3d else [])
                 + ([f"keypoints_2d={keypoints_2d.resolve()}"] if keypoints_2d else [])
                 + (["image_features=true"] if image_features else []))
    if resume and config is None and (out / CONFIG_FILE).is_file():
        config = out / CONFIG_FILE   # the run's own config; overrides may change its budget
    cfg = _run(load_lifter_config, config, overrides)
    info = _run(fit_lifter_run, data, out, cfg, overwrite=overwrite, resume=resume)
    val = info.get("best_val_n_mpjpe")
    val_text = "no validation" if val is None else f"validation N-MPJPE {val:.1f} mm at step {info['best_step']}"
    typer.echo(f"{cfg.method} trained {info['steps_done']} steps on {info['train_frames']} frames in "
               f"{info['train_seconds']:.0f} s; {val_text} → {out}")


def evaluate_line(res: dict, pose: Path) -> str:
    """The one-line summary of an evaluation result (``–`` where a metric does not apply)."""
    import math

    def num(v, fmt: str) -> str:
        return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)

    o = res["overall"]
    skipped = res.get("excluded_frames") or 0
    note = f" ({skipped} without finite 3D labels skipped)" if skipped else ""
    probes = "".join(f" · {k} probe N-MPJPE {num(p.get('n_mpjpe'), '.1f')} mm"
                     for k, p in (res.get("probes") or {}).items())
    return (f"MPJPE {num(o['mpjpe'], '.1f')} mm · N-MPJPE {num(o['n_mpjpe'], '.1f')} mm · "
            f"P-MPJPE {num(o['p_mpjpe'], '.1f')} mm{probes} · box IoU {num(res.get('box_iou'), '.3f')} · "
            f"{o['count']} frames{note} → {Path(pose) / 'results.md'}")


def predict_line(v: dict) -> str:
    """The one-line summary of one predicted video (a summary of :func:`selfpose.pose.predict.predict_video`)."""
    return f"{v['video']}: {v['num_frames']} frames → {v['out']}"


def _evaluate_pretext(run: Path, data: Path, subjects, pairs, frames, out, as_json: bool) -> None:
    """``evaluate`` of a pretraining run: its pretext accuracy (``sync_eval.evaluate_pretext``), one line or JSON."""
    from selfpose.methods.sync_eval import evaluate_pretext, format_accuracy
    from selfpose.utils.jsonsafe import dumps

    block = None
    if frames:
        try:
            first, stop = (int(v) for v in frames.split(":"))
        except ValueError:
            _fail(f"--frames must be FIRST:STOP frame ids, e.g. 70:100; got {frames!r}")
        block = (first, stop)
    res = _run(evaluate_pretext, run, data, out=out, subjects=subjects, frames=block,
               pairs=2000 if pairs is None else pairs)
    if as_json:
        typer.echo(dumps(res))
    else:
        typer.echo(f"{run} (step {res['step']}), {res['pairs']} pairs: "
                   + ", ".join(f"{t} {format_accuracy(res.get(t))}" for t in ("sync", "sync_unflipped", "flip")
                               if res.get(t)) + f" (chance 50%) → {res['out']}")


@app.command()
def evaluate(
    pose: Path = typer.Argument(..., help="pose folder from fit-pose, lifter run from fit-lifter, or a "
                                          "pretraining run of method=sync (its pretext accuracy)"),
    data: Path = typer.Option(..., "--data", "-d", help="dataset with 3D labels to evaluate on (a sync run: any "
                                                       "multi-view dataset, labels not read)"),
    subjects: Optional[str] = typer.Option(None, help="comma-separated test subjects (default: all)"),
    as_json: bool = typer.Option(False, "--json", help="print the results as JSON"),
    noise: Optional[bool] = typer.Option(None, "--noise/--no-noise",
                                         help="lifter runs: 2D through the run's detector-noise model, or ground "
                                              "truth (default: the run's test_noise)"),
    split: Optional[str] = typer.Option(None, help="lifter runs: only sequences of these comma-separated splits "
                                                  "(HumanEva-I: Validate)"),
    exclude_takes: Optional[str] = typer.Option(None, "--exclude-takes",
                                                help="lifter runs: comma-separated take ids left out of the score"),
    keypoints_2d: Optional[Path] = typer.Option(None, "--keypoints-2d",
                                                help="lifter runs on an image dataset: lift the 2D predicted by this "
                                                     "2D network (fit-lifter on the image dataset) instead of its labels"),
    correction: Optional[bool] = typer.Option(None, "--correction/--no-correction",
                                              help="lifter runs: the method's test-time correction (default: the "
                                                   "method's; pose_machine: on)"),
    flip: Optional[bool] = typer.Option(None, "--flip-test/--no-flip-test",
                                        help="lifter runs: average with the prediction from the mirrored 2D "
                                             "(default: the run's flip_test)"),
    pairs: Optional[int] = typer.Option(None, help="sync runs: pairs to draw (default 2000)"),
    frames: Optional[str] = typer.Option(None, help="sync runs: draw pairs from frame ids FIRST:STOP only (a "
                                                   "held-out block of a take the run trained on)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="sync runs: folder for the scores and pictures "
                                                                "(default: RUN/pretext)"),
) -> None:
    """MPJPE, N-MPJPE, P-MPJPE overall and per action (and detection IoU for pose folders); written into the folder.

    A pretraining run of method=sync: the accuracy of its sync and flip heads on pairs drawn from --data as it
    drew them while training (held-out people or --frames), with 95% intervals and pictures (RUN/pretext)."""
    from selfpose.lifting.train import evaluate_lifter_run, is_lifter_run
    from selfpose.pose.stage import evaluate_pose_stage
    from selfpose.utils.jsonsafe import dumps

    chosen = subjects.split(",") if subjects else None
    pretraining_run = (pose / "config.yaml").is_file() and not (pose / "pose.json").is_file() \
        and not is_lifter_run(pose)
    if (pairs is not None or frames or out is not None) and not pretraining_run:
        _fail("--pairs/--frames/--out apply to pretraining runs of method=sync only; drop them for a pose folder "
              "or lifter run")
    if pretraining_run:
        if noise is not None or correction is not None or flip is not None or split or exclude_takes \
                or keypoints_2d:
            _fail("--noise/--correction/--flip-test/--split/--exclude-takes/--keypoints-2d apply to lifter runs "
                  "(from fit-lifter) only; drop them for a pretraining run")
        _evaluate_pretext(pose, data, chosen, pairs, frames, out, as_json)
        return
    if is_lifter_run(pose):
        res = _run(evaluate_lifter_run, pose, data, subjects=chosen, noise=noise, correction=correction,
                   splits=split.split(",") if split else None,
                   exclude_takes=exclude_takes.split(",") if exclude_takes else None, keypoints_2d=keypoints_2d,
                   flip=flip)
    elif noise is not None or correction is not None or flip is not None or split or exclude_takes or keypoints_2d:
        _fail("--noise/--correction/--flip-test/--split/--exclude-takes/--keypoints-2d apply to lifter runs (from fit-lifter) only; drop them for a pose folder")
    elif not (pose / "pose.json").is_file():
        _fail(f"{pose} is not a pose folder (no pose.json, see `selfpose fit-pose`) nor a lifter run "
              "(no lifter.json, see `selfpose fit-lifter`)")
    else:
        res = _run(evaluate_pose_stage, pose, data, subjects=chosen)
    if as_json:
        typer.echo(dumps(res))   # strict JSON: null where a metric does not apply, never NaN
    else:
        typer.echo(evaluate_line(res, pose))


@app.command()
def keypoints(
    video: Path = typer.Argument(..., help="a video file or a folder of videos"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for the keypoint files (<video name>.npz)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="detect again in videos whose file exists"),
) -> None:
    """2D keypoints of every video with the offline detector (MediaPipe Pose), one file per video.

    The files are what `prepare videos --keypoints` and `predict` read; videos already done are skipped.
    """
    from selfpose.keypoints.files import detect_keypoints

    res = _run(detect_keypoints, video, out, overwrite=overwrite)
    for v in res["videos"]:
        if v.get("skipped"):
            typer.echo(f"{v['video']}: kept {out / v['file']} (pass --overwrite to detect again)")
        else:
            typer.echo(f"{v['video']}: {v['frames']} frames, {v['no_person']} without a person, "
                       f"{v['fps_detector']} frames/s -> {out / v['file']}")


@app.command()
def triangulate(
    keypoints_dir: Path = typer.Argument(..., metavar="KEYPOINTS_DIR",
                                         help="one keypoint file per camera, named after it (cam01.npz ...)"),
    calibration: Path = typer.Option(..., "--calibration", help="Qualisys .qca.txt or OpenCV/Pose2Sim .toml"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder"),
    inlier_px: Optional[float] = typer.Option(None, help="reprojection error (px) within which a view agrees "
                                                         "(default: 2% of the image's larger side)"),
    min_confidence: float = typer.Option(0.5, help="ignore detections below this confidence"),
    no_ransac: bool = typer.Option(False, "--no-ransac", help="fit every confident view (no outlier rejection)"),
    overwrite: bool = typer.Option(False, help="replace an existing triangulation folder"),
) -> None:
    """3D joints from synchronised calibrated views: weighted DLT, RANSAC over views, left/right repair."""
    from selfpose.keypoints.multiview import triangulate_folder
    from selfpose.keypoints.triangulate import TriangulationConfig

    cfg = _run(TriangulationConfig, min_confidence=min_confidence, inlier_px=inlier_px, ransac=not no_ransac)
    s = _run(triangulate_folder, keypoints_dir, calibration, out, cfg, overwrite=overwrite)
    r = s["reproj_px"]
    typer.echo(f"{s['frames']} frames ({s['frames_all_joints']} with every joint); reprojection error median "
               f"{r['median']:.1f} px, 90th percentile {r['p90']:.1f} px; limb length std/mean "
               f"{100 * s['limb_length_cv']['mean']:.1f}%; swaps repaired {sum(s['swaps_repaired'].values())} "
               f"-> {out}")


@app.command()
def predict(
    model: Path = typer.Argument(..., metavar="POSE_OR_LIFTER",
                                 help="a lifter run (fit-lifter) or a pose folder (fit-pose)"),
    video: Path = typer.Argument(..., help="a video file or a folder of videos"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder"),
    step: int = typer.Option(1, help="pose folder: keep every STEP-th frame"),
    keypoints: Optional[Path] = typer.Option(None, help="lifter: folder of keypoint files (`selfpose keypoints`) "
                                                        "instead of running the detector"),
    correct: bool = typer.Option(True, "--correct/--no-correct", help="lifter: test-time correction"),
    fov: float = typer.Option(60.0, help="lifter: the camera's field of view along the longer image side, degrees"),
    focal: Optional[float] = typer.Option(None, help="lifter: the camera's focal length in px (overrides --fov)"),
    no_swap_repair: bool = typer.Option(False, "--no-swap-repair", help="lifter: keep the detector's left/right"),
    fixed_bones: bool = typer.Option(True, "--fixed-bones/--free-bones",
                                     help="lifter: give every bone one length over the clip"),
    overwrite: bool = typer.Option(False, help="lifter: replace an existing output folder"),
) -> None:
    """3D joints for each video: with a lifter run, 2D detector → lifter (+ correction); with a pose folder,
    the self-supervised encoder's own detector and pose head. Writes joints3d.npz/json, an overlay video, a 3D
    strip and a report."""
    if (model / "lifter.json").is_file():
        from selfpose.lifting.video import VideoLiftConfig, predict_videos

        cfg = _run(VideoLiftConfig, fov_deg=fov, focal_px=focal, correct=correct, repair_swaps=not no_swap_repair,
                   fixed_bones=fixed_bones)
        res = _run(predict_videos, model, video, out, cfg, keypoints=keypoints, overwrite=overwrite)
        for v in res["videos"]:
            corr = v["correction"]
            typer.echo(f"{v['video']}: {v['frames']} frames, {v['no_person']} without a person, "
                       f"{v['swaps_repaired']} left/right swaps repaired, correction "
                       f"{'off' if not corr else str(corr.get('applied', 0)) + ' of ' + str(corr.get('clips', 0))}"
                       f" windows, {v['lift_fps']} frames/s lifting -> {out / Path(v['video']).stem}")
        return
    from selfpose.pose.stage import predict_with_pose

    res = _run(predict_with_pose, model, video, out, step=step)
    for v in res["videos"]:
        typer.echo(predict_line(v))


@app.command()
def analyze(
    run: Path = typer.Argument(..., help="pretraining run folder, or a pose folder (the exact encoder it was fitted on)"),
    data: Path = typer.Option(..., "--data", "-d", help="dataset (with subjects; 3D labels for pose-from-i)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for the pictures and analysis.json (default: RUN/analysis)"),
    labels: float = typer.Option(0.1, help="share of labelled frames for the pose-from-v/i comparison"),
) -> None:
    """Pose/appearance transfers, KMeans subject accuracy of v and i, pose from i vs v."""
    from selfpose.pose.stage import analyze_run
    from selfpose.utils.jsonsafe import dumps

    res = _run(analyze_run, run, data, out, labels=labels)
    typer.echo(dumps({k: v for k, v in res.items() if not isinstance(v, (list, dict))}))


@app.command()
def benchmark(
    config: Optional[Path] = typer.Option(None, "--config", "-c",
                                          help="YAML benchmark config: no `kind` key (or `kind: lab`): the image "
                                               "benchmark (configs/benchmark_cpu.yaml); `kind: lifting`: the 2D→3D "
                                               "lifting benchmark (configs/lifting_cpu.yaml)"),
    work: Path = typer.Option(Path("out/benchmark"), "--work", "-w",
                              help="folder for data, runs, cached cells and the report; rerunning resumes it"),
    set_: Optional[List[str]] = typer.Argument(None, metavar="[KEY=VALUE]...",
                                               help="config overrides, e.g. steps=200 seeds=[0]"),
) -> None:
    """One command for every benchmark; the config file's `kind` key selects which → WORK/results.md, cells.csv, a plot.

    No `kind` (or `kind: lab`): methods × label shares × seeds on rendered
    images (BenchmarkConfig). `kind: lifting`: lifters × 2D input (GT, noisy)
    × 3D label sets × seeds on keypoints of real motion, test S8
    (LiftingBenchmarkConfig; `publish=benchmarks/results/lifting_cpu` also
    copies the report there). Finished cells are cached: running it again
    computes only what is missing, and an interrupted run resumes.
    """
    from selfpose.bench.kinds import load_benchmark_config, run_any_benchmark

    cfg = _run(load_benchmark_config, config, list(set_ or []))
    res = _run(run_any_benchmark, cfg, work, log=typer.echo)
    typer.echo(f"{len(res['computed'])} piece(s) computed, {len(res['cells'])} cells → {work / 'results.md'}")


@app.command()
def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", "-o", help="folder for the demo's data and report"),
    quick: bool = typer.Option(False, help="a smaller run for smoke tests"),
    overwrite: bool = typer.Option(True, help="replace the demo's earlier output"),
) -> None:
    """The main job: render the embedded lab data, pretrain, fit pose on 1% labels, evaluate on unseen people, then
    lift a shipped real clip to 3D with a lifter trained on the shipped motion; report.

    Writes OUT/report.md and OUT/report.html (table, curves, detections,
    reconstructions, transfers, predicted vs true 3D; the real clip's overlay,
    its 3D and its scores against a four-view triangulation); 7-12 minutes on a
    2-core CPU without native bf16, --quick about 1.5.
    """
    from selfpose.demo import run_demo

    report = _run(run_demo, out, quick=quick, overwrite=overwrite)
    typer.echo(f"demo done: {report}")


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="selfpose")


if __name__ == "__main__":
    main()
