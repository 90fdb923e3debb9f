"""Human3.6M (mmpose ``body3d`` annotation format) → the house store.

Source folder layout (that of mmpose's preprocessed Human3.6M and of its
sample files)::

    SOURCE/*.npz or SOURCE/annotations/*.npz   imgname, center, scale, part, S (17 joints)
    SOURCE/cameras.pkl or SOURCE/annotations/cameras.pkl
                                               {(subject, camera id): R, T, f, c, k, p, w, h}
    SOURCE/<imgname> or SOURCE/images/<imgname>   e.g. S1/S1_Directions_1.54138969/S1_Directions_1.54138969_000001.jpg

The joints are already in the house order (the Human3.6M-17 order); ``part``
is 2D in pixels, ``S`` 3D in the camera frame in metres. Images of one
subject, action take and camera form one sequence, ordered by frame number;
views of a take share the take id and frame numbers (Human3.6M's cameras are
synchronised). The camera (with its distortion) is ``Camera.from_h36m``; the
image's real size replaces the pkl's ``w``/``h``, which are not always right.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from selfpose.data.datasets.body3d import body3d_files, read_body3d_npz
from selfpose.data.datasets.config import PrepareConfig, PrepareError
from selfpose.data.datasets.files import check_found, find_image
from selfpose.data.datasets.framing import joint_boxes
from selfpose.data.datasets.image_sequences import ImageSample, write_image_sequences
from selfpose.data.datasets.safe_read import read_pickle
from selfpose.geometry.camera import Camera

#: Human3.6M's video frame rate.
H36M_FPS = 50.0

# S1_Directions_1.54138969_000001.jpg → subject, action[_subaction], camera id, frame
_NAME = re.compile(r"^(S\d+)_(.+)\.(\d+)_(\d+)\.\w+$")


def parse_image_name(name: str) -> tuple[str, str, str, int]:
    """``(subject, action take, camera id, frame number)`` from an mmpose Human3.6M image name."""
    m = _NAME.match(Path(name).name)
    if m is None:
        raise PrepareError(f"image name {name!r} does not look like Human3.6M's "
                           "'S1_Directions_1.54138969_000001.jpg' (subject_action.camera_frame)")
    return m.group(1), m.group(2), m.group(3), int(m.group(4))


def _find_cameras(root: Path) -> Path:
    for cand in (root / "cameras.pkl", root / "annotations" / "cameras.pkl"):
        if cand.is_file():
            return cand
    raise PrepareError(f"Human3.6M cameras not found: expected {root / 'cameras.pkl'} "
                       f"or {root / 'annotations' / 'cameras.pkl'} (mmpose's cameras.pkl)")


def prepare_h36m(source: Path, writer, cfg: PrepareConfig, progress: bool | None = None) -> dict[str, Any]:
    """Write Human3.6M sequences from ``source`` into ``writer``; returns facts for the dataset attrs."""
    root, files = body3d_files(source, "Human3.6M")
    cam_path = _find_cameras(root)
    cameras = read_pickle(cam_path, error=PrepareError)
    if not isinstance(cameras, dict):
        raise PrepareError(f"{cam_path} must hold a dict keyed by (subject, camera id)")
    cam_cache: dict[tuple[str, str], Camera] = {}
    samples: list[ImageSample] = []
    skipped: list[str] = []
    for f in files:
        d = read_body3d_npz(f)
        boxes = joint_boxes(d["part"])  # tight person boxes (the file's center/scale are padded crop squares)
        for i, name in enumerate(d["imgname"]):
            subject, take, cam_id, frame = parse_image_name(name)
            if cfg.subjects and subject not in cfg.subjects:
                continue
            key = (subject, cam_id)
            if key not in cam_cache:
                if key not in cameras:
                    raise PrepareError(f"{cam_path} has no camera {key} (needed by {name})")
                cam_cache[key] = Camera.from_h36m(cameras[key])
            image = find_image(root, name)
            if image is None:
                skipped.append(name)
                continue
            samples.append(ImageSample(
                image=image, subject=subject, action=re.sub(r"_\d+$", "", take), take=f"{subject}_{take}",
                view=cam_id, frame_id=frame, camera=cam_cache[key], box=boxes[i],
                joints2d=d["part"][i, :, :2], joints3d=d["S"][i, :, :3] * 1000.0))
    check_found(samples, skipped, root)
    info = write_image_sequences(writer, samples, cfg, H36M_FPS, progress, "Human3.6M")
    return {**info, "num_skipped_images": len(skipped), "skipped_images": skipped[:50],
            "notes": ["3D: camera frame, mm, from the annotation's S; 2D: annotation's part, moved to the "
                      "stored frame; cameras: cameras.pkl with distortion"]}
