"""``selfpose keypoints``: detect 2D keypoints in videos and write one keypoint file per video.

A file ``OUT/<video stem>.npz`` holds (the format
:func:`selfpose.data.datasets.keypoints.load_keypoints` reads, so
``prepare videos --keypoints OUT`` takes it as it is):

* ``keypoints`` ``(T, 33, 4)`` float32 — MediaPipe-33 landmarks: x, y (px of
  the upright frame), z (MediaPipe's relative depth), visibility; one row
  per decoded frame, NaN rows where no person was found;
* ``skeleton`` ``"mediapipe33"``, ``normalized`` False;
* ``h36m17`` ``(T, 17, 3)`` — the same in the house skeleton (x, y px,
  confidence: the smallest visibility of the landmarks a house joint is made
  of), NaN rows where no person was found;
* ``detected`` ``(T,)`` bool — a person was found;
* ``world`` ``(T, 33, 3)`` — MediaPipe's metric world landmarks (m);
* ``fps``, ``width``, ``height``, ``video`` (the file's name), ``detector``.

Every file is written to a temporary name and renamed, so an interrupted
run leaves whole files only, and running the command again skips the
videos already done (``--overwrite`` redoes them). ``OUT/summary.json``
lists per video the frames, the frames without a person and the detector's
frames per second.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from selfpose.errors import SelfposeError, disk_full
from selfpose.keypoints.detector import DetectorConfig, Detections, detect_video

KIND = "keypoints"


class KeypointsError(SelfposeError, ValueError):
    """No video to detect in, or an output that is not a keypoint folder."""


def house_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """``(T, 33, 4)`` MediaPipe landmarks → ``(T, 17, 3)`` house joints: x, y px and confidence.

    The same conversion ``prepare videos --keypoints`` applies
    (:meth:`~selfpose.data.datasets.keypoints.Keypoints2D.to_house`): a house
    joint made of several landmarks (the pelvis of the two hips) takes their
    mean position and mean visibility; NaN where a landmark is unknown.
    """
    from selfpose.data.datasets.framing import FrameTransform
    from selfpose.data.datasets.keypoints import Keypoints2D

    kp = np.asarray(keypoints, dtype=np.float64)
    found = np.isfinite(kp[..., :2]).all(-1)
    k2 = Keypoints2D(np.where(found[..., None], kp[..., :2], np.nan), np.where(found, kp[..., 3], 0.0),
                     "mediapipe33", Path("-"))
    xy, conf = k2.to_house(np.arange(len(kp)), FrameTransform.letterbox(1, 1, 0))
    xy = np.where((conf > 0)[..., None], xy, np.nan)
    return np.concatenate([xy, conf[..., None]], -1).astype(np.float32)


def world_house_mm(world: np.ndarray) -> np.ndarray:
    """MediaPipe's metric world landmarks ``(T, 33, 3)`` (m, origin between the hips, axes along the camera's) →
    ``(T, 17, 3)`` house joints in mm, pelvis-centred (NaN where a landmark is unknown): MediaPipe's own 3D."""
    from selfpose.geometry.skeleton import to_h36m

    joints, _ = to_h36m(np.asarray(world, dtype=np.float64) * 1000.0, "mediapipe33")
    return joints - joints[:, :1]


def save_detections(det: Detections, path: Path, video: Path) -> Path:
    """Write ``det`` as a keypoint file at ``path`` (atomically); returns the path."""
    arrays: dict[str, Any] = {
        "keypoints": det.keypoints, "skeleton": np.array("mediapipe33"), "normalized": np.array(False),
        "h36m17": house_keypoints(det.keypoints), "detected": det.detected, "world": det.world,
        "fps": np.array(det.fps), "width": np.array(det.width), "height": np.array(det.height),
        "video": np.array(video.name), "detector": np.array("mediapipe-pose-legacy model_complexity=1")}
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}.npz")
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise disk_full(e, path) or e
    return path


def detect_keypoints(source: str | Path, out: str | Path, cfg: DetectorConfig | None = None,
                     overwrite: bool = False, progress: bool | None = None) -> dict[str, Any]:
    """Detect keypoints in every video under ``source`` (a file or a folder) into ``out``.

    Returns ``{"out": path, "videos": [{"video", "file", "frames", "no_person", "fps_detector", "skipped"}]}``.

    Raises:
        KeypointsError: ``source`` holds no video.
        DetectorError: MediaPipe is not installed.
        OutputError: ``out`` is another kind of output or someone else's folder.
    """
    from selfpose.data.datasets.videos import find_videos
    from selfpose.data.video import VIDEO_EXTENSIONS
    from selfpose.keypoints.detector import _pose_module
    from selfpose.outputs import inplace_output
    from selfpose.utils.progress import progress_bar

    source, out = Path(source), Path(out)
    if not source.exists():
        raise KeypointsError(f"{source} not found; give a video file or a folder of videos")
    videos = find_videos(source)
    if not videos:
        raise KeypointsError(f"no video files ({', '.join(e[1:] for e in VIDEO_EXTENSIONS)}) found under {source}")
    _pose_module()  # fail before creating anything when the detector is missing
    stems = [v.stem for v in videos]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise KeypointsError(f"several videos are named {', '.join(dupes)} (one keypoint file per name); "
                             "run the command on each folder separately")
    rows = []
    with inplace_output(out, KIND, inputs=[(source, True)]):  # K inside the videos folder is fine
        summary_path = out / "summary.json"
        old = {r["video"]: r for r in json.loads(summary_path.read_text())["videos"]} if summary_path.is_file() else {}
        with progress_bar(progress) as bar:
            for video in videos:
                path = out / f"{video.stem}.npz"
                if path.is_file() and not overwrite:
                    row = dict(old.get(video.name, {"video": video.name, "file": path.name}), skipped=True)
                    rows.append(row)
                    continue
                task = bar.add_task(video.name, total=None)
                det = detect_video(video, cfg, progress=lambda n: bar.update(task, completed=n))
                bar.update(task, total=len(det), completed=len(det))
                save_detections(det, path, video)
                rows.append({"video": video.name, "file": path.name, "frames": len(det),
                             "no_person": int((~det.detected).sum()), "width": det.width, "height": det.height,
                             "fps_video": det.fps, "fps_detector": round(len(det) / max(det.seconds, 1e-9), 1),
                             "skipped": False})
                _write_summary(summary_path, rows, old)
        _write_summary(summary_path, rows, old)
    return {"out": str(out), "videos": rows}


def _write_summary(path: Path, rows: list[dict], old: dict) -> None:
    done = {r["video"] for r in rows}
    keep = [r for name, r in old.items() if name not in done]  # videos of an earlier call on other inputs
    tmp = path.with_name(".summary.partial.json")
    tmp.write_text(json.dumps({"videos": keep + [{k: v for k, v in r.items() if k != "skipped"} for r in rows]},
                              indent=1))
    os.replace(tmp, path)
