"""Bone lengths of 3D poses, and a loss that holds a prediction's bones to those of the 3D labels.

A 2D re-projection term alone leaves depth free: a 2D-only window is explained
as well by a pose squashed towards the camera plane as by the real one. Bones
do not change length, so asking the prediction's bones to keep the labelled
poses' lengths removes most of that freedom (what Pavllo et al., VideoPose3D
2019, pair with back-projection in their semi-supervised setting). On the
Human3.6M motion shipped here every subject shares one skeleton, so the prior
is exact; on real people (whose bones differ by a few percent) it is an
approximation of the same size.
"""

from __future__ import annotations

import torch

from selfpose.errors import SelfposeError
from selfpose.geometry.skeleton import H36M17


class BonesError(SelfposeError, ValueError):
    """A bone term was asked of a skeleton other than the house one."""


def house_bones(num_joints: int) -> tuple[tuple[int, int], ...]:
    """The house skeleton's (parent, child) pairs; other skeletons are refused."""
    if num_joints != H36M17.num_joints:
        raise BonesError(f"the bone-length term knows the house skeleton ({H36M17.num_joints} joints), not a "
                         f"{num_joints}-joint one; set pose_machine.bone_weight=0")
    return H36M17.bones


def bone_lengths(pose_mm: torch.Tensor, bones) -> torch.Tensor:
    """``(..., len(bones))`` mm: the length of each (parent, child) bone of ``pose_mm (..., J, 3)``."""
    parent = torch.tensor([b[0] for b in bones], device=pose_mm.device)
    child = torch.tensor([b[1] for b in bones], device=pose_mm.device)
    return torch.linalg.norm(pose_mm[..., child, :] - pose_mm[..., parent, :], dim=-1)


def bone_length_error(pred_mm: torch.Tensor, reference_mm: torch.Tensor, bones) -> torch.Tensor:
    """Mean squared *relative* bone-length error ``mean ((‖b̂‖ − ‖b‖_ref) / ‖b‖_ref)²`` (dimensionless).

    Args:
        pred_mm: ``(..., J, 3)`` predicted poses, mm.
        reference_mm: ``(len(bones),)`` the reference lengths (e.g. the mean of the labelled poses'), mm, > 0.
        bones: (parent, child) pairs.
    """
    ref = reference_mm.clamp(min=1.0)
    return (((bone_lengths(pred_mm, bones) - ref) / ref) ** 2).mean()
