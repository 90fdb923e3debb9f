"""Human3.6M's joints → where MediaPipe Pose puts the same-named house joints.

The house skeleton's joints mean different points to different sources. From
MediaPipe's 33 landmarks, :func:`selfpose.geometry.skeleton.to_h36m` makes the
thorax the shoulders' midpoint, the neck/nose the nose and the head the ears'
midpoint; MediaPipe's shoulder landmarks sit on the outside of the shoulders.
Human3.6M's mocap joints are joint centres: its thorax is lower (at the
sternum), its shoulders narrower, its neck/nose joint close to the neck.

:func:`h36m_to_detector` moves Human3.6M joints to the detector's definitions,
so that a lifter can be trained on 2D and 3D in the detector's own joints
(``prepare mocap ... joints=detector``): the 2D it is fed at prediction and the
3D it is scored against (a triangulation of the detector's 2D) then mean the
same points. Per frame, in the body's own directions:

* the thorax moves along the pelvis → thorax line to :data:`PELVIS_THORAX` times
  its distance from the pelvis;
* the shoulders spread about their midpoint by :data:`SHOULDER_WIDTH`, and
  their midpoint moves onto the new thorax (MediaPipe's thorax *is* that midpoint);
* the neck/nose and the head move with the thorax and stretch from it by
  :data:`THORAX_NOSE` and :data:`THORAX_HEAD`;
* the spine is the mean of hips and shoulders (as ``to_h36m`` makes it);
  pelvis, hips, knees, ankles, elbows and wrists stay.

The ratios are MediaPipe's world landmarks measured against the Human3.6M
motion's skeleton, each as a fraction of the leg (thigh + shin), median over
the three real clips in ``../shared/data/videos`` (not the Pose2Sim views the
lifters are scored on; ``python benchmarks/joint_definitions_probe.py K``,
2026-12-03): shoulder width 0.438 against 0.317 of the leg, pelvis–thorax
0.628 against 0.545, thorax–nose 0.301 against 0.135, thorax–head 0.239
against 0.210; the hip width agreed (0.307 against 0.296) and is left alone.
"""

from __future__ import annotations

import numpy as np

#: Stretch factors (MediaPipe / Human3.6M, each relative to the leg length), see the module docstring.
SHOULDER_WIDTH = 0.438 / 0.317
PELVIS_THORAX = 0.628 / 0.545
THORAX_NOSE = 0.301 / 0.135
THORAX_HEAD = 0.239 / 0.210

_PELVIS, _R_HIP, _L_HIP, _SPINE, _THORAX, _NOSE, _HEAD, _L_SHOULDER, _R_SHOULDER = 0, 1, 4, 7, 8, 9, 10, 11, 14


def h36m_to_detector(joints: np.ndarray) -> np.ndarray:
    """``(..., 17, 3)`` Human3.6M joints (any unit, any frame) → the same in MediaPipe's definitions."""
    J = np.asarray(joints, dtype=np.float64)
    if J.shape[-2:] != (17, 3):
        raise ValueError(f"joints must be (..., 17, 3), got {J.shape}")
    out = J.copy()
    pelvis, thorax = J[..., _PELVIS, :], J[..., _THORAX, :]
    new_thorax = pelvis + PELVIS_THORAX * (thorax - pelvis)
    mid = (J[..., _L_SHOULDER, :] + J[..., _R_SHOULDER, :]) / 2
    for s in (_L_SHOULDER, _R_SHOULDER):   # spread about their midpoint, the midpoint moved onto the new thorax
        out[..., s, :] = new_thorax + SHOULDER_WIDTH * (J[..., s, :] - mid)
    out[..., _THORAX, :] = (out[..., _L_SHOULDER, :] + out[..., _R_SHOULDER, :]) / 2
    out[..., _NOSE, :] = out[..., _THORAX, :] + THORAX_NOSE * (J[..., _NOSE, :] - thorax)
    out[..., _HEAD, :] = out[..., _THORAX, :] + THORAX_HEAD * (J[..., _HEAD, :] - thorax)
    out[..., _SPINE, :] = (J[..., _R_HIP, :] + J[..., _L_HIP, :] + out[..., _L_SHOULDER, :]
                           + out[..., _R_SHOULDER, :]) / 4
    return out
