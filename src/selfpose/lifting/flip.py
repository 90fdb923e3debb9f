"""Mirror augmentation for lifters: the scene seen in a mirror held at the camera.

Mirroring an image left-right and mirroring the 3D scene through the camera's
``x = 0`` plane describe the same picture: a pelvis-centred 3D pose ``(X, Y,
Z)`` in the camera frame becomes ``(−X, Y, Z)`` and its projection's
horizontal offset from the principal point changes sign. The person's left
and right also swap names (a left arm seen in a mirror is drawn where a
right arm would be), so joint ``j`` takes the place of its flip partner
(:attr:`selfpose.geometry.skeleton.H36M17.flip_pairs`). The mirrored pair
is as real a training example as the original, which is why Pavllo et al.
(VideoPose3D, 2019) train on both and average the two predictions at test
time.

The encoded 2D (:func:`selfpose.lifting.data.encode_2d`, before z-scoring) is
``[rel (J×2), where (2), vis (J)]``: ``rel`` is each joint's offset from the
root divided by the focal length (or half the image width), ``where`` the
root's offset from the principal point (or the image centre) in the same
units. Both are horizontal offsets from the mirror's axis, so both x columns
change sign. Two small approximations: a lens's tangential distortion is not
mirror-symmetric (Human3.6M's is below a pixel), and with
``input_norm=image`` the axis is the image centre rather than the principal
point (a few pixels on Human3.6M).
"""

from __future__ import annotations

import numpy as np
import torch

from selfpose.errors import SelfposeError
from selfpose.geometry.skeleton import H36M17


class FlipError(SelfposeError, ValueError):
    """Mirroring is asked of data it cannot mirror (not the house skeleton, or image features)."""


def flip_permutation(num_joints: int) -> np.ndarray:
    """``(J,)`` index of each joint's mirror partner; only the house skeleton (J = 17) is known."""
    if num_joints != H36M17.num_joints:
        raise FlipError(f"mirror augmentation knows the house skeleton's left/right joints "
                        f"({H36M17.num_joints} joints), not a {num_joints}-joint skeleton; set flip_train=false "
                        "and flip_test=false")
    return H36M17.flip_permutation()


def flip_encoded(x, num_joints: int, extra: int = 0):
    """Mirror encoded 2D ``(..., 3J + 2 + extra)`` (raw, before z-scoring); numpy or torch, a new array.

    ``extra`` trailing columns (image features) cannot be mirrored: a nonzero value is an error.
    """
    if extra:
        raise FlipError("mirror augmentation cannot mirror image features (a backbone's pooled features have "
                        "no known mirror); set flip_train=false and flip_test=false with image_features")
    J = int(num_joints)
    if x.shape[-1] != 3 * J + 2:
        raise FlipError(f"encoded 2D must have 3J + 2 = {3 * J + 2} columns for J = {J}, got {x.shape[-1]}")
    perm = flip_permutation(J)
    lead = x.shape[:-1]
    rel = x[..., :2 * J].reshape(*lead, J, 2)[..., perm, :]
    sign = np.array([-1.0, 1.0], np.float32)
    if isinstance(x, torch.Tensor):
        s = torch.as_tensor(sign, dtype=x.dtype)
        rel = (rel * s).reshape(*lead, 2 * J)
        where = x[..., 2 * J:2 * J + 2] * s
        vis = x[..., 2 * J + 2:][..., perm]
        return torch.cat([rel, where, vis], dim=-1)
    rel = (rel * sign).reshape(*lead, 2 * J)
    where = x[..., 2 * J:2 * J + 2] * sign
    vis = x[..., 2 * J + 2:][..., perm]
    return np.concatenate([rel, where, vis], axis=-1).astype(x.dtype, copy=False)


def flip_3d(y, num_joints: int):
    """Mirror 3D ``(..., 3J)`` or ``(..., J, 3)`` (camera frame: X → −X, left ↔ right); numpy or torch, a new array.

    Its own inverse: ``flip_3d(flip_3d(y)) == y``. NaN rows (frames without 3D) stay NaN.
    """
    J = int(num_joints)
    perm = flip_permutation(J)
    flat = y.shape[-1] == 3 * J
    lead = y.shape[:-1] if flat else y.shape[:-2]
    p = y.reshape(*lead, J, 3)[..., perm, :]
    sign = np.array([-1.0, 1.0, 1.0], np.float32)
    p = p * (torch.as_tensor(sign, dtype=y.dtype) if isinstance(y, torch.Tensor) else sign.astype(y.dtype))
    return p.reshape(*lead, 3 * J) if flat else p
