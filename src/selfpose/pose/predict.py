"""3D pose on any video: a trained model + pose head → joints, an overlay video, a skeleton strip.

:func:`predict_video` takes a video file (or a folder of them) and writes, per
video, into ``OUT/<name>/``:

``joints3d.npz``
    ``joints3d`` (T, 17, 3) float32 — mm, camera frame (x right, y down,
    z forward), pelvis-centred, Human3.6M-17 order (``joint_names``);
    ``boxes_px`` (T, 4) float32 — the detected person box x0, y0, x1, y1 in
    pixels of the **original** video frame (pixel centres at integers, as
    everywhere in selfpose); ``boxes_stored_px`` (T, 4) — the same box in pixels
    of the letterboxed ``size × size`` frame the model saw; ``theta`` (T, 4)
    — the raw STN box (sx, sy, tx, ty); ``frame_ids`` (T,) int64 — index of
    each frame in the video (``k · step``); ``fps`` — of the kept frames;
    ``source_fps``; ``source_size`` (width, height) px; ``stored_size`` px.
``joints3d.json``
    The same as lists (mm rounded to 0.1, px to 0.01; NaN → null) plus units
    and the video's name.
``overlay.mp4``
    The video (longer side ``overlay_px``) with the detected box (yellow; the
    whole frame for a method without a detector), the decoded mask's outline
    (magenta, when the method can draw masks) and the predicted skeleton
    (left blue, right red, centre green).
``skeleton3d.png``
    ``num_skeletons`` evenly spaced frames: the overlay frame, then the 3D
    skeleton seen from the front (as the camera sees it) and from the side.

**How the 3D skeleton is drawn on the video.** An arbitrary video has no
camera calibration, and the pose head predicts a pelvis-centred pose without
depth, so the skeleton cannot be projected through a real camera. It is
projected *orthographically* (drop z, keep x right / y down), uniformly scaled
so that its 2D extent fills ``fit`` of the detected box (the tighter of width
and height), and centred on the box (:func:`project_into_box`). The overlay
therefore shows the predicted *shape* of the pose where the detector found the
person; it is not a reprojection error check.

**Streaming.** The video is first prepared exactly as ``selfpose prepare
--format videos`` does (decoded, letterboxed into ``size × size``, written to
a temporary store, background estimated from the memory-mapped frames, see
:mod:`selfpose.data.datasets.videos`), so nothing but the background
estimate's bounded frame sample is held in memory. A second decoding pass of
the original video, in lockstep with batches of stored frames, draws the
overlay at full quality; at most ``batch_size`` frames of each are in memory.

Errors: a missing, corrupt or truncated video raises
:class:`~selfpose.data.video.VideoError` naming the file; bad arguments and
heads that return the wrong shape raise :class:`PredictError`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from selfpose.errors import SelfposeError
from selfpose.geometry.skeleton import H36M17


class PredictError(SelfposeError, RuntimeError):
    """Prediction cannot run: bad arguments, no video found, or a head with the wrong output."""


#: Output file names, per video.
OUTPUT_FILES = ("joints3d.npz", "joints3d.json", "overlay.mp4", "skeleton3d.png")


def project_into_box(joints3d: np.ndarray, boxes: np.ndarray, fit: float = 0.9) -> np.ndarray:
    """Draw-only 2D placement of 3D poses inside their boxes (no camera needed).

    Args:
        joints3d: ``(N, J, 3)`` camera-frame joints, mm (x right, y down).
        boxes: ``(N, 4)`` boxes x0, y0, x1, y1 in pixels.
        fit: fraction of the box the skeleton's 2D extent fills (tighter side).

    Returns:
        ``(N, J, 2)`` pixels: the orthographic projection ``(x, y)`` of each
        pose, scaled uniformly by ``fit · min(box_w / extent_x, box_h / extent_y)``
        and centred on the box centre. Poses or boxes with NaN give NaN.
    """
    j = np.asarray(joints3d, dtype=np.float64)
    b = np.asarray(boxes, dtype=np.float64)
    if j.ndim != 3 or j.shape[-1] != 3 or b.shape != (len(j), 4):
        raise PredictError(f"project_into_box needs (N, J, 3) joints and (N, 4) boxes, got {j.shape} and {b.shape}")
    out = np.full(j.shape[:2] + (2,), np.nan)
    xy = j[..., :2]
    ok = np.isfinite(xy).all(axis=(1, 2)) & np.isfinite(b).all(axis=1)
    if not ok.any():
        return out
    xy, bb = xy[ok], b[ok]
    lo, hi = xy.min(axis=1), xy.max(axis=1)                      # (n, 2)
    ext = np.maximum(hi - lo, 1e-6)
    size = np.stack([bb[:, 2] - bb[:, 0], bb[:, 3] - bb[:, 1]], axis=1)
    s = fit * np.min(np.abs(size) / ext, axis=1)                 # px per mm, (n,)
    centre_box = np.stack([(bb[:, 0] + bb[:, 2]) / 2, (bb[:, 1] + bb[:, 3]) / 2], axis=1)
    out[ok] = (xy - ((lo + hi) / 2)[:, None]) * s[:, None, None] + centre_box[:, None]
    return out


def _video_list(video: Path, out_dir: Path) -> list[tuple[Path, str]]:
    """``(video file, output name)`` pairs for a file or a folder (outputs inside the folder are skipped)."""
    from selfpose.data.datasets.videos import find_videos
    from selfpose.data.sequence import safe_id
    from selfpose.data.video import VIDEO_EXTENSIONS, VideoError

    if not video.exists():
        raise VideoError(f"video {video} not found")
    if video.is_file():
        return [(video, safe_id(video.stem))]
    out_res = out_dir.resolve()
    vids = [v for v in find_videos(video) if out_res not in v.resolve().parents]
    if not vids:
        raise PredictError(f"no video files ({', '.join(e[1:] for e in VIDEO_EXTENSIONS)}) found under {video}")
    return [(v, safe_id(*v.relative_to(video).with_suffix("").parts)) for v in vids]


def predict_video(method, head: Callable, video: str | os.PathLike, out_dir: str | os.PathLike,
                  size: int | None = None, step: int = 1, batch_size: int = 32, *, background: str = "auto",
                  overlay_px: int = 720, num_skeletons: int = 6, fit: float = 0.9,
                  progress: bool | None = None) -> dict[str, Any]:
    """Predict 3D poses on a video (or every video of a folder) and write the outputs.

    Args:
        method: a :class:`~selfpose.methods.base.Method` (or a bare
            ``TemporalModel``); its device is used. Everything goes through
            its interface: ``encode_for_pose`` (features, boxes when it has a
            detector) and, when it can draw them, ``draw_masks``.
        head: callable ``features (B, D) → (B, 17, 3)`` mm, camera frame,
            pelvis-centred; ``features`` are the method's pose features
            (``encode_for_pose(...)["features"]``). A torch module is put in
            eval mode for the call and restored after.
        video: a video file, or a folder (every video under it, recursively).
        out_dir: outputs go to ``out_dir/<name>/`` (see the module docstring).
        size: letterbox side the frames are prepared at (default: the method's
            ``input_size``, as ``selfpose prepare`` would store them; 128 when it has none).
        step: keep every ``step``-th frame.
        batch_size: frames per forward pass (and per decoded chunk).
        background: background estimator (``auto``, ``median``, ``dive``,
            ``pan``, ``none``); only the composite uses it.
        overlay_px: longer side of the overlay video in pixels (0 = source size;
            never enlarged).
        num_skeletons: frames shown in ``skeleton3d.png``.
        fit: fraction of the box the drawn skeleton fills (:func:`project_into_box`).
        progress: show progress bars (None: unless ``SELFPOSE_PROGRESS=0``).

    Returns:
        ``{"out_dir": str, "videos": [summary, ...]}``; a summary has the
        video, its output folder and files, ``num_frames``, ``fps``,
        ``source_size``, the background method and ``seconds`` per stage.

    Raises:
        VideoError: missing/corrupt/truncated video (names the file).
        PredictError: bad arguments, no video in a folder, a head with the wrong output.
    """
    if step < 1 or batch_size < 1 or num_skeletons < 0 or overlay_px < 0:
        raise PredictError(f"need step >= 1, batch_size >= 1, num_skeletons >= 0, overlay_px >= 0; got "
                           f"step={step}, batch_size={batch_size}, num_skeletons={num_skeletons}, "
                           f"overlay_px={overlay_px}")
    if not 0 < fit <= 1:
        raise PredictError(f"fit must be in (0, 1], got {fit}")
    if not callable(head) and callable(getattr(head, "predict", None)):
        head = head.predict  # e.g. a fitted pose head object (features → mm)
    if not callable(head):
        raise PredictError(f"head must be a callable features (B, D) → (B, 17, 3) mm, got {type(head).__name__}")
    from selfpose.methods.base import as_method

    method = as_method(method)
    size = int(size or method.input_size or 128)
    out_dir = Path(out_dir)
    videos = _video_list(Path(video), out_dir)
    summaries = [_predict_one(method, head, v, out_dir / name, size, step, batch_size, background, overlay_px,
                              num_skeletons, fit, progress) for v, name in videos]
    return {"out_dir": str(out_dir), "videos": summaries}


def _prepare_store(video: Path, tmp: Path, size: int, step: int, background: str, progress: bool | None):
    """Prepare ``video`` into a temporary store (as ``selfpose prepare videos``); returns its sequence record."""
    from selfpose.data.datasets import PrepareConfig, prepare
    from selfpose.data.store import Dataset

    # A private folder holding only a link to the video: prepare() then sees
    # this one file and no keypoint files that may lie beside the original.
    src = tmp / "src"
    src.mkdir()
    link = src / video.name
    try:
        link.symlink_to(video.resolve())
    except OSError:  # no symlinks (some Windows setups): point prepare at the file itself
        link = video
    cfg = PrepareConfig(size=size, step=step, background=background, background_min_frames=2)
    ds = Dataset.open(prepare("videos", link, tmp / "store", cfg, progress=progress is not False))
    return ds.sequences[0]


def _predict_one(method, head, video: Path, out: Path, size: int, step: int, batch_size: int, background: str,
                 overlay_px: int, num_skeletons: int, fit: float, progress: bool | None) -> dict[str, Any]:
    import torch

    from selfpose.data.datasets.framing import FrameTransform
    from selfpose.data.loader import to_float
    from selfpose.data.video import iter_frames
    from selfpose.utils.progress import progress_bar
    from selfpose.viz.model_pictures import save_png, skeleton_strip
    from selfpose.viz.video import VideoWriter

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".predict-", dir=out))
    try:
        rec = _prepare_store(video, tmp, size, step, background, progress)
        times["prepare_s"] = time.perf_counter() - t0
        meta = rec.meta
        T = meta.num_frames
        src_w, src_h = meta.attrs["source_size"]
        tf = FrameTransform.letterbox(src_w, src_h, size)
        frames = rec["frames"]
        bg_static = rec["background"] if rec.has("background") else None
        bg_frames = rec["backgrounds"] if rec.has("backgrounds") else None

        device = next(method.parameters()).device
        draws_masks = "masks" in method.drawings()
        reads_bg = bool(getattr(method, "reads_background", False))
        if reads_bg and bg_static is None and bg_frames is None:
            raise PredictError(f"{video}: the model reads each frame with its estimated background "
                               "(pose_background: as_pretrained) and none could be estimated from this video; "
                               "fit its pose stage with method_config.sync.pose_background=keep to read raw frames")
        s_ov = 1.0 if overlay_px == 0 else min(1.0, overlay_px / max(src_w, src_h))
        ow, oh = max(2, int(round(src_w * s_ov))), max(2, int(round(src_h * s_ov)))
        picks = (np.unique(np.linspace(0, T - 1, min(num_skeletons, T)).round().astype(int))
                 if num_skeletons else np.zeros(0, int))
        pick_imgs: dict[int, np.ndarray] = {}

        joints = np.empty((T, H36M17.num_joints, 3), np.float32)
        theta_all = np.empty((T, 4), np.float32)
        modules = [m for m in (method, head) if isinstance(m, torch.nn.Module)]
        was_training = [m.training for m in modules]
        t1 = time.perf_counter()
        model_s = 0.0  # time in the networks (the rest of the pass: decoding, drawing, encoding the overlay)
        k = 0
        try:
            for m in modules:
                m.eval()
            with torch.no_grad(), VideoWriter(out / "overlay.mp4", meta.fps) as writer, \
                    progress_bar(progress) as prog:
                task = prog.add_task(f"predict {video.name}", total=T)
                for chunk in iter_frames(video, size=None, step=step, chunk=batch_size):
                    n = len(chunk)
                    if k + n > T:
                        raise PredictError(f"{video}: the second decoding pass gave more frames than the first "
                                           f"({k + n} > {T}); the file decodes inconsistently — re-encode it")
                    tm = time.perf_counter()
                    x = torch.from_numpy(np.array(frames[k:k + n])).permute(0, 3, 1, 2).to(device)
                    bg = None   # read once per chunk, for the model's input and for the mask drawing
                    if reads_bg or draws_masks:
                        bg = torch.from_numpy(_background(bg_static, bg_frames, k, n, size)).permute(0, 3, 1, 2)
                        bg = bg.to(device)
                    # the frames as pretraining read them (e.g. the person masked) where the model asks for it
                    xin = method.pose_input(to_float(x), to_float(bg)) if reads_bg else x
                    enc = method.encode_for_pose(xin)
                    pose = _run_head(head, enc["features"], n)
                    theta = _theta_of(enc, n, size)      # the detector's box (the crop may be a larger square)
                    mask = None
                    if draws_masks:
                        mask = method.draw_masks(x, bg, **({"encoded": enc["encoded"]} if "encoded" in enc else {}))
                        mask = mask.float().cpu().numpy()   # (n, size, size): stored px, as the overlay maps them
                    theta_np = theta
                    model_s += time.perf_counter() - tm
                    joints[k:k + n] = pose
                    theta_all[k:k + n] = theta_np
                    boxes_orig = _stored_to_source(_theta_to_stored_box(theta_np, size), tf)
                    ov = _overlay(chunk, (ow, oh), s_ov, boxes_orig, pose, mask, tf, fit,
                                  np.asarray(rec["frame_ids"][k:k + n]))
                    writer.write(ov)
                    for p in picks[(picks >= k) & (picks < k + n)]:
                        pick_imgs[int(p)] = ov[p - k]
                    k += n
                    prog.advance(task, n)
            if k != T:
                raise PredictError(f"{video}: the second decoding pass gave {k} frames, the first {T}; "
                                   "the file decodes inconsistently — re-encode it")
        finally:
            for m, w in zip(modules, was_training):
                m.train(w)
        times["predict_overlay_s"] = time.perf_counter() - t1
        times["model_s"] = model_s

        t2 = time.perf_counter()
        boxes_stored = _theta_to_stored_box(theta_all, size)
        boxes_src = _stored_to_source(boxes_stored, tf)
        frame_ids = np.asarray(rec["frame_ids"], dtype=np.int64)
        arrays = {"joints3d": joints, "boxes_px": boxes_src.astype(np.float32),
                  "boxes_stored_px": boxes_stored.astype(np.float32), "theta": theta_all, "frame_ids": frame_ids,
                  "fps": np.float64(meta.fps), "source_fps": np.float64(meta.attrs["source_fps"]),
                  "frame_step": np.int64(step), "source_size": np.array([src_w, src_h], np.int64),
                  "stored_size": np.array([size, size], np.int64), "joint_names": np.array(H36M17.joint_names)}
        _save_npz(out / "joints3d.npz", arrays)
        _save_json(out / "joints3d.json", video, meta, arrays)
        if len(picks):
            fig = skeleton_strip(joints[picks], [pick_imgs[int(p)] for p in picks],
                                 [f"frame {int(frame_ids[p])}" for p in picks])
            save_png(fig, out / "skeleton3d.png")
        times["write_s"] = time.perf_counter() - t2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    times["total_s"] = time.perf_counter() - t0
    files = {name: str(out / name) for name in OUTPUT_FILES if (out / name).exists()}
    return {"video": str(video), "out": str(out), "files": files, "num_frames": int(T), "fps": float(meta.fps),
            "source_size": [int(src_w), int(src_h)], "stored_size": size,
            "background": "static" if bg_static is not None else "moving" if bg_frames is not None else "none",
            "decoder": draws_masks, "seconds": {k_: round(v, 3) for k_, v in times.items()}}


def _theta_of(enc: dict, n: int, size: int) -> np.ndarray:
    """θ (n, 4) of an ``encode_for_pose`` output: its ``theta``, else from its ``boxes``, else the whole frame."""
    from selfpose.models.stn import box_px_to_theta

    if enc.get("theta") is not None:
        return enc["theta"].float().cpu().numpy()
    if enc.get("boxes") is not None:   # px of the stored frame, measured from its outer edge (as encode_for_pose gives)
        return box_px_to_theta(enc["boxes"].float().cpu(), size, size).numpy().astype(np.float32)
    return np.tile(np.array([[1.0, 1.0, 0.0, 0.0]], np.float32), (n, 1))   # no detector: the whole frame


def _run_head(head: Callable, feats, n: int) -> np.ndarray:
    """Apply the pose head and check its output: ``(n, 17, 3)`` mm (a flat ``(n, 51)`` is reshaped)."""
    out = head(feats)
    out = out.detach().float().cpu().numpy() if hasattr(out, "detach") else np.asarray(out, dtype=np.float32)
    J = H36M17.num_joints
    if out.shape == (n, J * 3):
        out = out.reshape(n, J, 3)
    if out.shape != (n, J, 3):
        raise PredictError(f"the pose head must map features ({n}, D) to ({n}, {J}, 3) mm, got {out.shape}")
    return out


def _background(bg_static, bg_frames, k: int, n: int, size: int) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 background of frames ``k … k+n`` (black when none was estimated)."""
    if bg_frames is not None:
        return np.array(bg_frames[k:k + n])  # a writable copy (torch.from_numpy warns on read-only maps)
    if bg_static is not None:
        return np.broadcast_to(np.asarray(bg_static), (n,) + bg_static.shape).copy()
    return np.zeros((n, size, size, 3), np.uint8)


def _theta_to_stored_box(theta: np.ndarray, size: int) -> np.ndarray:
    """θ (N, 4) → boxes (N, 4) in pixels of the ``size × size`` stored frame, pixel centres at integers.

    The STN's box (:func:`selfpose.models.stn.theta_to_box_px`) measures from the
    frame's outer edge (0 … size); house pixels put the first pixel's centre at 0,
    so the edge is at −0.5.
    """
    from selfpose.models.stn import theta_to_box_px

    return theta_to_box_px(np.asarray(theta, dtype=np.float64), size, size) - 0.5


def _stored_to_source(boxes: np.ndarray, tf) -> np.ndarray:
    """Boxes in stored (letterboxed) pixels → pixels of the original video frame (inverse of ``tf.points``)."""
    scale, off = np.array(tf.scale * 2), np.array(tf.offset * 2)  # (sx, sy, sx, sy), (ox, oy, ox, oy)
    return (np.asarray(boxes, dtype=np.float64) - off) / scale


def _overlay(chunk: np.ndarray, size_wh: tuple[int, int], s: float, boxes_src: np.ndarray, joints3d: np.ndarray,
             mask: np.ndarray | None, tf, fit: float, frame_ids: np.ndarray) -> np.ndarray:
    """Draw box, mask outline, skeleton and frame id on ``(n, H, W, 3)`` source frames resized to ``size_wh``."""
    import cv2

    from selfpose.viz.skeleton import default_thickness, draw_box, draw_mask_outline, draw_skeleton_2d

    ow, oh = size_wh
    boxes = (boxes_src + 0.5) * s - 0.5          # source px → overlay px (pixel-centre convention)
    joints2d = project_into_box(joints3d, boxes, fit)
    th = default_thickness(oh, ow)
    font = max(0.35, max(oh, ow) / 1400)  # OpenCV font scale: ~0.5 on a 720 px frame
    out = np.empty((len(chunk), oh, ow, 3), np.uint8)
    x0, y0, w, h = tf.px, tf.py, tf.rw, tf.rh  # the picture area inside the letterboxed frame
    for i, img in enumerate(chunk):
        if img.shape[:2] != (oh, ow):
            # INTER_AREA is several times slower at non-integer factors; down to half size, bilinear does not alias
            img = cv2.resize(img, (ow, oh), interpolation=cv2.INTER_LINEAR if s >= 0.5 else cv2.INTER_AREA)
        if mask is not None:
            # the mask lives on the letterboxed frame: cut the picture area, stretch it onto the overlay
            m = cv2.resize(np.ascontiguousarray(mask[i, y0:y0 + h, x0:x0 + w]), (ow, oh),
                           interpolation=cv2.INTER_LINEAR)
            img = draw_mask_outline(img, (m > 0.5).astype(np.uint8), thickness=th)
        img = draw_box(img, boxes[i], thickness=th)
        img = draw_skeleton_2d(img, joints2d[i], thickness=th)
        img = np.ascontiguousarray(img)
        cv2.putText(img, f"frame {int(frame_ids[i])}", (6, 8 + int(round(26 * font))), cv2.FONT_HERSHEY_SIMPLEX,
                    font, (255, 255, 255), max(1, th // 2), cv2.LINE_AA)
        out[i] = img
    return out


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically (temporary name, then rename): a reader never sees a half-written file."""
    tmp = path.with_name(f".{path.name}.partial.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _round_list(a: np.ndarray, decimals: int) -> list:
    """Nested lists with floats rounded; NaN/inf → None (valid JSON)."""
    a = np.round(np.asarray(a, dtype=np.float64), decimals)
    obj = a.astype(object)
    obj[~np.isfinite(a)] = None
    return obj.tolist()


def _save_json(path: Path, video: Path, meta, arrays: dict[str, np.ndarray]) -> None:
    doc = {
        "video": video.name,
        "fps": float(arrays["fps"]), "source_fps": float(arrays["source_fps"]),
        "frame_step": int(arrays["frame_step"]),
        "source_size": [int(v) for v in arrays["source_size"]],
        "stored_size": [int(v) for v in arrays["stored_size"]],
        "num_frames": int(len(arrays["joints3d"])),
        "units": {"joints3d": "mm, camera frame (x right, y down, z forward), pelvis-centred",
                  "boxes_px": "x0, y0, x1, y1, pixels of the original video frame (pixel centres at integers)",
                  "boxes_stored_px": "x0, y0, x1, y1, pixels of the letterboxed stored frame",
                  "theta": "STN box (sx, sy, tx, ty): size as a fraction of the stored frame, centre in [-1, 1]"},
        "joint_names": list(H36M17.joint_names),
        "frame_ids": [int(v) for v in arrays["frame_ids"]],
        "joints3d": _round_list(arrays["joints3d"], 1),
        "boxes_px": _round_list(arrays["boxes_px"], 2),
        "boxes_stored_px": _round_list(arrays["boxes_stored_px"], 2),
        "theta": _round_list(arrays["theta"], 5),
    }
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(doc, separators=(",", ":")))
    os.replace(tmp, path)


__all__ = ["OUTPUT_FILES", "PredictError", "predict_video", "project_into_box"]
