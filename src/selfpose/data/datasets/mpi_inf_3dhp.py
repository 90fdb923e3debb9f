"""MPI-INF-3DHP (mmpose ``body3d`` annotation format) → the house store.

Source folder layout (mmpose's preprocessing, ``tools/dataset_converters/preprocess_mpi_inf_3dhp.py``)::

    SOURCE/*.npz or SOURCE/annotations/*.npz   imgname, center, scale, part, S (17 joints)
    SOURCE/cameras_train.pkl, cameras_test.pkl (or under annotations/)
    SOURCE/<imgname> or SOURCE/images/<imgname>   S4_Seq2_Cam0_001033.jpg, TS1_002001.jpg

Joints are in MPI-INF-3DHP's 17-joint order (:data:`~selfpose.geometry.skeleton.MPI_INF_3DHP17`:
head_top, neck, right arm, left arm, right leg, left leg, pelvis, spine,
head), converted to the house order; ``S`` is camera-frame metres.

Cameras. Training cameras (``"S1_Seq1_Cam0"``) hold the calibration's
world→camera extrinsics ``X_cam = R X_world + T`` (T in metres) — note: *not*
Human3.6M's inverse form — and intrinsics without distortion; their stored
``h`` is wrong (204), so the image's real size is used. Test cameras
(``"TS1"``…``"TS6"``) are intrinsics estimated by mmpose from the 2D/3D pairs;
their world frame is the camera frame.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from selfpose.data.datasets.body3d import body3d_files, read_body3d_npz
from selfpose.data.datasets.config import PrepareConfig, PrepareError
from selfpose.data.datasets.files import check_found, find_image
from selfpose.data.datasets.framing import joint_boxes
from selfpose.data.datasets.image_sequences import ImageSample, write_image_sequences
from selfpose.data.datasets.safe_read import read_pickle
from selfpose.geometry.camera import Camera
from selfpose.geometry.skeleton import to_h36m

#: Frame rates: training and studio test sequences 25 fps, outdoor test sequences (TS5, TS6) 50 fps.
TRAIN_FPS = 25.0
TEST_FPS = {"TS1": 25.0, "TS2": 25.0, "TS3": 25.0, "TS4": 25.0, "TS5": 50.0, "TS6": 50.0}

_TRAIN = re.compile(r"^(S\d+)_(Seq\d+)_(Cam\d+)_(\d+)\.\w+$")
_TEST = re.compile(r"^(TS\d+)_(\d+)\.\w+$")


def parse_image_name(name: str) -> tuple[str, str, str, int, bool]:
    """``(subject, sequence, camera, frame, is_test)`` from an mmpose MPI-INF-3DHP image name."""
    base = Path(name).name
    m = _TRAIN.match(base)
    if m:
        return m.group(1), m.group(2), m.group(3), int(m.group(4)), False
    m = _TEST.match(base)
    if m:
        return m.group(1), "test", "cam", int(m.group(2)), True
    raise PrepareError(f"image name {name!r} looks like neither 'S4_Seq2_Cam0_001033.jpg' (training) "
                       "nor 'TS1_002001.jpg' (test)")


def _camera(entry: dict, world_known: bool) -> Camera:
    f = np.asarray(entry["f"], np.float64).ravel()
    c = np.asarray(entry["c"], np.float64).ravel()
    # width/height are placeholders here: the image's real size replaces them.
    if world_known:
        return Camera(f[0], f[1], c[0], c[1], 1, 1, R=np.asarray(entry["R"], np.float64),
                      t=np.asarray(entry["T"], np.float64).ravel() * 1000.0)
    return Camera(f[0], f[1], c[0], c[1], 1, 1)


def _find(root: Path, name: str) -> Path | None:
    for cand in (root / name, root / "annotations" / name):
        if cand.is_file():
            return cand
    return None


def prepare_mpi_inf_3dhp(source: Path, writer, cfg: PrepareConfig, progress: bool | None = None) -> dict[str, Any]:
    """Write MPI-INF-3DHP sequences from ``source`` into ``writer``; returns facts for the dataset attrs."""
    root, files = body3d_files(source, "MPI-INF-3DHP")
    cam_files = {False: _find(root, "cameras_train.pkl"), True: _find(root, "cameras_test.pkl")}
    cam_tables: dict[bool, dict] = {}
    samples: list[ImageSample] = []
    skipped: list[str] = []
    for f in files:
        d = read_body3d_npz(f)
        boxes = joint_boxes(d["part"])  # tight person boxes (the file's center/scale are padded crop squares)
        j2d, _ = to_h36m(d["part"][..., :2], "mpi_inf_3dhp17")
        j3d, _ = to_h36m(d["S"][..., :3] * 1000.0, "mpi_inf_3dhp17")
        for i, name in enumerate(d["imgname"]):
            subject, seq, cam_name, frame, test = parse_image_name(name)
            if cfg.subjects and subject not in cfg.subjects:
                continue
            if test not in cam_tables:
                path = cam_files[test]
                if path is None:
                    which = "cameras_test.pkl" if test else "cameras_train.pkl"
                    raise PrepareError(f"{name} needs {which}, which is in neither {root} nor {root / 'annotations'}")
                cam_tables[test] = read_pickle(path, error=PrepareError)
                if not isinstance(cam_tables[test], dict):
                    raise PrepareError(f"{path} must hold a dict of cameras keyed by name, it holds a "
                                       f"{type(cam_tables[test]).__name__}; is this mmpose's camera file?")
            key = subject if test else f"{subject}_{seq}_{cam_name}"
            if key not in cam_tables[test]:
                raise PrepareError(f"{cam_files[test]} has no camera {key!r} (needed by {name})")
            image = find_image(root, name)
            if image is None:
                skipped.append(name)
                continue
            samples.append(ImageSample(
                image=image, subject=subject, action=seq, take=subject if test else f"{subject}_{seq}",
                view=cam_name, frame_id=frame, camera=_camera(cam_tables[test][key], world_known=not test),
                box=boxes[i], joints2d=j2d[i], joints3d=j3d[i], attrs={"split": "test" if test else "train"},
                fps=TEST_FPS.get(subject, 25.0) if test else TRAIN_FPS))
    check_found(samples, skipped, root)
    info = write_image_sequences(writer, samples, cfg, TRAIN_FPS, progress, "MPI-INF-3DHP")
    return {**info, "num_skipped_images": len(skipped), "skipped_images": skipped[:50],
            "notes": ["joints converted from MPI-INF-3DHP-17 to Human3.6M-17; cameras without distortion; "
                      "test cameras have no extrinsics (world frame = camera frame)",
                      "frame rates assumed: 25 fps (training, TS1-TS4), 50 fps (TS5, TS6)"]}
