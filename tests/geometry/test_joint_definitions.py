"""Human3.6M joints moved to the detector's definitions: the measured ratios come out, the rest stays."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.data.synthetic.mocap import MotionFile
from selfpose.geometry import joint_definitions as jd


def test_segments_take_the_detectors_proportions_and_the_limbs_stay():
    with MotionFile() as mf:   # the shipped CMU motion, in the house joints
        J = mf.load(mf.select(())[0]).joints.astype(np.float64)
    D = jd.h36m_to_detector(J)
    d = lambda X, a, b: np.linalg.norm(X[:, a] - X[:, b], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(D, 11, 14), jd.SHOULDER_WIDTH * d(J, 11, 14), rtol=1e-9)
    np.testing.assert_allclose(d(D, 0, 8), jd.PELVIS_THORAX * d(J, 0, 8), rtol=1e-9)
    np.testing.assert_allclose(D[:, 8], (D[:, 11] + D[:, 14]) / 2)
    np.testing.assert_allclose(D[:, 9] - D[:, 8], jd.THORAX_NOSE * (J[:, 9] - J[:, 8]))
    np.testing.assert_allclose(D[:, 7], D[:, [1, 4, 11, 14]].mean(1))
    for j in (0, 1, 2, 3, 4, 5, 6, 12, 13, 15, 16):   # pelvis, legs, elbows and wrists do not move
        np.testing.assert_array_equal(D[:, j], J[:, j])
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        jd.h36m_to_detector(np.zeros((4, 15, 3)))
