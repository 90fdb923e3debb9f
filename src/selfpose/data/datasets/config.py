"""The prepare stage's config, its error and warning types.

:class:`PrepareConfig` is the ``prepare`` section of a config file; every
preparer raises :class:`PrepareError` (a user error: one line, exit 2) and
reports what it skipped or guessed with :func:`warn` (a :class:`PrepareWarning`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

from selfpose.config import ConfigError
from selfpose.errors import SelfposeError


class PrepareError(SelfposeError, RuntimeError):
    """A source dataset is missing, malformed or inconsistent."""


class PrepareWarning(UserWarning):
    """Something was skipped or guessed while preparing a dataset."""


@dataclass
class PrepareConfig:
    """How ``selfpose prepare`` converts a source dataset.

    Attributes:
        size: stored frames are ``size × size`` pixels (see ``crop``); 0 keeps
            the source resolution (no resize, no padding). 128 matches the
            synthetic CPU profile.
        crop: ``"full"`` (letterboxed whole frame) or ``"person"`` (square
            around the sequence's person boxes); image datasets only — videos
            are always ``"full"``.
        crop_scale: the ``"person"`` square's side is this times the largest
            side of the union of the sequence's person boxes (which are tight).
        step: keep every ``step``-th frame (videos: decoded frame;
            image datasets: annotated image of a sequence). The stored fps is
            divided accordingly.
        max_frames: keep at most this many frames per sequence (0 = all).
        subjects: only these subjects (empty = all), e.g. ``["S1", "S5"]``.
        keypoints: folder of 2D keypoint files for ``videos`` (``<video stem>.npz``
            or ``.json``); empty = look next to each video only.
        background: background estimator run on each stored sequence
            (``selfpose.data.backgrounds``): ``auto``, ``median``, ``dive``,
            ``pan`` or ``none``.
        background_min_frames: sequences with fewer frames get no background
            (a median of a few frames still contains the person).
        smpl_model: path to an SMPL model file (``.npz`` or chumpy-free
            ``.pkl``) for exact 3DPW joints; empty = approximate joints.
        calib_max_px: HumanEva cameras are estimated from its 2D/3D pairs and
            used only if their worst reprojection error is below this (pixels).
        chunk: frames decoded/written per chunk (memory bound while streaming).
        calibration: ``multiview`` only: the cameras' calibration (a Qualisys
            ``.qca.txt`` or OpenCV/Pose2Sim ``.toml``); empty = the one such file
            in the source folder.
        cameras: ``mocap`` only: a Human3.6M ``cameras.pkl`` whose cameras of
            each motion subject view it; empty = seeded synthetic cameras.
        rig: ``mocap`` without ``cameras`` only: ``varied`` (default) — per take
            ``rig_views`` cameras that each draw an image shape (landscape,
            portrait, 4:3, square), a field of view of 40–75° along the longer
            side, a height of 0.5–2.5 m, a distance that fills 30–85% of the frame
            height and a small roll (what people's own footage looks like; the
            lifter for real video trains on it); ``ring`` — four 1000×1000 cameras
            in a ring at 1.3–1.7 m, 45–65° vertical field of view (a lab).
        rig_views: cameras per take of the ``varied`` rig.
        joints: ``mocap`` only: ``h36m`` (default) — the motion's joints as they
            are; ``detector`` — moved to where MediaPipe Pose puts the same-named
            house joints (:func:`selfpose.geometry.joint_definitions.to_detector_joints`,
            from each take's own proportions to MediaPipe's: the pelvis at the
            hips' midpoint, the thorax at the shoulders', MediaPipe's shoulder
            width, the nose and the ears' midpoint for neck/nose and head), so
            that a lifter for detector input is trained and scored in the
            detector's joints.
        seed: ``mocap`` only: seeds the synthetic cameras and the bone scaling.
        bone_scale_std: ``mocap`` only: per take, each bone group (left and
            right together) is scaled by ``1 + bone_scale_std·N(0, 1)`` (clipped
            to ±3 std) before projection; 0 = off.
        motion_fps: ``mocap`` only: the motion's frame rate when no sibling
            ``.json`` gives one (0 = require the ``.json``).
    """

    size: int = 128
    crop: Literal["full", "person"] = "full"
    crop_scale: float = 1.25
    step: int = 1
    max_frames: int = 0
    subjects: tuple[str, ...] = ()
    keypoints: str = ""
    background: Literal["auto", "median", "dive", "pan", "none"] = "auto"
    background_min_frames: int = 8
    smpl_model: str = ""
    calib_max_px: float = 2.0
    chunk: int = 64
    cameras: str = ""
    calibration: str = ""
    rig: Literal["varied", "ring"] = "varied"
    rig_views: int = 4
    joints: Literal["h36m", "detector"] = "h36m"
    seed: int = 0
    bone_scale_std: float = 0.0
    motion_fps: float = 0.0

    def __post_init__(self) -> None:
        if self.size < 0 or 0 < self.size < 16:
            raise ConfigError(f"prepare.size must be 0 (source resolution) or >= 16 pixels, got {self.size}")
        if self.step < 1:
            raise ConfigError(f"prepare.step must be >= 1, got {self.step}")
        if self.max_frames < 0:
            raise ConfigError(f"prepare.max_frames must be >= 0 (0 = all), got {self.max_frames}")
        if self.crop_scale <= 0:
            raise ConfigError(f"prepare.crop_scale must be > 0, got {self.crop_scale}")
        if self.chunk < 1:
            raise ConfigError(f"prepare.chunk must be >= 1, got {self.chunk}")
        if not 0 <= self.bone_scale_std <= 0.25:
            raise ConfigError(f"prepare.bone_scale_std must be in [0, 0.25] (0 = off), got {self.bone_scale_std}")
        if self.rig_views < 1:
            raise ConfigError(f"prepare.rig_views must be >= 1, got {self.rig_views}")
        if self.motion_fps < 0:
            raise ConfigError(f"prepare.motion_fps must be >= 0 (0 = from the motion's .json), got {self.motion_fps}")
        self.subjects = tuple(self.subjects)


def warn(msg: str) -> None:
    warnings.warn(msg, PrepareWarning, stacklevel=2)
