"""A mocap skeleton moved to the detector's joint definitions: MediaPipe's proportions come out, the limbs stay."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.data.synthetic.mocap import MotionFile
from selfpose.geometry import joint_definitions as jd


def _cmu_take() -> np.ndarray:
    with MotionFile() as mf:   # the shipped CMU motion, in the house joints
        return mf.load(mf.select(())[0]).joints.astype(np.float64)


def test_segments_take_the_detectors_proportions_and_the_limbs_stay():
    J = _cmu_take()
    src = jd.proportions(J)
    assert src["pelvis_thorax"] < 0.45 < jd.DETECTOR_PROPORTIONS["pelvis_thorax"]   # CMU's short approximate torso
    D = jd.to_detector_joints(J)
    got = jd.proportions(D)
    for k, v in jd.DETECTOR_PROPORTIONS.items():
        assert got[k] == pytest.approx(v, rel=1e-9), k
    np.testing.assert_allclose(D[:, 0], (J[:, 1] + J[:, 4]) / 2)   # the pelvis is the hips' midpoint
    np.testing.assert_allclose(D[:, 8], (D[:, 11] + D[:, 14]) / 2)   # the thorax is the shoulders' midpoint
    np.testing.assert_allclose(D[:, 7], D[:, [1, 4, 11, 14]].mean(1))
    k = jd.DETECTOR_PROPORTIONS["thorax_nose"] / src["thorax_nose"]
    np.testing.assert_allclose(D[:, 9] - D[:, 8], k * (J[:, 9] - J[:, 8]))   # the head keeps its direction
    for j in (1, 2, 3, 4, 5, 6, 12, 13, 15, 16):   # hips, legs, elbows and wrists do not move
        np.testing.assert_array_equal(D[:, j], J[:, j])


def test_given_proportions_are_used_and_a_skeleton_already_in_them_stays():
    J = _cmu_take()
    D = jd.to_detector_joints(J)
    np.testing.assert_allclose(jd.to_detector_joints(D), D, atol=1e-9)   # already MediaPipe's: nothing moves
    # one take's proportions applied to its first half: the same as mapping the whole take
    np.testing.assert_allclose(jd.to_detector_joints(J[:50], jd.proportions(J)), D[:50])
    # several clips of one skeleton at once, given its proportions: each as if mapped alone
    both = jd.to_detector_joints(np.stack([J[:10], J[10:20]]), jd.proportions(J))
    np.testing.assert_allclose(both.reshape(20, 17, 3), D[:20])
    with pytest.raises(ValueError, match="one take"):   # measured on stacked takes: refused (they may differ)
        jd.to_detector_joints(np.stack([J[:10], J[10:20]]))
    # a frame with a missing joint does not spoil the take's proportions; its own joints stay missing
    gappy = J.copy()
    gappy[5, 13] = np.nan
    assert jd.proportions(gappy) == pytest.approx(jd.proportions(J), rel=1e-2)
    out = jd.to_detector_joints(gappy)
    assert np.isnan(out[5, 13]).all() and np.isfinite(np.delete(out, 5, axis=0)).all()


def test_bad_skeletons_are_refused():
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        jd.to_detector_joints(np.zeros((4, 15, 3)))
    with pytest.raises(ValueError, match="no leg length"):
        jd.to_detector_joints(np.zeros((4, 17, 3)))
    with pytest.raises(ValueError, match="no finite value"):
        jd.to_detector_joints(np.full((4, 17, 3), np.nan))
    J = _cmu_take()
    J[:, 11] = J[:, 14]   # both shoulders in one place
    with pytest.raises(ValueError, match="shoulder width"):
        jd.to_detector_joints(J)
