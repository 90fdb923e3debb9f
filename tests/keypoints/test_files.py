"""selfpose.keypoints.files: conversions of the detector's output (the files themselves: tests/keypoints/test_detector.py)."""

import numpy as np


def test_world_landmarks_become_house_joints_in_mm_about_the_pelvis():
    from selfpose.keypoints.files import world_house_mm

    rng = np.random.default_rng(0)
    world = rng.normal(0, 0.3, (5, 33, 3))   # m
    world[2, 0] = np.nan   # the nose unknown in one frame
    J = world_house_mm(world)
    assert J.shape == (5, 17, 3)
    np.testing.assert_allclose(J[:, 0], 0.0)   # pelvis-centred
    hips = (world[:, 23] + world[:, 24]) / 2 * 1000   # MediaPipe's hips 23/24 → the house pelvis, in mm
    np.testing.assert_allclose(J[:, 1] + hips, world[:, 24] * 1000, atol=1e-9)   # right hip
    assert np.isnan(J[2]).any() and np.isfinite(np.delete(J, 2, axis=0)).all()
