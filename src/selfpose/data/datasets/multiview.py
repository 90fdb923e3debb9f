"""Synchronised, calibrated videos of one take → the store (``selfpose prepare multiview DIR --calibration F``).

``DIR`` holds one video per camera, named after the calibration's camera
(``cam01.mp4`` for ``cam01``; a Qualisys ``.qca.txt`` or OpenCV/Pose2Sim
``.toml``, :mod:`selfpose.keypoints.calibration`). They become one take (the
folder's name) with one sequence per view, ``view`` = the camera's name, each
with its camera in stored-frame pixels (the letterbox applied to the
calibration; a video slightly smaller than its calibrated sensor is the
sensor's top-left part, as ``triangulate`` takes it). The views keep the same
number of frames (the shortest), so frame ``t`` is one instant in every view;
their lengths may differ by at most two frames, else they are not synchronised
and the preparation fails. 2D keypoints (``--keypoints K``, files named like the
videos) are read as for ``prepare videos`` (with person boxes around them), and
each view's static background is estimated as for ``prepare videos``
(``background``, ``background_min_frames``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfpose.data.datasets.config import PrepareConfig, PrepareError

_CALIBRATION_NAMES = ("*.qca.txt", "*.toml")


def _calibration_of(source: Path, cfg: PrepareConfig) -> Path:
    if cfg.calibration:
        return Path(cfg.calibration)
    found = sorted(p for pat in _CALIBRATION_NAMES for p in source.glob(pat))
    if len(found) == 1:
        return found[0]
    raise PrepareError(f"prepare multiview needs the cameras' calibration: pass --calibration FILE (a Qualisys "
                       f".qca.txt or an OpenCV/Pose2Sim .toml){'; ' + source.name + ' holds several' if found else ''}")


def prepare_multiview(source: Path, writer, cfg: PrepareConfig, progress: bool | None = None) -> dict[str, Any]:
    """Write one sequence per view of the take in ``source``; returns facts for the dataset attrs."""
    from selfpose.data.datasets.image_sequences import estimate_sequence_background
    from selfpose.data.datasets.keypoints import find_keypoints, load_keypoints
    from selfpose.data.datasets.videos import find_videos, write_video_frames
    from selfpose.data.sequence import SequenceMeta, safe_id
    from selfpose.data.video import frame_transform, probe
    from selfpose.keypoints.calibration import read_calibration
    from selfpose.keypoints.multiview import fit_camera_to_frame
    from selfpose.utils.progress import progress_bar

    if not source.is_dir():
        raise PrepareError(f"{source} is not a folder; pass the folder holding one video per camera")
    calib = _calibration_of(source, cfg)
    cameras = read_calibration(calib)
    videos = [v for v in find_videos(source) if v.parent == source]
    by_name = {v.stem: v for v in videos}
    missing = [c for c in cameras if c not in by_name]
    extra = [v.name for v in videos if v.stem not in cameras]
    if missing or extra:
        raise PrepareError(f"{source}: " + "; ".join(
            ([f"no video for camera(s) {', '.join(missing)} of {calib.name}"] if missing else [])
            + ([f"video(s) {', '.join(extra)} match no camera of {calib.name} (name each after its camera)"]
               if extra else [])))
    kp_dir = Path(cfg.keypoints) if cfg.keypoints else None
    infos = {c: probe(by_name[c]) for c in cameras}
    counts = {c: -(-i.num_frames // cfg.step) for c, i in infos.items()}
    if max(counts.values()) - min(counts.values()) > 2:
        raise PrepareError(f"{source}: the views differ in length (" + ", ".join(f"{c}: {n}" for c, n in counts.items())
                           + " frames); give synchronised videos of one take, trimmed to the same span")
    n = min(counts.values())
    if cfg.max_frames:
        n = min(n, cfg.max_frames)
    take = source.resolve().name
    with progress_bar(progress) as prog:
        task = prog.add_task("views", total=n * len(cameras))
        for name, cam in cameras.items():
            video, info = by_name[name], infos[name]
            tf = frame_transform(info, cfg.size)
            cam_video, how = fit_camera_to_frame(cam, info.width, info.height)
            kp_path = find_keypoints(video, kp_dir)
            kp = load_keypoints(kp_path, info.width, info.height) if kp_path else None
            meta = SequenceMeta(
                id=safe_id(take, name), subject=take, action="", take=take, view=name, fps=info.fps / cfg.step,
                num_frames=0, height=tf.height, width=tf.width, camera=tf.camera(cam_video),
                attrs={"source_video": video.name, "source_fps": info.fps, "source_size": [info.width, info.height],
                       "codec": info.codec, "rotation": info.rotation, "frame_step": cfg.step,
                       "letterbox": {"x": tf.px, "y": tf.py, "w": tf.rw, "h": tf.rh}, "calibration": calib.name,
                       "camera_fit": how, **({"keypoints_file": kp_path.name} if kp_path else {})})
            sw = writer.add_sequence(meta)
            write_video_frames(sw, video, tf, kp, cfg, writer.path, lambda k: prog.advance(task, k), max_frames=n)
            estimate_sequence_background(sw, cfg)   # static cameras: the multi-view sync method masks with it
    return {"num_sequences": len(cameras), "num_takes": 1, "num_views": len(cameras), "has_camera": True,
            "calibration": str(calib), "frames_per_view": n,
            "notes": ["one take seen by synchronised calibrated cameras; frame t is one instant in every view",
                      f"frames letterboxed into {cfg.size}x{cfg.size}; cameras in stored-frame pixels" if cfg.size
                      else "frames at source resolution"]}
