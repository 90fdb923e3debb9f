"""Per-frame image features appended to the lifter's input (the image path's features feeding the transformer)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from selfpose.evaluation.metrics import mpjpe
from selfpose.lifting.config import load_lifter_config
from selfpose.lifting.data import LiftingDataError, encode
from selfpose.lifting.model import LifterError
from selfpose.lifting.train import fit_lifter

from .test_martinez import J, arrays

pytestmark = pytest.mark.usefixtures("one_thread")


def with_depth(a, noise_mm: float = 0.0, seed: int = 0):
    """The arrays with a feature that holds what 2D cannot: every joint's depth (mm, pelvis-relative)."""
    z = a.joints3d[..., 2] + np.random.default_rng(seed).normal(0, noise_mm, a.joints3d[..., 2].shape)
    return dataclasses.replace(a, features=z.astype(np.float32))


def test_features_are_appended_after_the_keypoint_columns():
    a = with_depth(arrays(8))
    x, x0 = encode(a), encode(dataclasses.replace(a, features=None))
    assert x.shape == (8, 3 * J + 2 + J) and np.array_equal(x[:, :3 * J + 2], x0)
    assert np.allclose(x[:, 3 * J + 2:], a.features)
    w = encode(a, np.arange(8).reshape(2, 4))          # windows carry them too
    assert w.shape == (2, 4, 3 * J + 2 + J)
    with pytest.raises(LiftingDataError, match=r"\(N, F\)"):
        dataclasses.replace(a, features=np.zeros((3, 2), np.float32))


def test_a_lifter_uses_features_that_hold_the_depth():
    """Random poses: depth is not in the 2D at all; a feature that carries it must lower the error on new frames."""
    cfg = load_lifter_config(None, ["martinez.width=64", "martinez.dropout=0", "batch_size=64", "steps=800",
                                    "val_fraction=0", "threads=1", "warmup_steps=0", "lr=3e-3"])
    train, test = arrays(512, seed=0), arrays(128, seed=1)
    plain = fit_lifter(train, cfg, None, progress=False)
    seen = fit_lifter(with_depth(train), cfg, None, progress=False)
    assert seen.feature_dim == J and plain.feature_dim == 0
    e_plain = mpjpe(plain.predict(test), test.joints3d)
    e_seen = mpjpe(seen.predict(with_depth(test)), test.joints3d)
    assert e_seen < 0.8 * e_plain, (e_seen, e_plain)   # measured: 158 against 236 mm
    # the wrong input is a one-line refusal, either way round
    with pytest.raises(LifterError, match="17 image features per frame"):
        seen.predict(test)
    with pytest.raises(LifterError, match="keypoints only"):
        plain.predict(with_depth(test))


def test_pose_machine_takes_features_and_keeps_its_visibility_columns():
    from .test_pose_machine import tiny_cfg

    a = with_depth(arrays(64))
    lifter = fit_lifter(a, tiny_cfg("steps=2", "pose_machine.projector_steps=1"), None, progress=False)
    assert lifter.feature_dim == J
    out = lifter.predict(a, correction=True)
    assert out.shape == (64, J, 3) and np.isfinite(out).all()
