"""Mirror augmentation (selfpose.lifting.flip): the mirrored 2D is the projection of the mirrored 3D."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from selfpose.geometry.skeleton import H36M17
from selfpose.lifting.config import MartinezConfig
from selfpose.lifting.data import encode_2d
from selfpose.lifting.flip import FlipError, flip_3d, flip_encoded
from selfpose.lifting.train import LifterConfig, build_lifter, fit_lifter

from .test_martinez import J, arrays


def test_flip_3d_negates_x_swaps_left_and_right_and_is_its_own_inverse():
    y = np.arange(J * 3, dtype=np.float32).reshape(J, 3) + 1
    f = flip_3d(y, J)
    rh, lh = H36M17.index("right_hip"), H36M17.index("left_hip")
    assert f[lh].tolist() == [-y[rh, 0], y[rh, 1], y[rh, 2]]   # the mirrored left hip is where the right hip was
    assert f[0].tolist() == [-y[0, 0], y[0, 1], y[0, 2]]        # the pelvis has no partner
    np.testing.assert_array_equal(flip_3d(f, J), y)
    flat = torch.from_numpy(y.reshape(1, 3 * J))                  # (..., 3J) and torch work the same
    np.testing.assert_array_equal(flip_3d(flat, J).numpy().reshape(J, 3), f)


def test_mirrored_encoding_is_the_encoding_of_the_mirrored_projection():
    """Project 3D, mirror it in 3D and project again: its encoding must equal flip_encoded of the original's."""
    a = arrays(8, seed=3)
    a.joints2d[2, 5] = np.nan                                     # a missing joint stays missing, on its partner
    a.visible[2, 5] = 0
    x = encode_2d(a.joints2d, a.visible, a.image_hw, a.focal, a.principal)
    cam = flip_3d(a.joints3d, J) + np.float32([0, 0, 4000])
    m2 = (1000 * cam[..., :2] / cam[..., 2:] + 500).astype(np.float32)
    vis = a.visible[:, H36M17.flip_permutation()]
    m2[vis == 0] = np.nan
    xm = encode_2d(m2, vis, a.image_hw, a.focal, a.principal)
    got = flip_encoded(x, J)
    np.testing.assert_allclose(np.nan_to_num(got, nan=9.0), np.nan_to_num(xm, nan=9.0), atol=1e-5)
    assert np.isnan(got[2, 2 * 2]) and got[2, 2 * J + 2 + 2] == 0   # joint 5's partner (2) is the missing one
    np.testing.assert_allclose(flip_encoded(torch.from_numpy(x), J).numpy(), got, atol=0, equal_nan=True)


def test_flip_refuses_other_skeletons_and_image_features():
    with pytest.raises(FlipError, match="17 joints"):
        flip_3d(np.zeros((15, 3)), 15)
    with pytest.raises(FlipError, match="image features"):
        flip_encoded(np.zeros((2, 3 * J + 2 + 8)), J, extra=8)
    from selfpose.config import ConfigError

    with pytest.raises(ConfigError, match="mirror image features"):
        LifterConfig(flip_train=True, image_features=True, keypoints_2d="run2d")


def test_test_time_flip_is_mirror_equivariant_and_the_mean_of_the_two_passes(one_thread):
    """An untrained net is not mirror-symmetric; averaging it with its mirror makes the lifter so."""
    a = arrays(64, seed=1)
    lifter = build_lifter(a, LifterConfig(martinez=MartinezConfig(width=32), batch_size=16, threads=1))
    lifter.net.eval()
    plain = lifter.predict(a, flip=False)
    raw = lifter.encode_sequences(a, None, 0)
    mirrored = flip_3d(lifter.predict(a, raw=flip_encoded(raw, J), flip=False), J)
    both = lifter.predict(a, flip=True)
    np.testing.assert_allclose(both, (plain + mirrored) / 2, atol=1e-4)
    assert np.abs(plain - mirrored).mean() > 1.0                    # the two passes do differ
    # equivariance: the prediction for the mirrored input is the mirror of the prediction
    m = dataclasses.replace(a, joints3d=flip_3d(a.joints3d, J))
    m_raw = flip_encoded(raw, J)
    np.testing.assert_allclose(lifter.predict(m, raw=m_raw, flip=True), flip_3d(both, J), atol=1e-3)


def test_training_windows_are_mirrored_with_their_labels(one_thread):
    """Each training window's 2D is the projection of its own 3D target, mirrored or not; about half are mirrored."""
    from selfpose.lifting.loop import Stage, mse_3d, train_stages

    train = arrays(256, seed=0)
    cfg = LifterConfig(martinez=MartinezConfig(width=16), batch_size=64, threads=1, checkpoint_every=0,
                       val_fraction=0.0, flip_train=True)
    lifter = build_lifter(train, cfg)
    seen = []

    def spy(lifter, batch):
        seen.append((batch.x.clone(), batch.y.clone()))
        return mse_3d(lifter, batch)

    train_stages(lifter, train, None, cfg, [Stage("spy", 4, spy)], progress=False)
    x = torch.cat([s[0] for s in seen])[:, 0]
    y = (torch.cat([s[1] for s in seen])[:, 0] * lifter.out_std + lifter.out_mean).numpy().reshape(-1, J, 3)
    cam = y + np.float32([0, 0, 4000])
    j2 = (1000 * cam[..., :2] / cam[..., 2:] + 500).astype(np.float32)
    n = len(y)
    hw = np.tile(np.float32([1000, 1000]), (n, 1))
    own = lifter.normalise(torch.from_numpy(encode_2d(j2, np.ones((n, J)), hw, hw, hw / 2)))
    np.testing.assert_allclose(x.numpy(), own.numpy(), atol=1e-3)
    plain = np.isclose(y[:, None], train.joints3d[None], atol=0.05).all(axis=(2, 3)).any(1)
    mirrored = np.isclose(y[:, None], flip_3d(train.joints3d, J)[None], atol=0.05).all(axis=(2, 3)).any(1)
    assert (plain ^ mirrored).all() and 0.3 < mirrored.mean() < 0.7


def test_training_with_mirrored_windows_learns_and_keeps_the_default_hash(one_thread):
    from selfpose.lifting.config import load_lifter_config
    from selfpose.lifting.loop import config_hash

    train = arrays(256, seed=0)
    cfg = LifterConfig(martinez=MartinezConfig(width=64, dropout=0.0), batch_size=32, steps=150, warmup_steps=0,
                       eval_every=50, lr=3e-3, val_fraction=0.0, threads=1, checkpoint_every=0, flip_train=True,
                       flip_test=True)
    lifter = fit_lifter(train, cfg, progress=False)
    err = float(np.linalg.norm(lifter.predict(train) - train.joints3d, axis=-1).mean())
    spread = float(np.linalg.norm(train.joints3d - train.joints3d.mean(0), axis=-1).mean())
    assert err < 0.8 * spread   # it learnt from the mirrored windows too (labels mirrored with them)
    base = load_lifter_config(None, {"method": "martinez"})
    assert config_hash(base) == config_hash(dataclasses.replace(base, flip_train=False, flip_test=False))
    assert config_hash(base) != config_hash(dataclasses.replace(base, flip_train=True))
