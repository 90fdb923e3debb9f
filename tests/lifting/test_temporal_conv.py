"""temporal_conv: receptive field, centred vs causal alignment, training on windows, resume, per-method defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfpose.config import ConfigError
from selfpose.lifting.config import TemporalConvConfig, load_lifter_config
from selfpose.lifting.temporal_conv import TemporalConvLifter, filter_widths
from selfpose.lifting.train import LifterConfig, fit_lifter

from .test_martinez import arrays


def test_receptive_field_and_output_length():
    assert filter_widths(27) == [3, 3, 3] and filter_widths(243) == [3] * 5
    with pytest.raises(ConfigError, match="power of 3"):
        filter_widths(30)
    net = TemporalConvLifter(10, 6, receptive_field=27, channels=16, dropout=0.0).eval()
    assert net.context == (13, 13)
    assert net(torch.randn(2, 27 + 4, 10)).shape == (2, 5, 6)
    assert TemporalConvLifter(10, 6, receptive_field=9, channels=8, causal=True).context == (8, 0)


def test_each_output_sees_exactly_its_receptive_field():
    """Changing an input frame changes exactly the outputs whose window holds it (centred and causal)."""
    for causal in (False, True):
        torch.manual_seed(0)
        net = TemporalConvLifter(4, 3, receptive_field=9, channels=8, dropout=0.0, causal=causal).eval()
        x = torch.randn(1, 20, 4)
        y0 = net(x)
        x2 = x.clone()
        x2[0, 10] += 5.0
        changed = (net(x2) - y0).abs().sum(-1)[0] > 1e-6
        # output k sees input frames k .. k+8
        assert changed.nonzero().flatten().tolist() == list(range(2, 11))


def test_trains_on_windows_and_predicts_every_frame():
    a = arrays(96)
    cfg = LifterConfig(method="temporal_conv", temporal_conv=TemporalConvConfig(receptive_field=3, channels=32,
                                                                              dropout=0.0, clip=4),
                       steps=120, batch_size=16, warmup_steps=0, eval_every=40, lr=3e-3, val_fraction=0.0, threads=1)
    lifter = fit_lifter(a, cfg, None, progress=False)
    curve = lifter.info["curve"]
    assert curve[-1]["train_loss"] < 0.6 * curve[0]["train_loss"]
    pred = lifter.predict(a)
    assert pred.shape == (96, 17, 3) and np.isfinite(pred).all() and np.allclose(pred[:, 0], 0)


def test_a_method_name_selects_its_defaults_and_overrides_win():
    assert load_lifter_config(None, ["method=temporal_conv"]).batch_size == 128
    assert load_lifter_config(None, ["method=martinez"]).batch_size == 256
    assert load_lifter_config(None, ["method=temporal_conv", "batch_size=7"]).batch_size == 7
    with pytest.raises(ConfigError, match="method"):
        load_lifter_config(None, ["method=nope"])


def test_resume_continues_exactly(tmp_path):
    """Interrupted after a checkpoint, then resumed: the same weights as one uninterrupted run."""
    a = arrays(64)
    kw = dict(method="temporal_conv", temporal_conv=TemporalConvConfig(receptive_field=3, channels=16, clip=2),
              steps=12, batch_size=8, warmup_steps=0, eval_every=4, val_fraction=0.0, threads=1, checkpoint_every=4)
    whole = fit_lifter(a, LifterConfig(**kw), None, progress=False, run_dir=tmp_path / "whole")
    part = LifterConfig(**{**kw, "max_seconds": 1e-9})   # stops after its first step … and checkpoints there
    fit_lifter(a, part, None, progress=False, run_dir=tmp_path / "part")
    resumed = fit_lifter(a, LifterConfig(**kw), None, progress=False, run_dir=tmp_path / "part", resume=True)
    assert resumed.info["steps_done"] == 12
    for (k, v), w in zip(whole.net.state_dict().items(), resumed.net.state_dict().values()):
        assert torch.equal(v, w), k


def test_prediction_window_length_changes_nothing_but_the_cost():
    """``predict(clip=...)``: windows of any length give the same 3D (edge padding stays within a sequence);
    a one-frame sequence is lifted from copies of its frame; a window of no frames is refused."""
    from selfpose.lifting.model import LifterError

    a = arrays(40)
    cfg = LifterConfig(method="temporal_conv", temporal_conv=TemporalConvConfig(receptive_field=9, channels=16,
                                                                              dropout=0.0, clip=4),
                       steps=5, batch_size=8, warmup_steps=0, eval_every=5, val_fraction=0.0, threads=1)
    lifter = fit_lifter(a, cfg, None, progress=False)
    full = lifter.predict(a)
    for clip in (1, 7, 64):
        np.testing.assert_allclose(lifter.predict(a, clip=clip), full, atol=1e-4)
    one = a.subset(np.array([10]))
    one.sequences = np.array(["alone"])
    copies = a.subset(np.full(9, 10))
    copies.sequences = np.array(["copies"] * 9)
    np.testing.assert_allclose(lifter.predict(one, clip=1)[0], lifter.predict(copies)[4], atol=1e-4)
    with pytest.raises(LifterError, match="clip"):
        lifter.predict(a, clip=0)
