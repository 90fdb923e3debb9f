"""A mocap skeleton's joints → where MediaPipe Pose puts the same-named house joints.

The house skeleton's joints mean different points to different sources. From
MediaPipe's 33 landmarks, :func:`selfpose.geometry.skeleton.to_h36m` makes the
pelvis the hips' midpoint, the thorax the shoulders' midpoint, the neck/nose
the nose and the head the ears' midpoint; MediaPipe's shoulder landmarks sit on
the outside of the shoulders. Mocap joints are joint centres, each skeleton its
own: Human3.6M's thorax is lower (at the sternum), its shoulders narrower, its
neck/nose joint close to the neck; the shipped CMU motion's approximate house
joints have a much shorter torso (hips' midpoint to thorax 0.40 of the leg
against MediaPipe's 0.63), wide shoulders and a root 11 cm from the hips'
midpoint.

:func:`to_detector_joints` moves a skeleton's joints to the detector's
definitions, so that a lifter can be trained on 2D and 3D in the detector's own
joints (``prepare mocap ... joints=detector``): the 2D it is fed at prediction
and the 3D it is scored against (a triangulation of the detector's 2D) then
mean the same points. It measures the skeleton's own proportions
(:func:`proportions`, medians over the frames given: one take) and, per frame,
in the body's own directions:

* the pelvis becomes the hips' midpoint;
* the thorax moves along the pelvis → thorax line to MediaPipe's distance;
* the shoulders spread about their midpoint to MediaPipe's width, and their
  midpoint moves onto the new thorax (MediaPipe's thorax *is* that midpoint);
* the neck/nose and the head move with the thorax and stretch from it to
  MediaPipe's distances;
* the spine is the mean of hips and shoulders (as ``to_h36m`` makes it);
  hips, knees, ankles, elbows and wrists stay.

MediaPipe's proportions (:data:`DETECTOR_PROPORTIONS`) are its world landmarks,
each segment as a fraction of the leg (thigh + shin), median over the three
real clips in ``../shared/data/videos`` (not the Pose2Sim views the lifters are
scored on; ``python benchmarks/joint_definitions_probe.py K``, 2026-12-03). The
hip width agreed with Human3.6M's (0.307 against 0.296) and is left alone.
"""

from __future__ import annotations

import numpy as np

#: MediaPipe's segment lengths as fractions of the leg (right thigh + shin), see the module docstring.
DETECTOR_PROPORTIONS = {"shoulder_width": 0.438, "pelvis_thorax": 0.628, "thorax_nose": 0.301, "thorax_head": 0.239}

_PELVIS, _R_HIP, _R_KNEE, _R_ANKLE, _L_HIP = 0, 1, 2, 3, 4
_SPINE, _THORAX, _NOSE, _HEAD, _L_SHOULDER, _R_SHOULDER = 7, 8, 9, 10, 11, 14


def _check(joints) -> np.ndarray:
    J = np.asarray(joints, dtype=np.float64)
    if J.ndim < 2 or J.shape[-2:] != (17, 3):
        raise ValueError(f"joints must be (..., 17, 3), got {J.shape}")
    return J


def proportions(joints) -> dict[str, float]:
    """The keys of :data:`DETECTOR_PROPORTIONS` for one take's ``(T, 17, 3)`` (or one ``(17, 3)``) house joints, any
    unit: medians over the frames (frames with missing joints left out), each as a fraction of the leg (median right
    thigh + median right shin), the pelvis taken as the hips' midpoint."""
    J = _check(joints)
    if J.ndim > 3:
        raise ValueError(f"give one take's joints, (T, 17, 3), got {J.shape}: takes may differ in proportions")
    J = J.reshape(-1, 17, 3)
    if not np.isfinite(J).any():
        raise ValueError("the joints hold no finite value")
    d = lambda a, b: np.linalg.norm(a - b, axis=-1)  # noqa: E731
    leg = float(np.nanmedian(d(J[:, _R_HIP], J[:, _R_KNEE])) + np.nanmedian(d(J[:, _R_KNEE], J[:, _R_ANKLE])))
    if not leg > 0:
        raise ValueError("the skeleton has no leg length (right hip, knee and ankle coincide)")
    hips = (J[:, _R_HIP] + J[:, _L_HIP]) / 2
    seg = {"shoulder_width": d(J[:, _L_SHOULDER], J[:, _R_SHOULDER]), "pelvis_thorax": d(J[:, _THORAX], hips),
           "thorax_nose": d(J[:, _NOSE], J[:, _THORAX]), "thorax_head": d(J[:, _HEAD], J[:, _THORAX])}
    return {k: float(np.nanmedian(v)) / leg for k, v in seg.items()}


def to_detector_joints(joints, source: dict[str, float] | None = None) -> np.ndarray:
    """``(..., 17, 3)`` house joints of a mocap skeleton (any unit, any frame) → the same in MediaPipe's definitions.

    ``source``: the skeleton's :func:`proportions` (None: measured on ``joints``, which must then be one take,
    ``(T, 17, 3)``; give it to map several takes of one skeleton, stacked, at once).
    """
    J = _check(joints)
    src = proportions(J) if source is None else source
    for k, v in src.items():
        if not v > 0:
            raise ValueError(f"the skeleton's {k.replace('_', ' ')} is {v}; its joints coincide")
    k = {name: DETECTOR_PROPORTIONS[name] / src[name] for name in DETECTOR_PROPORTIONS}
    out = J.copy()
    pelvis = (J[..., _R_HIP, :] + J[..., _L_HIP, :]) / 2
    thorax = J[..., _THORAX, :]
    new_thorax = pelvis + k["pelvis_thorax"] * (thorax - pelvis)
    mid = (J[..., _L_SHOULDER, :] + J[..., _R_SHOULDER, :]) / 2
    for s in (_L_SHOULDER, _R_SHOULDER):   # spread about their midpoint, the midpoint moved onto the new thorax
        out[..., s, :] = new_thorax + k["shoulder_width"] * (J[..., s, :] - mid)
    out[..., _PELVIS, :] = pelvis
    out[..., _THORAX, :] = (out[..., _L_SHOULDER, :] + out[..., _R_SHOULDER, :]) / 2
    out[..., _NOSE, :] = out[..., _THORAX, :] + k["thorax_nose"] * (J[..., _NOSE, :] - thorax)
    out[..., _HEAD, :] = out[..., _THORAX, :] + k["thorax_head"] * (J[..., _HEAD, :] - thorax)
    out[..., _SPINE, :] = (J[..., _R_HIP, :] + J[..., _L_HIP, :] + out[..., _L_SHOULDER, :]
                           + out[..., _R_SHOULDER, :]) / 4
    return out
