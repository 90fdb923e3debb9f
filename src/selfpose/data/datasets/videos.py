"""A folder of videos → the house store (``selfpose prepare --format videos``).

Every video file under the source folder (recursively; see
:data:`~selfpose.data.video.VIDEO_EXTENSIONS`) becomes one sequence:

- frames decoded with PyAV, kept every ``step``, letterboxed into
  ``size × size`` (aspect kept, black bars; default 128 px) and **streamed**
  to the store chunk by chunk — a video is never held in memory whole;
- ``fps`` = source fps / ``step``; ``frame_ids`` are source frame indices;
- subject: the video's folder relative to the source (videos directly in the
  source folder: the file name), take: the video's relative path;
- no camera (intrinsics unknown), no 3D;
- optional 2D keypoints (:mod:`selfpose.data.datasets.keypoints`) from
  ``cfg.keypoints/<stem>.npz|json`` or beside the video, moved into stored
  pixels as ``joints2d`` + ``joints2d_conf``;
- after the frames are written the background is estimated from them, read
  back memory-mapped (``selfpose.data.backgrounds``): ``background`` for a
  static camera, ``backgrounds`` per frame for a moving one (and
  ``meta.scenario`` = ``static``/``moving`` accordingly).

A video that cannot be decoded fails the whole preparation with an error that
names it; the store is written atomically, so no partial dataset is left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from selfpose.data.datasets.config import PrepareConfig, PrepareError, warn
from selfpose.data.datasets.image_sequences import estimate_sequence_background
from selfpose.data.datasets.keypoints import KEYPOINT_SUFFIXES, Keypoints2D, find_keypoints, load_keypoints
from selfpose.errors import SelfposeError, disk_full


def find_videos(source: Path) -> list[Path]:
    """Video files under ``source`` (or ``source`` itself), sorted."""
    from selfpose.data.video import VIDEO_EXTENSIONS

    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(source).parts))


def prepare_videos(source: Path, writer, cfg: PrepareConfig, progress: bool | None = None) -> dict[str, Any]:
    """Write one sequence per video under ``source`` into ``writer``; returns facts for the dataset attrs."""
    from selfpose.data.sequence import SequenceMeta, safe_id
    from selfpose.data.video import VIDEO_EXTENSIONS, frame_transform, probe
    from selfpose.utils.progress import progress_bar

    videos = find_videos(source)
    if not videos:
        raise PrepareError(f"no video files ({', '.join(e[1:] for e in VIDEO_EXTENSIONS)}) found under {source}")
    kp_dir = Path(cfg.keypoints) if cfg.keypoints else None
    if kp_dir is not None and not kp_dir.is_dir():
        raise PrepareError(f"keypoint folder {kp_dir} not found (--keypoints); pass the folder holding "
                           f"<video name>{'|'.join(KEYPOINT_SUFFIXES)} files")
    root = source.parent if source.is_file() else source
    infos = {}
    for v in videos:  # probe everything first: a broken file fails before any long decoding
        infos[v] = probe(v)
    total = sum(_kept(infos[v].num_frames, cfg) for v in videos)
    with_kp, missing_kp = 0, []
    with progress_bar(progress) as prog:
        task = prog.add_task("videos", total=total)
        for v in videos:
            info = infos[v]
            rel = v.relative_to(root)
            tf = frame_transform(info, cfg.size)
            kp_path = find_keypoints(v, kp_dir)
            kp: Keypoints2D | None = load_keypoints(kp_path, info.width, info.height) if kp_path else None
            if kp is None and kp_dir is not None:
                missing_kp.append(str(rel))
            subject = str(rel.parent).replace("\\", "/") if rel.parent != Path(".") else v.stem
            meta = SequenceMeta(
                id=safe_id(*rel.with_suffix("").parts), subject=subject, action="", take=str(rel), view="0",
                fps=info.fps / cfg.step, num_frames=0, height=tf.height, width=tf.width, camera=None,
                attrs={"source_video": str(rel), "source_fps": info.fps, "source_size": [info.width, info.height],
                       "codec": info.codec, "rotation": info.rotation, "frame_step": cfg.step,
                       "letterbox": {"x": tf.px, "y": tf.py, "w": tf.rw, "h": tf.rh}})
            sw = writer.add_sequence(meta)
            kept = write_video_frames(sw, v, tf, kp, cfg, writer.path, lambda n: prog.advance(task, n))
            if kp is not None:
                with_kp += 1
                meta.attrs["keypoints_file"] = kp_path.name
                meta.attrs["keypoints_skeleton"] = kp.skeleton
                last = (kept - 1) * cfg.step
                if len(kp) <= last or len(kp) > info.num_frames + 2:
                    warn(f"{kp_path}: {len(kp)} keypoint rows for a video of {info.num_frames} frames; "
                         "frames without a row have no keypoints")
            estimate_sequence_background(sw, cfg)
    if missing_kp:
        warn(f"no keypoint file in {kp_dir} for {len(missing_kp)} video(s), e.g. {missing_kp[0]}")
    return {"num_sequences": len(videos), "num_with_keypoints": with_kp, "has_camera": False,
            "notes": [f"frames letterboxed into {cfg.size}x{cfg.size} (aspect kept, black bars)" if cfg.size
                      else "frames at source resolution",
                      "no camera intrinsics, no 3D; joints2d (when present) are detector output, weak labels"]}


#: Keypoints below this confidence do not shape a person box.
BOX_MIN_CONF = 0.3


def keypoint_boxes(joints2d: np.ndarray, conf: np.ndarray, width: int, height: int) -> np.ndarray:
    """Person boxes ``(N, 4)`` xyxy px of the stored frames from the detector's 2D keypoints.

    The confident joints' extent (confidence ≥ :data:`BOX_MIN_CONF`), padded as
    :func:`~selfpose.data.datasets.framing.joint_boxes` pads it and clipped to
    the frame; a frame without a confident joint gets the whole frame (no NaN
    reaches a crop). A 2D detector's output, not a 3D label: what a method that
    reads the person at a box (``method=sync``) needs on real footage.
    """
    from selfpose.data.datasets.framing import clip_boxes, joint_boxes

    j = np.where((conf >= BOX_MIN_CONF)[..., None] & np.isfinite(joints2d), joints2d, np.nan).astype(np.float64)
    seen = np.isfinite(j).all(axis=2).any(axis=1)
    out = np.tile(np.array([-0.5, -0.5, width - 0.5, height - 0.5]), (len(j), 1))
    if seen.any():
        out[seen] = clip_boxes(joint_boxes(j[seen]), width, height)
    return out.astype(np.float32)


def write_video_frames(sw, video: Path, tf, kp: Keypoints2D | None, cfg: PrepareConfig, store: Path, advance,
                       max_frames: int | None = None) -> int:
    """Decode ``video`` into the open sequence writer ``sw`` (frames, frame ids, keypoints if any); close it.

    ``max_frames`` caps the kept frames (default ``cfg.max_frames``); returns how many were kept.
    """
    from selfpose.data.video import iter_frames

    kept = 0
    cap = max_frames if max_frames is not None else (cfg.max_frames or None)
    try:
        for chunk in iter_frames(video, size=cfg.size, step=cfg.step, max_frames=cap, chunk=cfg.chunk):
            src_ids = (kept + np.arange(len(chunk))) * cfg.step
            arrays = {"frames": chunk, "frame_ids": src_ids}
            if kp is not None:
                arrays["joints2d"], arrays["joints2d_conf"] = kp.to_house(src_ids, tf)
                arrays["boxes"] = keypoint_boxes(arrays["joints2d"], arrays["joints2d_conf"], chunk.shape[2],
                                                 chunk.shape[1])
            sw.append(**arrays)
            kept += len(chunk)
            advance(len(chunk))
    except SelfposeError:
        raise   # already one line that names the video or the folder (a corrupt video, a full disk...)
    except OSError as e:   # name the video; a full disk is named as such. Anything else is a bug.
        raise disk_full(e, store) or PrepareError(f"preparing {video} failed: {e}") from e
    sw.close()
    return kept


def _kept(n: int, cfg: PrepareConfig) -> int:
    k = -(-n // cfg.step)
    return min(k, cfg.max_frames) if cfg.max_frames else k
