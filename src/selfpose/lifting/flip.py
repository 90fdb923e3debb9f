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


def _flip_columns(num_joints: int) -> tuple[np.ndarray, np.ndarray]:
    """``(source column (3J + 2,), sign (3J + 2,))`` of the mirrored encoding: ``out[..., c] = sign[c] · x[..., src[c]]``."""
    J = int(num_joints)
    perm = flip_permutation(J)
    src = np.concatenate([(2 * perm[:, None] + np.arange(2)).ravel(), [2 * J, 2 * J + 1], 2 * J + 2 + perm])
    sign = np.ones(3 * J + 2, np.float32)
    sign[0:2 * J:2] = -1.0     # each joint's x offset from the root
    sign[2 * J] = -1.0         # the root's x offset from the principal point
    return src, sign


def _gather(x, index: np.ndarray, sign: np.ndarray, axis: int):
    """``x`` reordered along ``axis`` by ``index`` and scaled by ``sign`` (numpy or torch, same dtype as ``x``)."""
    if isinstance(x, torch.Tensor):
        return x.index_select(axis, torch.from_numpy(index).to(x.device)) * torch.as_tensor(sign, dtype=x.dtype)
    return (np.take(x, index, axis=axis) * sign).astype(x.dtype, copy=False)


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
    src, sign = _flip_columns(J)
    return _gather(x, src, sign, axis=x.ndim - 1)


def flip_3d(y, num_joints: int):
    """Mirror 3D ``(..., 3J)`` or ``(..., J, 3)`` (camera frame: X → −X, left ↔ right); numpy or torch, a new array.

    Its own inverse: ``flip_3d(flip_3d(y)) == y``. NaN rows (frames without 3D) stay NaN.
    """
    J = int(num_joints)
    perm = flip_permutation(J)
    if y.shape[-1] != 3 * J:   # (..., J, 3): the same on the flat layout
        return flip_3d(y.reshape(*y.shape[:-2], 3 * J), J).reshape(y.shape)
    src = (3 * perm[:, None] + np.arange(3)).ravel()   # joint j's X, Y, Z are columns 3j, 3j + 1, 3j + 2
    return _gather(y, src, np.tile(np.float32([-1, 1, 1]), J), axis=y.ndim - 1)
