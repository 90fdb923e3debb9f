"""Re-projection through the real camera (selfpose.lifting.perspective) and the joint stage's camera path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfpose.config import ConfigError
from selfpose.lifting import pose_machine as pm
from selfpose.lifting.perspective import camera_reprojection_error, project, root_translation
from selfpose.lifting.train import build_lifter

from .test_martinez import arrays
from .test_pose_machine import fixed_batch, tiny_cfg

J = 17


def poses(n: int = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(n, J, 3, generator=g, dtype=torch.float64) * 250
    return p - p[:, :1]


def test_root_translation_recovers_the_true_placement_even_with_missing_joints():
    p = poses()
    t = torch.tensor([[300.0, -120.0, 4200.0], [-50.0, 40.0, 3000.0], [0.0, 0.0, 5500.0], [800.0, 200.0, 6000.0],
                      [-400.0, -300.0, 2500.0]], dtype=torch.float64)
    u = project(p, t)
    vis = torch.ones(5, J, dtype=torch.float64)
    vis[1, 3:9] = 0
    u[1, 3:9] = 1e3                                    # garbage where missing: must not matter
    np.testing.assert_allclose(root_translation(p, u, vis).numpy(), t.numpy(), atol=0.01)   # mm


def test_the_true_pose_reprojects_exactly_and_a_moved_joint_does_not():
    p = poses(4).float()
    t = torch.tensor([0.0, 100.0, 4000.0]).expand(4, 3)
    u = project(p, t)
    vis = torch.ones(4, J)
    exact = camera_reprojection_error(p[None], u[None], vis[None])
    moved = p.clone()
    moved[:, 13, 0] += 100.0                           # a wrist 10 cm to the side
    off = camera_reprojection_error(moved[None], u[None], vis[None])
    assert float(exact) < 1e-8 and float(off) > 1e-3
    scaled = camera_reprojection_error(1.3 * p[None], u[None], vis[None])   # a bigger person, further away
    assert float(scaled) < 1e-3                        # scale is free (placement absorbs it, up to perspective)
    one = vis.clone()
    one[0, 1:] = 0                                     # a frame with one visible joint is left out, finitely
    g = moved[None].clone().requires_grad_(True)
    err = camera_reprojection_error(g, u[None], one[None], per_clip=True)
    err.sum().backward()
    assert torch.isfinite(g.grad).all() and g.grad[0, 0].abs().sum() == 0 and g.grad[0, 1].abs().sum() > 0


def test_camera_path_trains_the_transformer_by_the_camera_term_only():
    """2D-only windows: with reproj_path=camera, only the camera term reaches the transformer; Ψ_C, Ψ_P still learn."""
    a = arrays(64)
    for path, w, transformer_moves in [("projector", 10, True), ("camera", 0, False), ("camera", 10, True)]:
        lifter = build_lifter(a, tiny_cfg(f"pose_machine.reproj_path={path}", f"pose_machine.camera_reproj_weight={w}"))
        batch = fixed_batch(lifter, a)
        batch.has3d[:] = False
        batch.y[:] = float("nan")
        loss, terms = pm.joint_loss(lifter, batch)
        loss.backward()
        moved = lifter.net.transformer.fc_in.weight.grad
        assert (moved is not None and float(moved.abs().sum()) > 0) == transformer_moves, (path, w)
        assert float(lifter.net.projector.parameters().__next__().grad.abs().sum()) > 0
        assert ("camera_reproj" in terms) == (path == "camera")


def test_focal_2d_undoes_the_encoding():
    a = arrays(16)
    lifter = build_lifter(a, tiny_cfg())
    batch = fixed_batch(lifter, a, clip=2, n=8)
    u = pm.focal_2d(lifter, batch.x).reshape(16, J, 2)
    want = (a.joints2d - a.principal[:, None]) / a.focal[:, None]
    np.testing.assert_allclose(u.numpy(), want, atol=1e-4)


def test_camera_path_needs_focal_inputs():
    with pytest.raises(ConfigError, match="input_norm=focal"):
        tiny_cfg("pose_machine.reproj_path=camera", "input_norm=image")
