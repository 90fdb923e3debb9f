"""Motion capture → a keypoint dataset (no frames): each take seen through four cameras.

Source: an ``.npz`` of named ``(T, 17, 3)`` mm motions, z up, floor at z = 0
(:class:`~selfpose.data.synthetic.mocap.MotionFile`: the Human3.6M motion in
``../shared/data/mocap``, the shipped CMU motion, any file of that layout).

Cameras (``PrepareConfig.cameras``):

- a Human3.6M ``cameras.pkl`` (``{(subject, camera id): R, T, f, c, k, p, w, h}``,
  ``X_cam = Rᵀ(X_world − T)``, T in metres): each take is viewed by its
  subject's own cameras (Human3.6M: four, 1000×1002 or 1000×1000 px, with
  distortion). A motion subject the file lacks is an error.
- none: seeded synthetic cameras per take, no distortion, each looking at the
  motion's centre from a distance that keeps the whole take in frame (the
  synthetic ``lab`` scenario's framing). ``rig=varied`` (default, for lifters
  meant for people's own footage; :func:`varied_rig`): ``rig_views`` cameras
  that each draw an image shape (landscape, portrait, 4:3, square), field of
  view, height, distance and roll. ``rig=ring``: four 1000×1000 cameras in a
  ring at human height (1.3–1.7 m, equally spaced in azimuth ±10°, 45–65°
  vertical field of view), a lab.

Per take and camera one sequence: ``joints3d`` (camera frame, mm),
``joints2d`` (px, the distorted projection of the stored float32
``joints3d``), ``joints2d_conf`` (1: exact), ``joints2d_outside`` (the joint
projects outside the ``[-0.5, W-0.5] × [-0.5, H-0.5]`` image: kept, flagged;
its count is also ``attrs["num_joints2d_outside"]``) and ``frame_ids``. Views
of a take share its take id (``S1__walking_1``) and frame ids.

Bone-length augmentation (``bone_scale_std`` > 0): per take (so its views see
one body), bone groups are scaled along the kinematic tree before projection
(:mod:`selfpose.geometry.bone_scaling`); the pelvis trajectory is kept. The
factors are in ``attrs["bone_scales"]``.

Randomness: each take draws from generators seeded by ``(seed, purpose, key)``:
the same config gives identical arrays whatever subjects are selected.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

from selfpose.data.datasets.config import PrepareConfig, PrepareError
from selfpose.data.datasets.framing import keep_indices
from selfpose.data.sequence import outside_image
from selfpose.geometry.camera import Camera

#: Synthetic rig: views, image size (px), camera heights (mm), vertical field of view (deg).
SYNTH_VIEWS, SYNTH_SIZE = 4, 1000
SYNTH_HEIGHT_MM, SYNTH_FOV_DEG, SYNTH_FILL = (1300.0, 1700.0), (45.0, 65.0), (0.35, 0.5)
#: A joint nearer than this to a camera's image plane makes its projection meaningless.
MIN_DEPTH_MM = 100.0


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends on ``seed`` and the (stable-hashed) ``names`` only."""
    words = [int(seed) % 2**63] + [zlib.crc32(str(n).encode()) for n in names]
    return np.random.default_rng(np.random.SeedSequence(words))


def read_h36m_cameras(path: Path) -> dict[str, dict[str, Camera]]:
    """``{subject: {camera id: Camera}}`` from a Human3.6M ``cameras.pkl``."""
    from selfpose.data.datasets.safe_read import read_pickle

    raw = read_pickle(path, error=PrepareError)
    if not isinstance(raw, dict) or not raw:
        raise PrepareError(f"{path} must hold a dict keyed by (subject, camera id), like Human3.6M's cameras.pkl")
    out: dict[str, dict[str, Camera]] = {}
    for key, entry in raw.items():
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(entry, dict)):
            raise PrepareError(f"{path}: entry {key!r} is not (subject, camera id) → {{R, T, f, c, k, p, w, h}}")
        try:
            cam = Camera.from_h36m(entry)
        except (KeyError, ValueError, TypeError) as e:
            raise PrepareError(f"{path}: camera {key!r} is incomplete or malformed ({type(e).__name__}: {e}); "
                               "each needs R, T, f, c, w, h (k, p optional)") from e
        out.setdefault(str(key[0]), {})[str(key[1])] = cam
    return out


def synthetic_rig(rng: np.random.Generator, joints_world: np.ndarray) -> dict[str, Camera]:
    """Four static cameras in a ring at human height around ``(T, 17, 3)`` world mm (z up) joints.

    Each looks at the motion's centre from the nearest distance that keeps every
    frame in the image (see :func:`~selfpose.data.synthetic.scenarios.frame_static_camera`).
    """
    from selfpose.data.synthetic.scenarios import frame_static_camera, motion_centre

    base = rng.uniform(0, 2 * np.pi)
    az = base + 2 * np.pi * np.arange(SYNTH_VIEWS) / SYNTH_VIEWS + np.radians(rng.uniform(-10, 10, SYNTH_VIEWS))
    heights = rng.uniform(*SYNTH_HEIGHT_MM, SYNTH_VIEWS)
    fovs = rng.uniform(*SYNTH_FOV_DEG, SYNTH_VIEWS)
    fill = float(rng.uniform(*SYNTH_FILL))
    # Standing height: head above the lowest ankle, taken high in the take (people stand most of the time).
    stature = float(np.percentile(joints_world[:, 10, 2] - joints_world[:, [3, 6], 2].min(axis=1), 90)) + 170.0
    target = motion_centre(joints_world)
    cams = {}
    for k in range(SYNTH_VIEWS):
        intr = Camera.from_fov(SYNTH_SIZE, SYNTH_SIZE, float(fovs[k]))
        cams[f"cam{k}"] = frame_static_camera(joints_world, intr, float(az[k]), float(heights[k]), target, fill,
                                              max(stature, 1000.0))
    return cams


#: The ``varied`` rig: image shapes (w, h) a phone, a webcam or a camcorder films in — landscape, portrait, 4:3,
#: square; horizontal-or-vertical field of view along the image's longer side (deg); camera heights (mm, a low
#: tripod to a high wall mount); the share of the frame height a standing person fills (near to far); roll (deg).
VARIED_SHAPES = ((1920, 1080), (1080, 1920), (1280, 720), (720, 1280), (1280, 960), (960, 1280), (1000, 1000))
VARIED_FOV_DEG, VARIED_HEIGHT_MM, VARIED_FILL, VARIED_ROLL_DEG = (40.0, 75.0), (500.0, 2500.0), (0.3, 0.85), 4.0


def varied_rig(rng: np.random.Generator, joints_world: np.ndarray, views: int) -> dict[str, Camera]:
    """``views`` static cameras placed independently around ``(T, 17, 3)`` world mm (z up) joints.

    For lifters meant for people's own footage: each camera draws its own image
    shape (:data:`VARIED_SHAPES`), field of view, height, distance (through the
    fill of the frame) and a small roll, from any direction; each keeps the whole
    motion in its image (:func:`~selfpose.data.synthetic.scenarios.frame_static_camera`).
    """
    from selfpose.data.synthetic.scenarios import ScenarioError, frame_static_camera, motion_centre

    stature = float(np.percentile(joints_world[:, 10, 2] - joints_world[:, [3, 6], 2].min(axis=1), 90)) + 170.0
    target = motion_centre(joints_world)
    az = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(views) / views + rng.uniform(-0.5, 0.5, views) * np.pi / views
    cams = {}
    for k in range(views):
        w, h = VARIED_SHAPES[int(rng.integers(len(VARIED_SHAPES)))]
        f = 0.5 * max(w, h) / np.tan(np.radians(rng.uniform(*VARIED_FOV_DEG)) / 2)
        intr = Camera(f, f, w / 2, h / 2, w, h)
        height, fill = float(rng.uniform(*VARIED_HEIGHT_MM)), float(rng.uniform(*VARIED_FILL))
        roll = float(np.radians(rng.uniform(-VARIED_ROLL_DEG, VARIED_ROLL_DEG)))
        try:
            cam = frame_static_camera(joints_world, intr, float(az[k]), height, target, fill, max(stature, 1000.0),
                                      roll_rad=roll, max_fill=max(fill, 0.9))
        except ScenarioError:  # a very low or high camera that cannot frame this motion: a lab height instead
            cam = frame_static_camera(joints_world, intr, float(az[k]), 1500.0, target, fill, max(stature, 1000.0))
        cams[f"cam{k}"] = cam
    return cams


def prepare_mocap(source: Path, writer, cfg: PrepareConfig, progress: bool | None = None) -> dict[str, Any]:
    """Write one sequence per (take, camera) of the motion file ``source``; returns facts for the dataset attrs."""
    from selfpose.data.sequence import SequenceMeta, safe_id
    from selfpose.data.synthetic.mocap import MotionFile, parse_key
    from selfpose.geometry.bone_scaling import joint_scales, random_bone_scales, scale_bones
    from selfpose.utils.progress import track

    if not source.is_file():
        raise PrepareError(f"{source} is not a file; pass an .npz of (T, 17, 3) mm motions")
    cameras = read_h36m_cameras(Path(cfg.cameras)) if cfg.cameras else None
    with MotionFile(source, fps=cfg.motion_fps or None) as mf:
        keys = mf.select(cfg.subjects)
        for k in keys:  # shapes from the headers: a wrong file fails before any work
            mf.num_frames(k)

        def subject_of(key: str) -> str:
            return parse_key(key)[0] or (key.split("/")[0] if "/" in key else "mocap")

        if cameras is not None:
            missing = sorted({subject_of(k) for k in keys} - set(cameras))
            if missing:
                raise PrepareError(f"{cfg.cameras} has no cameras for subject(s) {', '.join(missing)} of {source} "
                                   f"(it has {', '.join(sorted(cameras))}); select others with --subjects")
        n_seq = n_frames = n_joints = n_out = 0
        for key in track(keys, "mocap", enabled=progress):
            motion = mf.load(key)  # validated: (T, 17, 3), finite
            subject = subject_of(key)
            idx = keep_indices(motion.num_frames, cfg.step, cfg.max_frames)
            world = motion.joints[idx].astype(np.float64)
            attrs: dict[str, Any] = {"has_frames": False, "motion": key, "motion_source": mf.source,
                                     "source_fps": motion.fps, "joints3d_frame": "camera"}
            if cfg.joints == "detector":
                from selfpose.geometry.joint_definitions import to_detector_joints

                world = to_detector_joints(world)   # by this take's own proportions
                attrs["joints"] = "detector (MediaPipe's definitions)"
            if cfg.bone_scale_std > 0:
                factors = random_bone_scales(rng_for(cfg.seed, "bones", key), cfg.bone_scale_std)
                world = scale_bones(world, joint_scales(factors))
                attrs["bone_scales"] = factors
            if cameras is not None:
                views, attrs["camera_source"] = cameras[subject], "h36m cameras.pkl"
            elif cfg.rig == "ring":
                views, attrs["camera_source"] = synthetic_rig(rng_for(cfg.seed, "rig", key), world), "synthetic ring"
            else:
                views = varied_rig(rng_for(cfg.seed, "varied", key), world, cfg.rig_views)
                attrs["camera_source"] = "synthetic varied"
            take = safe_id(*key.split("/"))
            for view, cam in sorted(views.items()):
                # Project the stored float32 3D so that 3D and 2D agree to float32 rounding.
                j3 = cam.world_to_camera(world).astype(np.float32)
                depth = j3[..., 2]
                if depth.min() < MIN_DEPTH_MM:
                    f = int(np.argmin(depth.min(axis=1)))
                    raise PrepareError(f"motion {key!r} passes within {MIN_DEPTH_MM:g} mm of camera {view}'s image "
                                       f"plane (or behind it) at frame {int(idx[f])}; its projection is meaningless "
                                       "— leave this motion or subject out (--subjects)")
                j2 = cam.project(j3.astype(np.float64)).astype(np.float32)
                out = outside_image(j2, cam.width, cam.height)  # of the stored values, as info --check sees them
                meta = SequenceMeta(safe_id(take, view), subject, motion.action, take, view, motion.fps / cfg.step,
                                    len(idx), cam.height, cam.width, cam, scenario="static",
                                    attrs={**attrs, "num_joints2d_outside": int(out.sum())})
                writer.write_sequence(meta, frame_ids=idx.astype(np.int64), joints3d=j3,
                                      joints2d=j2,
                                      joints2d_conf=np.ones(out.shape, np.float32), joints2d_outside=out)
                n_seq, n_frames = n_seq + 1, n_frames + len(idx)
                n_joints, n_out = n_joints + out.size, n_out + int(out.sum())
    return {"num_sequences": n_seq, "num_takes": len(keys), "num_frames": n_frames, "has_frames": False,
            "cameras": cfg.cameras or f"synthetic {cfg.rig}", "motion_fps": mf.fps,
            "num_joints2d_outside": n_out, "joints2d_outside_share": n_out / max(n_joints, 1),
            "bone_scale_std": cfg.bone_scale_std, "joints": cfg.joints,
            "notes": ["no frames: 2D/3D pairs projected from motion capture (joints2d with the camera's distortion)",
                      "joints projecting outside the image are kept and flagged in joints2d_outside",
                      ("placements differ from any original capture: the mocap's heading and start position "
                       "are its own, and a file made on one skeleton has one body for every subject")]}
