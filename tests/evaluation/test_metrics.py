"""Pose metrics (MPJPE, N-MPJPE, P-MPJPE, PCK, AUC), their aggregation, and box IoU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from selfpose.evaluation.metrics import (AUC_THRESHOLDS_MM, PCK_JOINTS_3DHP, MetricError, auc, box_iou,
                                         evaluate_poses, mpjpe, n_mpjpe, p_mpjpe, pck3d)
from selfpose.geometry.alignment import PoseShapeError, procrustes_align, root_center, scale_align

coords = st.floats(-1000.0, 1000.0, allow_nan=False, allow_infinity=False)


def poses(J: int = 17) -> st.SearchStrategy:
    return hnp.arrays(np.float64, (J, 3), elements=coords)


def spread(X: np.ndarray) -> float:
    return float(np.linalg.norm(X - X.mean(0), axis=-1).max())


@st.composite
def rotations(draw) -> np.ndarray:
    q = np.array([draw(st.floats(-1, 1)) for _ in range(4)])
    assume(np.linalg.norm(q) > 0.1)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


# -- properties -----------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(pred=poses(), target=poses(), R=rotations(), s=st.floats(0.05, 20.0),
       t=hnp.arrays(np.float64, (3,), elements=st.floats(-1e4, 1e4)))
def test_p_mpjpe_ignores_similarity_transforms_of_the_prediction(pred, target, R, s, t):
    assume(spread(pred) > 1.0)
    moved = s * pred @ R.T + t
    assert p_mpjpe(moved, target) == pytest.approx(p_mpjpe(pred, target), rel=1e-6, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(pred=poses(), target=poses(), c=st.floats(1e-3, 1e3))
def test_n_mpjpe_ignores_positive_scaling_of_the_prediction(pred, target, c):
    assert n_mpjpe(c * pred, target) == pytest.approx(n_mpjpe(pred, target), rel=1e-6, abs=1e-6)


@settings(max_examples=50, deadline=None)
@given(target=poses())
def test_identical_poses_score_perfectly(target):
    assert mpjpe(target, target) == 0.0
    assert n_mpjpe(target, target) == pytest.approx(0.0, abs=1e-9)
    assert p_mpjpe(target, target) == pytest.approx(0.0, abs=1e-6)
    assert pck3d(target, target) == 100.0
    assert auc(target, target) == 100.0  # error 0 passes even the 0 mm threshold


@settings(max_examples=100, deadline=None)
@given(pred=poses(), target=poses())
def test_alignments_never_increase_the_squared_error(pred, target):
    # What is guaranteed: each alignment minimises the sum of squared joint
    # errors over a larger family (identity ⊂ scalings ⊂ similarities), so the
    # RMS errors are ordered: P ≤ N ≤ raw, for root-centred poses.
    p, t = root_center(pred), root_center(target)
    sq = ((p - t) ** 2).sum()
    sq_n = ((scale_align(p, t) - t) ** 2).sum()
    sq_p = ((procrustes_align(p, t) - t) ** 2).sum()
    tol = 1e-9 * (1.0 + sq)
    assert sq_p <= sq_n + tol and sq_n <= sq + tol


def test_mean_error_order_is_typical_on_real_like_noise():
    rng = np.random.default_rng(0)
    target = rng.normal(scale=300.0, size=(500, 17, 3))
    pred = 1.2 * target + rng.normal(scale=40.0, size=target.shape)
    m, n, p = mpjpe(pred, target, "none"), n_mpjpe(pred, target, "none"), p_mpjpe(pred, target, "none")
    # In the mean the order holds; per sample it can fail (here 1 of 500
    # samples has P > N: Procrustes spreads the root's error over all joints).
    assert p.mean() < n.mean() < m.mean()
    assert (p <= n).mean() > 0.95 and (n <= m).mean() > 0.95


def test_n_mpjpe_can_exceed_mpjpe():
    # The least-squares scale is pulled by an outlier joint. Root-centred,
    # 5 joints; joints 1-3 are exact at 100 mm on the axes, joint 4 is
    # predicted at (-100, 0, 0) but is at (-1000, 0, 0):
    #   MPJPE = (0 + 0 + 0 + 0 + 900) / 5 = 180 mm.
    #   s* = ⟨p̂, p⟩ / ⟨p̂, p̂⟩ = (3·100² + 100·1000) / (4·100²) = 3.25, so joints
    #   1-3 err by 225 mm and joint 4 by 1000 − 325 = 675 mm:
    #   N-MPJPE = (3·225 + 675) / 5 = 270 mm > MPJPE.
    target = np.array([[0, 0, 0], [100, 0, 0], [0, 100, 0], [0, 0, 100], [-1000, 0, 0]], dtype=float)
    pred = target.copy()
    pred[4] = [-100, 0, 0]
    assert mpjpe(pred, target) == pytest.approx(180.0)
    assert n_mpjpe(pred, target) == pytest.approx(270.0)


# -- hand-computed values ------------------------------------------------------

def test_mpjpe_two_joint_example_by_hand():
    # Joint 0 is the root. pred = [(10, 0, 0), (10, 30, 0)] root-centred is
    # [0, (0, 30, 0)]; the target's joint 1 is (0, 30, 40). Errors: root 0,
    # joint 1 |(0, 0, −40)| = 40 → MPJPE = (0 + 40) / 2 = 20 mm.
    pred = np.array([[10.0, 0, 0], [10, 30, 0]])
    target = np.array([[0.0, 0, 0], [0, 30, 40]])
    assert mpjpe(pred, target) == pytest.approx(20.0)
    # Without centring the root is off by 10 and joint 1 by √(10² + 40²).
    assert mpjpe(pred, target, root=None) == pytest.approx((10 + np.hypot(10, 40)) / 2)
    # N-MPJPE: s* = ⟨(0,30,0), (0,30,40)⟩ / 30² = 1 → joint 1 still off by 40.
    assert n_mpjpe(pred, target) == pytest.approx(20.0)
    # Two points always map exactly onto two others by a similarity (here
    # scale 50/30 and a rotation), so P-MPJPE = 0.
    assert p_mpjpe(pred, target) == pytest.approx(0.0, abs=1e-9)


def test_pck_and_auc_on_known_errors():
    rng = np.random.default_rng(0)
    target = np.round(rng.normal(scale=300.0, size=(17, 3)))
    pred = target.copy()
    evaluated = list(PCK_JOINTS_3DHP)
    near, far = evaluated[:7], evaluated[7:]
    pred[near, 0] += 100.0   # within 150 mm
    pred[far, 1] -= 200.0    # beyond it
    pred[7, 2] += 5000.0     # the spine is not scored by 3DHP's 14 joints
    assert pck3d(pred, target) == pytest.approx(50.0)
    assert pck3d(pred, target, threshold=100.0) == pytest.approx(50.0)  # ≤ counts
    assert pck3d(pred, target, threshold=99.0) == pytest.approx(0.0)
    assert pck3d(pred, target, threshold=250.0, joints=None) == pytest.approx(100 * 16 / 17)
    # AUC over 0, 5, ..., 150 mm (31 thresholds): the 100-mm joints pass at
    # the 11 thresholds 100..150, the 200-mm joints never.
    assert len(AUC_THRESHOLDS_MM) == 31
    assert auc(pred, target) == pytest.approx(100 * 0.5 * 11 / 31)
    assert auc(pred, target, thresholds=[50.0, 150.0, 250.0]) == pytest.approx(100 * (0 + 0.5 + 1) / 3)


def test_pck_after_scale_alignment_forgives_scale():
    rng = np.random.default_rng(1)
    target = rng.normal(scale=300.0, size=(8, 17, 3))
    pred = 2.0 * root_center(target)
    assert pck3d(pred, target) < 50.0
    assert pck3d(pred, target, align="scale") == pytest.approx(100.0)
    assert pck3d(pred, target, align="procrustes") == pytest.approx(100.0)


def test_reduction_none_gives_per_sample_values():
    rng = np.random.default_rng(2)
    target = rng.normal(scale=300.0, size=(2, 3, 17, 3))
    pred = target + rng.normal(scale=30.0, size=target.shape)
    for fn in (mpjpe, n_mpjpe, p_mpjpe, pck3d, auc):
        per = fn(pred, target, reduction="none")
        assert per.shape == (2, 3)
        assert per.mean() == pytest.approx(fn(pred, target))
        assert per[1, 2] == pytest.approx(fn(pred[1, 2], target[1, 2]))


def test_torch_in_torch_out():
    rng = np.random.default_rng(3)
    target = torch.tensor(rng.normal(scale=300.0, size=(4, 17, 3)), dtype=torch.float32)
    pred = (target + 10.0).requires_grad_()
    m = mpjpe(pred, target)
    assert isinstance(m, torch.Tensor) and m.dtype == torch.float32 and m.ndim == 0
    assert isinstance(n_mpjpe(pred, target, "none"), torch.Tensor)
    n_mpjpe(pred, target).backward()
    assert torch.isfinite(pred.grad).all()
    assert isinstance(mpjpe(pred.detach().numpy(), target.numpy()), float)


def test_metrics_reject_bad_inputs():
    with pytest.raises(PoseShapeError, match="same shape"):
        mpjpe(np.zeros((4, 17, 3)), np.zeros((4, 16, 3)))
    with pytest.raises(PoseShapeError, match=r"\(\.\.\., J, 3\)"):
        p_mpjpe(np.zeros((4, 17, 2)), np.zeros((4, 17, 2)))
    with pytest.raises(MetricError, match="reduction"):
        mpjpe(np.zeros((17, 3)), np.zeros((17, 3)), reduction="sum")
    with pytest.raises(MetricError, match="align"):
        pck3d(np.zeros((17, 3)), np.zeros((17, 3)), align="rigid")
    with pytest.raises(PoseShapeError, match="out of range"):
        mpjpe(np.zeros((4, 5, 3)), np.zeros((4, 5, 3)), joints=[7])


# -- evaluate_poses --------------------------------------------------------------

def test_evaluate_poses_aggregates_per_action():
    rng = np.random.default_rng(4)
    target = rng.normal(scale=300.0, size=(3, 17, 3))
    pred = target.copy()
    # Non-root joints shifted by 10, 30 and 50 mm along x → MPJPE 10·16/17 etc.
    for i, d in enumerate((10.0, 30.0, 50.0)):
        pred[i, 1:, 0] += d
    res = evaluate_poses(pred, target, actions=["walk", "walk", "sit"])
    k = 16 / 17
    assert res["overall"]["mpjpe"] == pytest.approx(30.0 * k)
    assert res["overall"]["count"] == 3
    assert res["per_action"]["walk"]["mpjpe"] == pytest.approx(20.0 * k)
    assert res["per_action"]["walk"]["count"] == 2
    assert res["per_action"]["sit"]["mpjpe"] == pytest.approx(50.0 * k)
    assert res["action_average"]["mpjpe"] == pytest.approx(35.0 * k)
    assert res["overall"]["pck"] == pytest.approx(100.0)
    for key in ("n_mpjpe", "p_mpjpe", "auc"):
        assert isinstance(res["overall"][key], float)
    assert res["overall"]["p_mpjpe"] <= res["overall"]["mpjpe"]


def test_evaluate_poses_without_actions_and_bad_actions():
    X = np.random.default_rng(5).normal(size=(4, 17, 3))
    res = evaluate_poses(X, X)
    assert res["per_action"] == {} and "action_average" not in res
    assert res["overall"]["mpjpe"] == 0.0 and res["overall"]["count"] == 4
    with pytest.raises(MetricError, match="one action per pose"):
        evaluate_poses(X, X, actions=["a"])
    with pytest.raises(PoseShapeError, match=r"\(N, J, 3\)"):
        evaluate_poses(X[0], X[0])


# -- box_iou ------------------------------------------------------------------

def test_box_iou_known_cases():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [5, 5, 5, 9]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [5, 5, 5, 9]], dtype=float)
    # half-overlap: intersection 5·10 = 50, union 100 + 100 − 50 = 150
    np.testing.assert_allclose(box_iou(a, b), [1.0, 1 / 3, 0.0, 0.0])


def test_box_iou_pairwise_by_broadcasting_and_torch():
    a = torch.tensor([[0.0, 0, 10, 10], [0, 0, 20, 20]])
    b = torch.tensor([[0.0, 0, 10, 10], [0, 0, 5, 5], [100, 100, 110, 110]])
    m = box_iou(a[:, None], b[None])
    assert isinstance(m, torch.Tensor) and m.shape == (2, 3)
    torch.testing.assert_close(m, torch.tensor([[1.0, 0.25, 0.0], [0.25, 1 / 16, 0.0]]))
    with pytest.raises(PoseShapeError, match="x0, y0, x1, y1"):
        box_iou(np.zeros((3, 2)), np.zeros((3, 2)))


def test_limb_length_consistency_is_zero_for_a_rigid_body_and_reads_stretching():
    from selfpose.evaluation.metrics import LIMBS8, limb_length_consistency

    rng = np.random.default_rng(0)
    body = rng.normal(0, 300, size=(17, 3))
    T = 50
    # a rigid body moving and turning: every limb keeps its length
    angles = np.linspace(0, 2, T)
    rot = np.stack([np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) for a in angles])
    rigid = np.einsum("tij,kj->tki", rot, body) + rng.normal(0, 1, size=(T, 1, 3)) * 100
    out = limb_length_consistency(rigid)
    assert set(out) == {*LIMBS8, "mean"} and out["mean"] < 1e-9
    # the right shin alternately 10% longer and shorter: std/mean 0.1 for it, 0.1/8 on average
    stretched = rigid.copy()
    a, b = LIMBS8["right_shin"]
    factor = np.where(np.arange(T) % 2 == 0, 1.1, 0.9)[:, None]
    stretched[:, b] = stretched[:, a] + (stretched[:, b] - stretched[:, a]) * factor
    out = limb_length_consistency(stretched)
    assert out["right_shin"] == pytest.approx(0.1, rel=1e-6) and out["mean"] == pytest.approx(0.1 / 8, rel=1e-6)
    # frames marked invalid are left out; NaN joints too
    valid = np.arange(T) % 2 == 0
    assert limb_length_consistency(stretched, valid)["right_shin"] < 1e-9
    stretched[3] = np.nan
    assert np.isfinite(limb_length_consistency(stretched)["mean"])
    with pytest.raises(ValueError, match=r"\(T, 17, 3\)"):
        limb_length_consistency(np.zeros((5, 15, 3)))


def test_compare_to_reference_reads_pose_not_place_or_size():
    from selfpose.evaluation.metrics import LIMBS8, compare_to_reference, limb_lengths

    rng = np.random.default_rng(3)
    ref = rng.normal(0, 300, (20, 17, 3))
    same = compare_to_reference(ref + np.array([50.0, -20.0, 900.0]), ref)   # moved: pelvis-relative, no error
    assert same["frames"] == 20 and same["mpjpe"] == pytest.approx(0, abs=1e-6)
    bigger = compare_to_reference(1.2 * ref, ref)   # scaled: P-MPJPE aligns it away, the limbs do not
    assert bigger["mpjpe"] > 10 and bigger["p_mpjpe"] == pytest.approx(0, abs=1e-4)
    assert bigger["limb_error_mm"] == pytest.approx(0.2 * limb_lengths(ref).mean(), rel=1e-9)
    assert limb_lengths(ref).shape == (20, len(LIMBS8))
    gappy = 1.2 * ref
    gappy[3, 5] = np.nan   # a frame with a missing joint is left out, not averaged in
    assert compare_to_reference(gappy, ref)["frames"] == 19
    with pytest.raises(ValueError, match="both be"):
        compare_to_reference(ref[:, :15], ref[:, :15])
    with pytest.raises(ValueError, match="no frame"):
        compare_to_reference(np.full_like(ref, np.nan), ref)
