"""A trained lifter on real video: detect 2D → repair → lift the whole clip → correct → 3D per frame.

``selfpose predict LIFTER_RUN VIDEO_OR_DIR --out OUT`` (a lifter run; a pose
folder goes through :mod:`selfpose.pose.predict`). Per video:

1. **2D.** The offline detector (:mod:`selfpose.keypoints.detector`), or the
   video's keypoint file when ``--keypoints K`` names a folder holding one,
   converted to the house skeleton. A joint below ``min_confidence`` and
   every joint of a frame without a person count as missing.
2. **Missing 2D** is filled per joint by linear interpolation in time
   between the frames that saw it (held constant before the first and after
   the last); frames without a person are ``valid = False`` in the output,
   never passed off as seen. A joint never seen in the clip makes the clip fail.
3. **Left/right swaps** of the detector (:func:`repair_swaps`): the clip is
   lifted as detected and with every frame's left and right labels exchanged;
   a person's facing direction (from the lifted hips and shoulders) turns
   smoothly, and a swap turns it by half a turn in one frame — so a two-state
   Viterbi path over the frames picks the labelling whose facing turns least,
   with a small cost per exchanged frame so that the detector's own labels win
   where the 3D cannot tell.
4. **Lifting and test-time correction** of the repaired clip (the method's
   correction — the pose machine's, on by default; ``--no-correct``), then
   every bone given one length over the clip (:func:`fix_bone_lengths`;
   ``--free-bones`` keeps the lifter's).
5. **Camera.** Intrinsics from the video's size and a field of view of
   :attr:`VideoLiftConfig.fov_deg` along the longer image side (a phone's
   main camera films at about 65-70°, a webcam 60-70°), or ``--focal PX``;
   principal point at the image centre. The 3D is **pelvis-centred** in the
   camera frame (mm); the pelvis's place (``translation``, mm) is estimated
   per frame by least squares from the 2D (:func:`selfpose.lifting.perspective.root_translation`)
   and used to draw the 3D back onto the video.

Outputs in ``OUT/<video stem>/``: ``joints3d.npz`` (``joints3d (T, 17, 3)``,
``valid (T,)``, ``translation (T, 3)``, ``joints2d (T, 17, 2)`` as lifted,
``swapped (T,)``, camera), ``joints3d.json``, ``overlay.mp4`` (the 2D as
detected, thin, and the 3D re-projected, thick), ``skeleton3d.png`` (eight
moments, front and side) and ``report.md``; ``OUT/summary.json`` and
``OUT/report.md`` cover every video.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selfpose.errors import SelfposeError
from selfpose.geometry.skeleton import H36M17

#: Hips and shoulders: the joints the facing direction is read from (house order).
_R_HIP, _L_HIP, _R_SHOULDER, _L_SHOULDER, _PELVIS, _THORAX = 1, 4, 14, 11, 0, 8


class VideoLiftError(SelfposeError, ValueError):
    """A video cannot be lifted (no person, a joint never seen, a keypoint file of another video)."""


@dataclass(frozen=True)
class VideoLiftConfig:
    """Settings of :func:`predict_videos` (the CLI's options).

    Attributes:
        fov_deg: field of view along the image's longer side, degrees, when ``focal_px`` is not given.
        focal_px: the camera's focal length in px of the video (overrides ``fov_deg``).
        min_confidence: a detected joint below this is missing (filled in time).
        correct: run the lifter's test-time correction (its method's; the pose machine's by default).
        repair_swaps: detect and undo the detector's left/right swaps.
        swap_cost: cost (radians of facing turn) of exchanging one frame's labels; see :func:`repair_swaps`.
        swap_window: frames per window when a temporal lifter lifts the clip for the swap decision (the pose
            machine's prediction windows are 128 frames; over so long a context its LSTMs smooth a swapped
            episode's jump away). Planted whole-body swaps on held-out S8 clips with MediaPipe-like noise
            (``python benchmarks/swap_repair_probe.py RUN --data D``, 24 clips, 759 swapped frames of 4,800,
            2026-12-03) were found at 55% with 8-frame windows and 25 frames exchanged wrongly, 49-50% with
            16-128 frames (34-39 wrong) and 72% frame by frame, but with 233 wrong; on the Pose2Sim view whose
            episode the triangulation repaired (31 frames), 8-frame windows exchanged 25 frames, 23 of them in
            the episode (30 of 31 with an earlier lifter), 128-frame windows none.
        fixed_bones: give every bone one length over the clip (:func:`fix_bone_lengths`), after the correction.
            On by default: on the four Pose2Sim views it lowered the corrected pose machine's P-MPJPE against
            the triangulation from 71.3 to 68.7 mm and its limb-length error from 47.5 to 40.6 mm
            (``benchmarks/pose2sim_monocular.py``, the lifter of configs/lifter_video.yaml, 2026-12-03); the
            lifter's own limb-length spread is reported beside it (``limb_cv_lifter``).
        overlay: write ``overlay.mp4``.
    """

    fov_deg: float = 60.0
    focal_px: float | None = None
    min_confidence: float = 0.3
    correct: bool = True
    repair_swaps: bool = True
    swap_cost: float = 0.05
    swap_window: int = 8
    fixed_bones: bool = True
    overlay: bool = True

    def __post_init__(self) -> None:
        from selfpose.config import ConfigError

        if not 10 <= self.fov_deg <= 170:
            raise ConfigError(f"fov_deg must be in [10, 170] degrees, got {self.fov_deg}")
        if self.focal_px is not None and not self.focal_px > 0:
            raise ConfigError(f"focal_px must be > 0, got {self.focal_px}")
        if not 0 <= self.min_confidence < 1 or self.swap_cost < 0 or self.swap_window < 1:
            raise ConfigError("min_confidence must be in [0, 1), swap_cost >= 0 and swap_window >= 1")


def focal_for(width: int, height: int, cfg: VideoLiftConfig) -> float:
    """Focal length in px: ``cfg.focal_px``, else from ``cfg.fov_deg`` along the longer side."""
    if cfg.focal_px is not None:
        return float(cfg.focal_px)
    return 0.5 * max(width, height) / float(np.tan(np.radians(cfg.fov_deg) / 2))


def interpolate_missing(xy: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown 2D per joint by linear interpolation in time (constant beyond the first/last known frame).

    Args:
        xy: ``(T, J, 2)`` px (any value where unknown).
        known: ``(T, J)`` bool.

    Returns:
        ``(T, J, 2)`` float64, equal to ``xy`` where known.

    Raises:
        VideoLiftError: a joint is never known.
    """
    xy = np.asarray(xy, dtype=np.float64)
    known = np.asarray(known, bool)
    T, J = known.shape
    out = xy.copy()
    t = np.arange(T)
    for j in range(J):
        k = np.flatnonzero(known[:, j])
        if len(k) == 0:
            raise VideoLiftError(f"the {H36M17.joint_names[j] if J == 17 else f'joint {j}'} is never seen in this "
                                 "clip; a lifter needs every joint at least once")
        for d in range(2):
            out[:, j, d] = np.interp(t, k, xy[k, j, d])
    return out


def facing(joints3d: np.ndarray) -> np.ndarray:
    """``(T, 3)`` unit vectors: the direction the chest faces, from hips, shoulders, pelvis and thorax.

    ``up`` runs from the pelvis to the thorax, ``across`` from the right hip and
    shoulder to the left ones; the chest faces ``across × up`` (for a person
    facing the camera, in selfpose's camera frame — x right, y down, z forward —
    that is −z). Exchanging left and right reverses ``across`` and so the facing.
    """
    J = np.asarray(joints3d, dtype=np.float64)
    up = J[:, _THORAX] - J[:, _PELVIS]
    across = (J[:, _L_HIP] - J[:, _R_HIP]) + (J[:, _L_SHOULDER] - J[:, _R_SHOULDER])
    f = np.cross(across, up)
    return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-9)


def repair_swaps(facing_as_is: np.ndarray, facing_swapped: np.ndarray, swap_cost: float = 0.05) -> np.ndarray:
    """Which frames to take with left and right exchanged: a two-state Viterbi path over the clip.

    Args:
        facing_as_is: ``(T, 3)`` facing directions of the clip lifted as detected (:func:`facing`).
        facing_swapped: ``(T, 3)`` the same with every frame's left/right labels exchanged.
        swap_cost: cost of one exchanged frame, radians; the path's cost is the sum of
            the angles the facing turns between consecutive frames plus this per exchanged frame.

    Returns:
        ``(T,)`` bool, True where the exchanged labels are kept.

    Why this works: a person turns smoothly (a fast spin at 60 fps is 0.1 rad a
    frame), while a detector's swap makes the lifted facing jump by about π.
    The per-frame cost keeps the detector's labels where both readings turn
    alike; an episode of ``n`` swapped frames in mid-clip is undone when its two
    jumps (≈ 2π) cost more than ``n · swap_cost`` (at 0.05: up to ~125 frames).
    """
    F = np.stack([np.asarray(facing_as_is, np.float64), np.asarray(facing_swapped, np.float64)], 1)  # (T, 2, 3)
    T = len(F)
    if T == 0:
        return np.zeros(0, bool)
    unary = np.array([0.0, swap_cost])
    cost = unary.copy()
    back = np.zeros((T, 2), np.int64)
    for t in range(1, T):
        # angle between facing at t-1 (state a) and at t (state b)
        dots = np.clip(F[t - 1] @ F[t].T, -1.0, 1.0)                       # (2, 2): [a, b]
        total = cost[:, None] + np.arccos(dots)
        back[t] = np.argmin(total, axis=0)
        cost = total[back[t], [0, 1]] + unary
    path = np.zeros(T, np.int64)
    path[-1] = int(np.argmin(cost))
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path.astype(bool)


def _arrays(xy: np.ndarray, width: int, height: int, focal: float, name: str):
    from selfpose.lifting.data import LiftingArrays

    T = len(xy)
    rep = lambda v: np.full(T, v)  # noqa: E731
    return LiftingArrays(
        joints2d=xy.astype(np.float32), joints3d=None, visible=np.ones(xy.shape[:2], np.float32),
        image_hw=np.tile(np.float32([height, width]), (T, 1)), focal=np.tile(np.float32([focal, focal]), (T, 1)),
        principal=np.tile(np.float32([width / 2, height / 2]), (T, 1)), subjects=rep("video"), actions=rep("video"),
        takes=rep(name), sequences=rep(name), frame_ids=np.arange(T, dtype=np.int64))


def fix_bone_lengths(joints3d: np.ndarray, valid: np.ndarray | None = None, symmetric: bool = True) -> np.ndarray:
    """Give every bone one length over the clip, keeping each bone's direction.

    Args:
        joints3d: ``(T, 17, 3)`` house joints, mm.
        valid: ``(T,)`` frames whose lengths count (None: all).
        symmetric: give a left bone and its right twin the mean of their two lengths.

    Returns:
        ``(T, 17, 3)``: from the pelvis outward, each child placed at its bone's
        median length (over ``valid`` frames) along the bone's direction in that
        frame. A person's limbs keep their length; a lifter's do not quite.
    """
    from selfpose.geometry.bone_scaling import scale_bones

    J = np.asarray(joints3d, dtype=np.float64)
    use = np.ones(len(J), bool) if valid is None or not np.asarray(valid).any() else np.asarray(valid, bool)
    bones = H36M17.bones
    current = {b: np.linalg.norm(J[:, b[1]] - J[:, b[0]], axis=-1) for b in bones}   # (T,) per bone
    lengths = {b: float(np.median(current[b][use])) for b in bones}
    if symmetric:
        perm = H36M17.flip_permutation()
        lengths = {(p, c): (lengths[(p, c)] + lengths.get((int(perm[p]), int(perm[c])), lengths[(p, c)])) / 2
                   for p, c in bones}
    scales = np.ones(J.shape[:2])   # (T, 17): each bone's factor per frame, to its clip length
    for p, c in bones:
        scales[:, c] = lengths[(p, c)] / np.maximum(current[(p, c)], 1e-9)
    return scale_bones(J, scales)


def _clip_window(lifter, frames: int) -> int:
    """The method's prediction window (frames), never longer than a clip of ``frames`` frames."""
    method = lifter.method
    full = method.predict_clip(lifter.cfg) if method.predict_clip else frames
    return max(1, min(int(full), int(frames)))


@contextmanager
def _prediction_window(lifter, frames: int):
    """Temporarily predict with windows of ``frames`` frames (the pose machine's ``predict_clip``)."""
    old = lifter.cfg
    if old.method == "pose_machine":
        lifter.cfg = dataclasses.replace(old, pose_machine=dataclasses.replace(old.pose_machine, predict_clip=frames))
    try:
        yield
    finally:
        lifter.cfg = old


def lift_keypoints(lifter, xy: np.ndarray, conf: np.ndarray, width: int, height: int,
                   cfg: VideoLiftConfig | None = None, name: str = "clip") -> dict[str, Any]:
    """Lift one clip's house-skeleton 2D (steps 2-5 of the module docstring).

    Args:
        lifter: a :class:`~selfpose.lifting.model.Lifter`.
        xy: ``(T, 17, 2)`` px of the video (NaN where not detected).
        conf: ``(T, 17)`` confidence in [0, 1].

    Returns:
        ``{"joints3d" (T, 17, 3) mm pelvis-centred, "translation" (T, 3) mm, "valid" (T,), "joints2d" (T, 17, 2)
        as lifted, "swapped" (T,), "focal", "correction" (rule counts or None), "seconds"}``.
    """
    import torch

    from selfpose.lifting.perspective import root_translation

    cfg = cfg or VideoLiftConfig()
    xy = np.asarray(xy, dtype=np.float64)
    conf = np.nan_to_num(np.asarray(conf, dtype=np.float64))
    known = (conf >= cfg.min_confidence) & np.isfinite(xy).all(-1)
    person = known.any(-1)
    if not person.any():
        raise VideoLiftError(f"{name}: the detector found no person in any frame; nothing to lift")
    valid = person   # the detector saw the person; joints it missed in such a frame are filled like whole frames
    filled = interpolate_missing(np.where(known[..., None], xy, 0.0), known)
    focal = focal_for(width, height, cfg)
    t0 = time.perf_counter()
    swapped = np.zeros(len(xy), bool)
    if cfg.repair_swaps:
        perm = H36M17.flip_permutation()
        with _prediction_window(lifter, cfg.swap_window):
            as_is = lifter.predict(_arrays(filled, width, height, focal, name), correction=False)
            exchanged = lifter.predict(_arrays(filled[:, perm], width, height, focal, name), correction=False)
        swapped = repair_swaps(facing(as_is), facing(exchanged), cfg.swap_cost)
        filled = np.where(swapped[:, None, None], filled[:, perm], filled)
    # A clip shorter than the method's prediction window is lifted as one window of its own length, not padded
    # with copies of its last frame (a 40-frame clip: 754 -> ~1,400 frames/s; P-MPJPE 0.7 mm lower on Pose2Sim).
    with _prediction_window(lifter, _clip_window(lifter, len(filled))):
        joints3d = lifter.predict(_arrays(filled, width, height, focal, name), correction=cfg.correct)
    from selfpose.evaluation.metrics import limb_length_consistency

    limb_cv_lifter = limb_length_consistency(joints3d, valid)["mean"]
    if cfg.fixed_bones:
        joints3d = fix_bone_lengths(joints3d, valid).astype(np.float32)
    seconds = time.perf_counter() - t0
    u = (filled - np.array([width / 2, height / 2])) / focal
    t = root_translation(torch.from_numpy(joints3d.astype(np.float64)), torch.from_numpy(u),
                         torch.ones(u.shape[:2], dtype=torch.float64)).numpy()
    t = _weak_perspective_where_behind(t, joints3d, u)
    return {"joints3d": joints3d.astype(np.float32), "translation": t.astype(np.float32), "valid": valid,
            "joints2d": filled.astype(np.float32), "swapped": swapped, "focal": focal,
            "correction": lifter.last_correction, "seconds": seconds, "frames": len(xy),
            "no_person": int((~person).sum()), "joints_filled": int((person[:, None] & ~known).sum()),
            "limb_cv_lifter": limb_cv_lifter,
            "limb_cv": limb_length_consistency(joints3d, valid)["mean"]}


def _weak_perspective_where_behind(t: np.ndarray, joints3d: np.ndarray, u: np.ndarray,
                                   min_depth_mm: float = 500.0) -> np.ndarray:
    """Replace least-squares translations that put the pelvis behind (or at) the camera.

    The least-squares fit (algebraic error) can land behind the camera when the 3D
    disagrees with the 2D badly (an untrained lifter, a wrong focal length). There
    the depth comes from the sizes instead, ``z = spread_3D / spread_2D`` in
    focal-normalised units, and x, y from the 2D pelvis at that depth.
    """
    bad = ~(t[:, 2] > min_depth_mm)
    if bad.any():
        P, q = joints3d[bad].astype(np.float64), u[bad]
        spread3 = np.sqrt(((P[..., :2] - P[..., :2].mean(1, keepdims=True)) ** 2).sum(-1).mean(-1))
        spread2 = np.sqrt(((q - q.mean(1, keepdims=True)) ** 2).sum(-1).mean(-1))
        z = np.maximum(spread3 / np.maximum(spread2, 1e-6), min_depth_mm)
        t = t.copy()
        t[bad] = np.concatenate([q[:, 0] * z[:, None], z[:, None]], -1)
    return t


def _project(joints3d: np.ndarray, translation: np.ndarray, focal: float, width: int, height: int) -> np.ndarray:
    P = joints3d.astype(np.float64) + translation[:, None]
    return P[..., :2] / np.maximum(P[..., 2:3], 1.0) * focal + np.array([width / 2, height / 2])


def _overlay(video: Path, path: Path, detected: np.ndarray, conf: np.ndarray, reproj: np.ndarray, valid: np.ndarray,
             fps: float) -> None:
    """The video with the 2D as detected (thin) and the 3D re-projected (thick; dimmed where interpolated)."""
    from selfpose.data.video import iter_frames
    from selfpose.viz.skeleton import default_thickness, draw_skeleton_2d
    from selfpose.viz.video import write_video

    def frames():
        t = 0
        for chunk in iter_frames(video):
            out = []
            for img in chunk:
                if t >= len(reproj):
                    break
                th = default_thickness(*img.shape[:2])
                im = draw_skeleton_2d(img, detected[t], conf[t], thickness=max(1, th // 2))
                drawn = draw_skeleton_2d(im, reproj[t], None, thickness=th + 1)
                out.append(drawn if valid[t] else ((drawn.astype(np.uint16) + im) // 2).astype(np.uint8))
                t += 1
            if out:
                yield np.stack(out)

    write_video(path, frames(), fps=fps)


def _strip(path: Path, joints3d: np.ndarray, valid: np.ndarray) -> None:
    from selfpose.viz.model_pictures import save_png, skeleton_strip

    T = len(joints3d)
    idx = np.unique(np.linspace(0, T - 1, min(8, T)).round().astype(int))
    titles = [f"frame {i}" + ("" if valid[i] else " (interpolated)") for i in idx]
    fig = skeleton_strip(joints3d[idx], titles=titles)
    save_png(fig, path)


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(doc, separators=(",", ":")))
    os.replace(tmp, path)


def _keypoints_of(video: Path, keypoints: Path | None, cfg_detector=None):
    """``(xy (T, 17, 2), conf (T, 17), width, height, fps, detector_fps, source)`` of a video."""
    from selfpose.data.datasets.framing import FrameTransform
    from selfpose.data.datasets.keypoints import find_keypoints, load_keypoints
    from selfpose.data.video import probe

    info = probe(video)
    path = find_keypoints(video, keypoints) if keypoints is not None else None
    if path is not None:
        kp = load_keypoints(path, info.width, info.height)
        xy, conf = kp.to_house(np.arange(len(kp)), FrameTransform.letterbox(info.width, info.height, 0))
        n = info.num_frames
        if n and abs(len(kp) - n) > max(2, n // 100):
            raise VideoLiftError(f"{path} has {len(kp)} frames but {video.name} has {n}; it belongs to another "
                                 "video — make it again with `selfpose keypoints`")
        return xy, conf, info.width, info.height, info.fps, None, str(path)
    from selfpose.keypoints.detector import detect_video
    from selfpose.keypoints.files import house_keypoints

    det = detect_video(video, cfg_detector)
    h = house_keypoints(det.keypoints)
    return h[..., :2], np.nan_to_num(h[..., 2]), det.width, det.height, det.fps, len(det) / max(det.seconds, 1e-9), \
        "MediaPipe Pose (model_complexity=1)"


def predict_videos(run: str | Path, source: str | Path, out: str | Path, cfg: VideoLiftConfig | None = None,
                   keypoints: str | Path | None = None, overwrite: bool = False) -> dict[str, Any]:
    """``selfpose predict LIFTER_RUN VIDEO_OR_DIR --out OUT``: see the module docstring.

    Raises:
        LifterError: ``run`` is not a trained lifter.
        VideoLiftError, VideoError, DetectorError, OutputError: bad input or output (one line each).
    """
    from selfpose.data.datasets.videos import find_videos
    from selfpose.data.video import VIDEO_EXTENSIONS
    from selfpose.lifting.model import Lifter
    from selfpose.outputs import atomic_output, check_output
    from selfpose.pose.predict import _round_list   # the JSON rounding `predict` with a pose folder writes
    from selfpose.utils.progress import track

    cfg = cfg or VideoLiftConfig()
    run, source, out = Path(run), Path(source), Path(out)
    keypoints = Path(keypoints) if keypoints is not None else None
    if not source.exists():
        raise VideoLiftError(f"{source} not found; give a video file or a folder of videos")
    videos = find_videos(source)
    if not videos:
        raise VideoLiftError(f"no video files ({', '.join(e[1:] for e in VIDEO_EXTENSIONS)}) found under {source}")
    if keypoints is not None and not keypoints.is_dir():
        raise VideoLiftError(f"keypoint folder {keypoints} not found (--keypoints); make it with `selfpose keypoints`")
    check_output(out, "lifted-video", overwrite=overwrite, inputs=[run, source])
    lifter = Lifter.load(run)
    if lifter.feature_dim:
        raise VideoLiftError(f"{run} was trained with image features; a video lifter reads keypoints only")
    if keypoints is None:
        from selfpose.keypoints.detector import _pose_module

        _pose_module()  # a missing detector fails before any work
    rows = []
    with atomic_output(out, "lifted-video", overwrite=overwrite, inputs=[run, source]) as tmp:
        for video in track(videos, "predict"):
            xy, conf, w, h, fps, det_fps, src = _keypoints_of(video, keypoints)
            res = lift_keypoints(lifter, xy, conf, w, h, cfg, name=video.stem)
            folder = tmp / video.stem
            folder.mkdir()
            reproj = _project(res["joints3d"], res["translation"], res["focal"], w, h)
            np.savez(folder / "joints3d.npz", joints3d=res["joints3d"], valid=res["valid"],
                     translation=res["translation"], joints2d=res["joints2d"], swapped=res["swapped"],
                     detected2d=xy.astype(np.float32), confidence=conf.astype(np.float32),
                     camera=np.array([res["focal"], res["focal"], w / 2, h / 2, w, h], np.float64), fps=np.array(fps))
            corr = res["correction"]
            row = {"video": video.name, "frames": res["frames"], "no_person": res["no_person"],
                   "joints_filled": res["joints_filled"], "swaps_repaired": int(res["swapped"].sum()),
                   "limb_cv_lifter": round(res["limb_cv_lifter"], 4), "limb_cv": round(res["limb_cv"], 4),
                   "correction": corr, "keypoints": src, "focal_px": round(res["focal"], 1),
                   "lift_fps": round(res["frames"] / max(res["seconds"], 1e-9), 1),
                   "detector_fps": None if det_fps is None else round(det_fps, 1)}
            _write_json(folder / "joints3d.json", {
                "video": video.name, "fps": fps, "num_frames": res["frames"], "joint_names": list(H36M17.joint_names),
                "units": {"joints3d": "mm, camera frame (x right, y down, z forward), pelvis-centred",
                          "translation": "mm, camera frame: the pelvis's estimated place (least squares from the 2D)",
                          "valid": "the detector saw the person in the frame; false = the frame was interpolated"},
                "camera": {"fx": res["focal"], "fy": res["focal"], "cx": w / 2, "cy": h / 2, "width": w, "height": h},
                "valid": res["valid"].tolist(), "swapped": res["swapped"].tolist(),
                "joints3d": _round_list(res["joints3d"], 1), "translation": _round_list(res["translation"], 1)})
            if cfg.overlay:
                _overlay(video, folder / "overlay.mp4", xy, conf, reproj, res["valid"], fps)
            _strip(folder / "skeleton3d.png", res["joints3d"], res["valid"])
            (folder / "report.md").write_text(_clip_report(row, ""))
            rows.append(row)
        summary = {"lifter": str(run), "method": lifter.cfg.method, "config": {
            "fov_deg": cfg.fov_deg, "focal_px": cfg.focal_px, "min_confidence": cfg.min_confidence,
            "correct": cfg.correct, "repair_swaps": cfg.repair_swaps, "swap_cost": cfg.swap_cost,
            "swap_window": cfg.swap_window, "fixed_bones": cfg.fixed_bones}, "videos": rows}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1))
        (tmp / "report.md").write_text("# selfpose predict\n\n" + f"Lifter `{run}` ({lifter.cfg.method}).\n\n"
                                       + "\n".join(_clip_report(r, Path(r["video"]).stem + "/") for r in rows))
    return {"out": str(out), **summary}


def _clip_report(row: dict, prefix: str) -> str:
    corr = row["correction"]
    if corr:
        ctext = (f"{corr.get('applied', 0)} of {corr.get('clips', 0)} windows corrected ({corr.get('stopped_small', 0)} "
                 f"stopped early as the robust joints moved < 5 mm, {corr.get('discarded', 0)} discarded as they moved "
                 "> 20 mm)")
    else:
        ctext = "off"
    det = f", detector {row['detector_fps']} frames/s" if row.get("detector_fps") else ""
    return (f"## {row['video']}\n\n"
            f"- frames: {row['frames']}; without a person (interpolated, valid = false): {row['no_person']}; "
            f"joints filled in frames with a person: {row['joints_filled']}\n"
            f"- left/right swaps repaired: {row['swaps_repaired']} frames\n"
            f"- limb lengths, std/mean over the valid frames: {100 * row['limb_cv_lifter']:.1f}% as lifted, "
            f"{100 * row['limb_cv']:.1f}% in the output\n"
            f"- test-time correction: {ctext}\n"
            f"- 2D: {row['keypoints']}; focal length {row['focal_px']} px\n"
            f"- lifting (+ correction) {row['lift_fps']} frames/s{det}\n\n"
            f"![3D]({prefix}skeleton3d.png)\n\nOverlay: [{prefix}overlay.mp4]({prefix}overlay.mp4) (2D as detected, "
            "thin; 3D re-projected, thick; dimmed where interpolated)\n")
