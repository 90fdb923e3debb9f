"""The bone-length term (selfpose.lifting.bones) and its place in the pose machine's joint stage."""

from __future__ import annotations

import pytest
import torch

from selfpose.geometry.skeleton import H36M17
from selfpose.lifting import pose_machine as pm
from selfpose.lifting.bones import BonesError, bone_length_error, bone_lengths, house_bones
from selfpose.lifting.train import build_lifter

from .test_martinez import arrays
from .test_pose_machine import fixed_batch, tiny_cfg


def test_bone_lengths_and_the_relative_error_of_a_scaled_pose():
    p = torch.zeros(17, 3)
    for k, (a, b) in enumerate(H36M17.bones):       # each child 100 + 10k mm along x from its parent
        p[b] = p[a] + torch.tensor([100.0 + 10 * k, 0, 0])
    ref = torch.tensor([100.0 + 10 * k for k in range(16)])
    torch.testing.assert_close(bone_lengths(p, H36M17.bones), ref)
    assert float(bone_length_error(p, ref, H36M17.bones)) == pytest.approx(0.0, abs=1e-12)
    assert float(bone_length_error(1.1 * p, ref, H36M17.bones)) == pytest.approx(0.01, rel=1e-5)   # every bone +10%
    with pytest.raises(BonesError, match="17 joints"):
        house_bones(15)


def test_the_bone_term_reaches_the_transformer_on_2d_only_windows():
    a = arrays(64)
    lifter = build_lifter(a, tiny_cfg("pose_machine.reproj_path=camera", "pose_machine.camera_reproj_weight=0",
                                      "pose_machine.bone_weight=1"))
    batch = fixed_batch(lifter, a)
    batch.has3d[4:] = False                         # half the windows 2D-only: the other half give the lengths
    batch.y[4:] = float("nan")
    loss, terms = pm.joint_loss(lifter, batch)
    assert float(terms["bones"].detach()) > 0 and torch.isfinite(loss)
    keep = batch.has3d.clone()
    lifter.net.zero_grad()
    # the 2D-only windows alone move the transformer through the bone term (labelled ones give only the reference)
    p3 = lifter.net.transformer(batch.x)
    ref = bone_lengths(lifter.to_mm(batch.y[keep]), H36M17.bones).flatten(0, -2).mean(0)
    bone_length_error(lifter.to_mm(p3[~keep]), ref, H36M17.bones).backward()
    assert lifter.net.transformer.fc_in.weight.grad.abs().sum() > 0
    off = build_lifter(a, tiny_cfg("pose_machine.reproj_path=camera"))
    assert "bones" not in pm.joint_loss(off, fixed_batch(off, a))[1]
