"""A take of human motion (:class:`Motion`) and what every motion source shares.

A :class:`Motion` is one take of one body: ``joints`` ``(T, 17, 3)`` in
millimetres, world frame, z up, floor at ``z = 0``, Human3.6M-17 order.

Two sources make them:

* **Mocap files** (:mod:`~selfpose.data.synthetic.mocap`): any ``.npz`` of
  named ``(T, 17, 3)`` arrays, including the CMU motion shipped with the package.
* **Procedural motion** (:mod:`~selfpose.data.synthetic.procedural`): walk,
  run, jump, wave, squat and dive, by forward kinematics
  (:mod:`~selfpose.data.synthetic.kinematics`) of seeded joint angles.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from selfpose.errors import SelfposeError

GRAVITY_MM_S2 = 9810.0
"""Standard gravity, mm/s²."""


class MotionError(SelfposeError, ValueError):
    """A motion file, key or array is unusable; the message says what to fix."""


@dataclass(frozen=True)
class Motion:
    """One take of one body.

    Attributes:
        name: unique name within its source (the npz key, e.g. ``"S1/walking_1"``).
        subject: the recorded person (``"S1"``), or ``""`` when the source has
            no subjects (CMU splits, procedural motion).
        action: what they do (``"walking"``).
        fps: frames per second of ``joints``.
        joints: ``(T, 17, 3)`` float32, mm, world frame, z up, floor at z = 0,
            Human3.6M-17 order.
        source: where it came from (a file path, ``"shipped:<name>"`` or ``"procedural"``).
    """

    name: str
    subject: str
    action: str
    fps: float
    joints: np.ndarray
    source: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def duration_s(self) -> float:
        """Time from the first to the last frame, seconds."""
        return (self.num_frames - 1) / self.fps

    def resampled(self, fps: float) -> "Motion":
        """The same motion at ``fps`` frames per second (linear interpolation in time)."""
        if fps == self.fps:
            return self
        return replace(self, fps=float(fps), joints=resample(self.joints, self.fps, fps))

    def cropped(self, max_seconds: float | None) -> "Motion":
        """The first ``max_seconds`` of the motion (all of it when ``None``)."""
        if max_seconds is None:
            return self
        n = frames_in(max_seconds, self.fps)
        return self if n >= self.num_frames else replace(self, joints=self.joints[:n])


def resample(joints: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Resample ``(T, ...)`` samples taken at ``src_fps`` to ``dst_fps`` (linear in time).

    The output covers the same time span from the first sample: frame ``i``
    is at ``i / dst_fps`` seconds, up to the last input sample.
    """
    if src_fps <= 0 or dst_fps <= 0:
        raise MotionError(f"frame rates must be positive, got {src_fps} → {dst_fps}")
    joints = np.asarray(joints)
    T = joints.shape[0]
    n = int(np.floor((T - 1) * dst_fps / src_fps + 1e-6)) + 1
    pos = np.arange(n) * (src_fps / dst_fps)
    i0 = np.minimum(np.floor(pos).astype(np.int64), T - 1)
    i1 = np.minimum(i0 + 1, T - 1)
    w = (pos - i0).reshape((n,) + (1,) * (joints.ndim - 1))
    out = joints[i0] * (1 - w) + joints[i1] * w
    return out.astype(joints.dtype, copy=False)


def frames_in(seconds: float, fps: float) -> int:
    """Frames from time 0 to ``seconds`` inclusive at ``fps`` (what :meth:`Motion.cropped` keeps)."""
    return int(np.floor(seconds * fps + 1e-6)) + 1


def resampled_length(num_frames: int, src_fps: float, dst_fps: float, max_seconds: float | None = None) -> int:
    """Frames of a ``num_frames`` motion after :func:`resample` to ``dst_fps`` and :meth:`Motion.cropped`."""
    n = int(np.floor((num_frames - 1) * dst_fps / src_fps + 1e-6)) + 1
    if max_seconds is not None:
        n = min(n, frames_in(max_seconds, dst_fps))
    return n


def implausibility(motion: Motion) -> str | None:
    """Why ``motion`` cannot be a person standing on a z-up floor, or None when it can.

    Catches mocap takes stored upside down or far below the floor (one
    Human3.6M take of the motion-prediction release is both).
    """
    j = motion.joints
    if np.median(j[:, 10, 2] - j[:, 0, 2]) < 0:
        return "upside down (head below pelvis in most frames)"
    if np.median(j[..., 2].min(axis=1)) < -300:
        return "below the floor (z < -300 mm in most frames)"
    return None
