"""Root-centring, optimal scale and Procrustes alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from selfpose.geometry.alignment import PoseShapeError, procrustes_align, root_center, scale_align


def random_poses(shape=(4,), J=17, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(scale=300.0, size=(*shape, J, 3))


def random_similarity(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    R = Rotation.random(n, random_state=seed).as_matrix()
    s = rng.uniform(0.2, 5.0, size=n)
    t = rng.normal(scale=2000.0, size=(n, 3))
    return R, s, t


def apply(R, s, t, X):
    """``s R x + t`` for ``(N, J, 3)`` points."""
    return s[:, None, None] * np.einsum("nij,nkj->nki", R, X) + t[:, None, :]


# -- root_center -----------------------------------------------------------------

def test_root_center_moves_root_to_origin_and_keeps_kind():
    X = random_poses((2, 3))
    out = root_center(X)
    assert isinstance(out, np.ndarray) and out.shape == X.shape
    np.testing.assert_allclose(out[..., 0, :], 0.0)
    np.testing.assert_allclose(out[..., 5, :] - out[..., 2, :], X[..., 5, :] - X[..., 2, :])
    t = root_center(torch.tensor(X, dtype=torch.float32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32


def test_root_center_on_several_joints_uses_their_mean():
    X = random_poses()
    out = root_center(X, root=(1, 4))  # mid-hip
    np.testing.assert_allclose(out[..., 1, :] + out[..., 4, :], 0.0, atol=1e-9)


def test_root_center_rejects_bad_root():
    with pytest.raises(PoseShapeError, match="out of range"):
        root_center(random_poses(), root=17)


# -- scale_align ------------------------------------------------------------------

def test_scale_align_two_joint_example_by_hand():
    # Root-centred already (joint 0 at the origin). Joint 1: p̂ = (1, 0, 0),
    # p = (2, 2, 0): s* = ⟨p̂, p⟩ / ⟨p̂, p̂⟩ = 2 / 1 = 2, so p̂ becomes (2, 0, 0).
    pred = np.array([[0.0, 0, 0], [1, 0, 0]])
    target = np.array([[0.0, 0, 0], [2, 2, 0]])
    aligned, s = scale_align(pred, target, return_scale=True)
    assert s == pytest.approx(2.0)
    np.testing.assert_allclose(aligned, [[0, 0, 0], [2, 0, 0]])


def test_scale_align_root_centres_before_scaling():
    target = random_poses()
    pred = target / 3.0 + np.array([100.0, -50.0, 4000.0])  # smaller and elsewhere
    aligned, s = scale_align(pred, target, return_scale=True)
    np.testing.assert_allclose(s, 3.0)
    np.testing.assert_allclose(aligned, root_center(target), atol=1e-9)


def test_scale_align_of_collapsed_pose_is_finite_with_finite_gradient():
    pred = torch.zeros(2, 17, 3, requires_grad=True)
    target = torch.tensor(random_poses((2,)), dtype=torch.float32)
    aligned, s = scale_align(pred, target, return_scale=True)
    assert torch.isfinite(aligned).all() and torch.equal(s, torch.zeros(2))
    ((aligned - root_center(target)) ** 2).sum().backward()
    assert torch.isfinite(pred.grad).all()


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), c=st.floats(0.01, 100.0))
def test_scale_align_ignores_positive_rescaling(seed, c):
    target, pred = random_poses(seed=seed), random_poses(seed=seed + 1)
    np.testing.assert_allclose(scale_align(c * pred, target), scale_align(pred, target), atol=1e-8)


# -- procrustes_align -------------------------------------------------------------

def test_procrustes_recovers_a_similarity_transform():
    X = random_poses((5,))
    R, s, t = random_similarity(5)
    Y = apply(R, s, t, X)
    aligned, R_est, s_est, t_est = procrustes_align(X, Y, return_transform=True)
    np.testing.assert_allclose(aligned, Y, atol=1e-8)
    np.testing.assert_allclose(R_est, R, atol=1e-10)
    np.testing.assert_allclose(s_est, s, rtol=1e-10)
    np.testing.assert_allclose(t_est, t, atol=1e-7)


def test_procrustes_transform_reproduces_aligned_pose():
    X, Y = random_poses(seed=3), random_poses(seed=4)
    aligned, R, s, t = procrustes_align(X, Y, return_transform=True)
    np.testing.assert_allclose(apply(R, s, t, X), aligned, atol=1e-8)
    np.testing.assert_allclose(np.linalg.det(R), 1.0)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)


def test_procrustes_never_reflects():
    # The mirror image of a chiral pose cannot be reached by a rotation: the
    # best proper rotation leaves an error, and det R stays +1.
    X = random_poses((3,))
    mirror = X * np.array([-1.0, 1.0, 1.0])
    aligned, R, s, _ = procrustes_align(X, mirror, return_transform=True)
    np.testing.assert_allclose(np.linalg.det(R), 1.0)
    assert np.linalg.norm(aligned - mirror, axis=-1).mean() > 10.0
    assert (s > 0).all()


def test_procrustes_batch_shapes_and_torch_float32():
    X, Y = random_poses((2, 3), J=6, seed=5), random_poses((2, 3), J=6, seed=6)
    ref = procrustes_align(X, Y)
    assert ref.shape == (2, 3, 6, 3)
    flat = procrustes_align(X.reshape(6, 6, 3), Y.reshape(6, 6, 3)).reshape(2, 3, 6, 3)
    np.testing.assert_allclose(ref, flat, atol=1e-9)
    out = procrustes_align(torch.tensor(X, dtype=torch.float32), torch.tensor(Y, dtype=torch.float32))
    assert out.dtype == torch.float32 and out.shape == (2, 3, 6, 3)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-3)


def test_procrustes_of_collapsed_pose_gives_target_centroid():
    Y = random_poses((2,))
    for X in (np.zeros_like(Y), np.ones_like(Y) * 5.0):
        aligned, R, s, t = procrustes_align(X, Y, return_transform=True)
        assert np.isfinite(aligned).all() and np.isfinite(R).all() and np.isfinite(t).all()
        np.testing.assert_allclose(s, 0.0)
        np.testing.assert_allclose(aligned, np.broadcast_to(Y.mean(axis=-2, keepdims=True), Y.shape), atol=1e-9)


def test_procrustes_of_collinear_pose_is_finite():
    line = np.linspace(0, 1, 17)[:, None] * np.array([100.0, 200.0, 50.0])
    Y = random_poses((1,))[0]
    aligned = procrustes_align(line, Y)
    assert np.isfinite(aligned).all()
    # No worse than the best pure translation (the collapsed solution).
    assert np.linalg.norm(aligned - Y) <= np.linalg.norm(Y - Y.mean(0)) + 1e-9


@pytest.mark.parametrize("fn", [scale_align, procrustes_align])
def test_alignments_reject_mismatched_shapes(fn):
    with pytest.raises(PoseShapeError, match="same shape"):
        fn(np.zeros((17, 3)), np.zeros((16, 3)))
    with pytest.raises(PoseShapeError, match=r"\(\.\.\., J, 3\)"):
        fn(np.zeros((17, 2)), np.zeros((17, 2)))
    with pytest.raises(PoseShapeError):
        fn(np.zeros(3), np.zeros(3))
