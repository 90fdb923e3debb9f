"""The demo's real-video part: a lifter trained on the shipped motion, run on a shipped real clip, scored.

``selfpose demo`` calls :func:`run_video_demo` after its synthetic part:

1. **Training data.** The CMU motion the package ships (its training takes,
   CMU's test takes held out for validation: other people), moved to the 2D
   detector's joint definitions and seen through seeded cameras of the
   ``varied`` rig (phone, webcam and camcorder shapes, heights and fields of
   view) — ``selfpose prepare mocap <shipped motion> joints=detector``.
2. **The lifter.** The pose machine with the settings of
   ``configs/lifter_video.yaml`` (MediaPipe-measured 2D noise; :data:`VIDEO_LIFTER`
   holds the same keys, a test keeps them equal) for a fixed time budget.
3. **The clip.** ``pose2sim_cam01.mp4`` (Pose2Sim's single-person demo, BSD-3,
   its licence beside it in ``assets/video``): MediaPipe Pose's 2D
   (``selfpose keypoints``), then ``selfpose predict`` with the lifter —
   left/right swap repair, test-time correction, one length per bone — with
   the camera's calibrated focal length.
4. **Scored** against the 3D triangulated from all four of Pose2Sim's views
   (shipped as ``pose2sim_cam01_reference.npz``): the lifter, MediaPipe's own
   world landmarks, and the lifter's mean training pose (reads no 2D).
   The reference comes from the same detector's 2D, so it flatters MediaPipe's
   own answer most; P-MPJPE and limb lengths are the fair columns.

Everything is written under ``OUT/video``; the demo's report shows the table,
an overlay strip and the 3D. Without the detector installed the part is
skipped with the reason (:class:`VideoDemoSkipped`), and the report says so.
"""

from __future__ import annotations

import time
from contextlib import closing, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from selfpose.errors import SelfposeError

#: The pose machine for detector input: the keys of configs/lifter_video.yaml (tests/test_demo_video.py keeps
#: them equal; that file's comments say where each value was measured).
VIDEO_LIFTER: dict[str, Any] = {
    "method": "pose_machine", "train_noise": True, "batch_size": 32, "steps": 9000,
    "pose_machine": {"clip": 32, "predict_clip": 128},
    "noise": {"jitter_std_px": 6.4,
              "jitter_joint_scale": [0.97, 1.12, 1.01, 1.03, 1.19, 1.10, 1.21, 0.75, 0.78, 1.21, 0.77, 0.99, 1.08,
                                     0.90, 0.93, 0.83, 0.85],
              "outlier_prob": 0.0054, "outlier_px": 60.0, "swap_prob": 0.02, "missing_prob": 0.018,
              "person_px": 320.0},
}
#: The shipped motion's subjects: CMU's training takes train, its test takes (other people) choose the step.
TRAIN_SUBJECTS, VAL_SUBJECTS = ("train",), ("test",)
CLIP, REFERENCE, LICENSE = "pose2sim_cam01.mp4", "pose2sim_cam01_reference.npz", "LICENSE.pose2sim"


class VideoDemoSkipped(SelfposeError, RuntimeError):
    """The real-video part cannot run here (the detector is not installed); the message says why.

    The demo catches it and reports the reason; a caller of :func:`run_video_demo` that does not gets the CLI's
    one-line error."""


@contextmanager
def asset(name: str) -> Iterator[Path]:
    """A file of the package's ``assets/video`` as a real path (for the video decoder)."""
    res = resources.files("selfpose").joinpath("assets", "video", name)
    with resources.as_file(res) as path:
        if not Path(path).is_file():
            raise FileNotFoundError(f"package data assets/video/{name} is missing; reinstall selfpose")
        yield Path(path)


def load_reference() -> dict[str, np.ndarray]:
    """The shipped reference: ``joints3d (100, 17, 3)`` mm in cam01's frame, ``focal_px (2,)``, ``size (2,)``…"""
    with asset(REFERENCE) as path, np.load(path) as z:
        return {k: z[k] for k in z.files}


def video_lifter_config(seconds: float, hidden: int | None = None, seed: int = 0):
    """The demo lifter's :class:`~selfpose.lifting.config.LifterConfig`: ``seconds`` of training (its schedule
    follows the clock), LSTM width ``hidden`` (None: the pose machine's reported default, 512)."""
    from selfpose.lifting.config import load_lifter_config

    return load_lifter_config(None, {   # the pose machine's reported defaults under these keys, as fit-lifter does
        **VIDEO_LIFTER, "pose_machine": {**VIDEO_LIFTER["pose_machine"], **({"hidden": hidden} if hidden else {})},
        "train_subjects": list(TRAIN_SUBJECTS), "val_subjects": list(VAL_SUBJECTS), "max_seconds": seconds,
        "lr_clock": "budget", "seed": seed})


def detector_available() -> str | None:
    """None when the 2D detector imports here, else the one-line reason."""
    from selfpose.keypoints.detector import DetectorError, _pose_module

    try:
        _pose_module()
    except DetectorError as e:
        return str(e)
    return None


def run_video_demo(out: Path, seconds: float, hidden: int | None = None, overwrite: bool = True,
                   progress: bool = True) -> dict[str, Any]:
    """Run the real-video part into ``out`` (the demo's ``OUT/video``) with a lifter trained for ``seconds``
    (LSTM width ``hidden``; see :func:`video_lifter_config`); returns its results and pictures.

    ``overwrite`` replaces this part's earlier outputs (each step deletes only what it wrote); without it an
    earlier output is an error, as for the rest of the demo.

    Raises:
        VideoDemoSkipped: the detector is not installed (nothing is written).
    """
    from selfpose.data.datasets import PrepareConfig, prepare
    from selfpose.evaluation.metrics import compare_to_reference
    from selfpose.keypoints.files import detect_keypoints, world_house_mm
    from selfpose.lifting.model import Lifter
    from selfpose.lifting.train import fit_lifter_run
    from selfpose.lifting.video import VideoLiftConfig, predict_videos

    reason = detector_available()
    if reason:
        raise VideoDemoSkipped(reason)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    ref = load_reference()
    t0 = time.perf_counter()
    with resources.as_file(resources.files("selfpose").joinpath("assets", "motion",
                                                               "cmu_h36m17approx_30fps.npz")) as motion:
        prepare("mocap", motion, out / "motion", PrepareConfig(joints="detector"), overwrite=overwrite,
                progress=progress)
    times["prepare"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    fit = fit_lifter_run(out / "motion", out / "lifter", video_lifter_config(seconds, hidden), overwrite=overwrite,
                         progress=progress)
    times["lifter"] = round(time.perf_counter() - t0, 1)
    with asset(CLIP) as clip:
        t0 = time.perf_counter()
        det = detect_keypoints(clip, out / "keypoints", overwrite=overwrite, progress=progress)
        times["detector"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        cfg = VideoLiftConfig(focal_px=float(ref["focal_px"][0]))
        pred = predict_videos(out / "lifter", clip, out / "predict", cfg, keypoints=out / "keypoints",
                              overwrite=overwrite)
        times["predict"] = round(time.perf_counter() - t0, 1)
    stem = Path(CLIP).stem
    with np.load(out / "predict" / stem / "joints3d.npz") as f:
        z = {k: f[k] for k in ("joints3d", "valid")}
    truth = ref["joints3d"].astype(np.float64)
    truth = truth - truth[:, :1]
    with np.load(out / "keypoints" / f"{stem}.npz") as kp:
        world = world_house_mm(kp["world"])
    mean = Lifter.load(out / "lifter").mean_pose()
    rows = {
        "lifter": compare_to_reference(z["joints3d"], truth),
        "mediapipe_world": compare_to_reference(world, truth),
        "mean_pose": compare_to_reference(np.repeat(mean[None], len(truth), 0), truth),
    }
    clip_row = pred["videos"][0]
    pictures = _pictures(out, stem, z["joints3d"], truth, z["valid"])
    return {"seconds": times, "lifter_seconds": seconds, "lifter_steps": fit.get("steps_done"),
            "lifter_val_n_mpjpe": fit.get("best_val_n_mpjpe"), "lifter_stages_cut": fit.get("stages_cut"),
            "train_frames": fit.get("train_frames"), "frames": clip_row["frames"], "no_person": clip_row["no_person"],
            "swaps_repaired": clip_row["swaps_repaired"], "correction": clip_row["correction"],
            "limb_cv_lifter": clip_row["limb_cv_lifter"], "detector_fps": det["videos"][0].get("fps_detector"),
            "lift_fps": clip_row["lift_fps"], "focal_px": clip_row["focal_px"], "rows": rows, "pictures": pictures}


def _pictures(out: Path, stem: str, joints3d: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> dict[str, str]:
    """An overlay strip (frames of ``overlay.mp4`` above their 3D) and the 3D beside the reference."""
    from selfpose.viz.model_pictures import pose_comparison_figure, save_png, skeleton_strip

    folder = out / "predict" / stem
    T = len(joints3d)
    idx = np.unique(np.linspace(0, T - 1, 6).round().astype(int))
    frames = _frames_at(folder / "overlay.mp4", idx, height=480)
    idx = idx[: len(frames)]
    fig = skeleton_strip(joints3d[idx], images=frames, image_legend=False,
                         titles=[f"frame {i}" + ("" if valid[i] else " (interpolated)") for i in idx])
    save_png(fig, out / "overlay_strip.png")
    pick = idx[[0, len(idx) // 2, -1]] if len(idx) >= 3 else idx
    fig = pose_comparison_figure(joints3d[pick], truth[pick], titles=[f"frame {i}" for i in pick])
    save_png(fig, out / "vs_reference.png")
    return {"overlay": "overlay_strip.png", "vs_reference": "vs_reference.png",
            "video": f"predict/{stem}/overlay.mp4"}


def _frames_at(video: Path, idx: np.ndarray, height: int) -> list[np.ndarray]:
    """Frames ``idx`` (sorted) of ``video``, scaled to ``height`` px (decoding keeps one chunk in memory)."""
    import cv2

    from selfpose.data.video import iter_frames

    want, got, t = set(int(i) for i in idx), [], 0
    with closing(iter_frames(video)) as chunks:   # stopping early closes the decoder now, not at collection
        for chunk in chunks:
            for img in chunk:
                if t in want:
                    w = round(img.shape[1] * height / img.shape[0])
                    got.append(cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA))
                t += 1
            if t > max(want):
                break
    return got


#: Rows of the real-video table, in order: (results key, label).
ROWS = (("lifter", "selfpose: pose machine + test-time correction, bones fixed (`selfpose predict`)"),
        ("mediapipe_world", "MediaPipe Pose's own 3D (world landmarks)"),
        ("mean_pose", "the lifter's mean training pose (reads no 2D)"))


def report_section(v: dict, prefix: str) -> list[str]:
    """Markdown lines of the demo report's real-video section (``prefix``: the part's folder, relative)."""
    if "skipped" in v:
        return ["## Real video", "", f"Skipped: {v['skipped']}", ""]
    if "failed" in v:
        return ["## Real video", "", f"Failed: {v['failed']}", ""]

    def f(x, d=1):
        return "–" if x is None else f"{x:.{d}f}"

    corr = v.get("correction") or {}
    lines = [
        "## Real video: 3D from one camera", "",
        f"The pose machine (2D → 3D with test-time correction) trained for {v['lifter_seconds']:g} s "
        f"({v['lifter_steps']} steps) on the shipped CMU motion ({v['train_frames']:,} frames, seen through seeded "
        "phone-, webcam- and camcorder-like cameras, with MediaPipe's measured 2D noise and joint definitions); "
        f"validation N-MPJPE {f(v['lifter_val_n_mpjpe'])} mm on CMU's held-out people. Then `selfpose predict` on "
        f"a real clip the package ships (Pose2Sim's `cam01.mp4`, BSD-3: {v['frames']} frames at 60 fps; 2D by "
        f"MediaPipe Pose at {f(v['detector_fps'])} frames/s, its start-up included; lifting and correction at {f(v['lift_fps'], 0)} "
        f"frames/s; frames without a person: {v['no_person']}; left/right swaps repaired: {v['swaps_repaired']} "
        f"frames; correction applied to {corr.get('applied', 0)} of {corr.get('clips', 0)} windows; limb-length "
        f"spread as lifted {100 * v['limb_cv_lifter']:.1f}%, 0 after fixing each bone's length).", "",
        "**Against the 3D triangulated from the clip's four calibrated views** (cam01's frame, mm, lower is "
        "better). The reference is made from the same detector's 2D, so it flatters MediaPipe's own 3D most; "
        "P-MPJPE (after a per-frame similarity alignment) and the limb lengths are the fair columns.", "",
        "| 3D | MPJPE | P-MPJPE | limb-length error | limb std/mean |", "|---|---:|---:|---:|---:|",
        *(f"| {label} | {f(v['rows'][k]['mpjpe'])} | {f(v['rows'][k]['p_mpjpe'])} | "
          f"{f(v['rows'][k]['limb_error_mm'])} | {100 * v['rows'][k]['limb_cv']:.1f}% |" for k, label in ROWS), "",
        _verdict(v["rows"], v["lifter_seconds"]), "",
        "Seconds: " + ", ".join(f"{k} {s}" for k, s in v["seconds"].items()) + ".", "",
        "### The clip: 2D as detected (thin), 3D re-projected (thick), and the 3D", "",
        f"![overlay and 3D]({prefix}{v['pictures']['overlay']})", "",
        f"Whole clip: [{prefix}{v['pictures']['video']}]({prefix}{v['pictures']['video']}).", "",
        "### selfpose's 3D (dashed) against the triangulated reference (solid)", "",
        f"![against the reference]({prefix}{v['pictures']['vs_reference']})", ""]
    return lines


def _verdict(rows: dict, seconds: float) -> str:
    """One sentence on where the lifter landed between the mean pose and MediaPipe (from the measured rows)."""
    lift, mp, mean = (rows[k]["p_mpjpe"] for k in ("lifter", "mediapipe_world", "mean_pose"))
    where = ("below MediaPipe's own 3D" if lift < mp else
             f"{lift / mp:.2f}× MediaPipe's own 3D" if lift < mean else "no better than the mean pose")
    return (f"Here the demo's lifter reaches P-MPJPE {lift:.1f} mm: {where} ({mp:.1f}), against {mean:.1f} for a "
            f"3D that reads no 2D. {seconds:g} s of training on 5.6 minutes of motion (seen by four cameras) is a "
            "small budget: the same pose machine trained for 30 minutes on Human3.6M's motion "
            "(`configs/lifter_video.yaml`; docs/video.md), its bones fixed as here, scores 68.7 mm against "
            "MediaPipe's 79.5 averaged over the four views, though 68.4 against 67.0 on this view "
            "(`benchmarks/pose2sim_monocular.py`, benchmarks/results/multiview_pose2sim).")
