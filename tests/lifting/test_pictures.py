"""The lifter picture: frame picks along the error distribution and the figure itself."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.lifting.pictures import error_frames, frame_errors, lifting_figure


def _poses(n=20, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 300, (n, 17, 3))
    # frame i is shifted by i mm along x at every joint, pelvis included, plus a global offset: after pelvis-
    # centring (what the metric does) the prediction equals the truth; the tests add per-joint errors on top
    pred = truth.copy()
    pred[:, :, 0] += np.arange(n)[:, None]
    pred += np.array([500.0, -20.0, 3000.0])
    return pred, truth


def test_frame_errors_are_pelvis_centred_mpjpe():
    pred, truth = _poses()
    np.testing.assert_allclose(frame_errors(pred, truth), np.zeros(20), atol=1e-9)   # uniform shift: no error
    pred[:, 1:, 0] += np.arange(20)[:, None]
    np.testing.assert_allclose(frame_errors(pred, truth), np.arange(20) * 16 / 17, atol=1e-9)
    with pytest.raises(ValueError, match="N, J, 3"):
        frame_errors(pred[:, :, :2], truth[:, :, :2])


def test_error_frames_pick_best_median_worst_and_skip_nan():
    e = np.array([5.0, np.nan, 1.0, 9.0, 3.0, 7.0])
    assert error_frames(e, (0, 50, 100)).tolist() == [2, 0, 3]   # median of 1, 3, 5, 7, 9 is 5 (index 0)
    with pytest.raises(ValueError, match="percentiles"):
        error_frames(e, (120,))
    with pytest.raises(ValueError, match="no finite"):
        error_frames(np.full(3, np.nan))


def test_lifting_figure_draws_one_row_per_percentile():
    pred, truth = _poses()
    pred[:, 1:, 0] += np.arange(20)[:, None]
    labels = [f"frame {i}" for i in range(20)]
    fig = lifting_figure(pred, truth, labels, percentiles=(0, 50, 100))
    axes = [a for a in fig.axes if hasattr(a, "get_zlim")]
    assert len(axes) == 3 * 2                      # three frames × front and side views
    titles = [a.get_title() for a in axes]
    assert any("worst" in t and "frame 19" in t for t in titles) and any("best" in t and "frame 0" in t for t in titles)
    with pytest.raises(ValueError, match="labels"):
        lifting_figure(pred, truth, labels[:3])
