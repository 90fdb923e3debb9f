"""The label-free motion energy that lets multi-view synchronisation skip still frames."""

import numpy as np
import pytest

from selfpose.data.motion import motion_energy, moving_mask


def _video(T=60, still=range(20, 40)):
    """A grey 32×32 video with a bright square that moves 2 px a frame, except in the ``still`` frames."""
    frames = np.full((T, 32, 32, 3), 90, np.uint8)
    x = 0
    for t in range(T):
        if t not in still:
            x = (x + 2) % 24
        frames[t, 10:18, x:x + 8] = 230
    return frames


def test_energy_is_zero_where_nothing_moves_and_positive_where_the_square_moves():
    e = motion_energy(_video(), gap=2, stride=1)
    assert e.shape == (60,) and e.dtype == np.float32
    assert np.all(e[23:38] == 0)              # ±2 frames inside the still block: identical frames
    assert np.all(e[3:18] > 1) and np.all(e[43:57] > 1)
    # stride only subsamples the grid: the same ordering of still and moving frames
    e4 = motion_energy(_video(), gap=2, stride=4)
    assert np.all(e4[23:38] == 0) and np.all(e4[3:18] > 0)


def test_moving_mask_skips_the_still_fraction():
    e = motion_energy(_video(), gap=2, stride=1)
    keep = moving_mask(e, 0.3)
    assert not keep[22:38].any()              # the 16 still frames are among the 18 skipped
    assert keep.sum() == 60 - 18
    assert moving_mask(e, 0.0).all()
    assert moving_mask(np.zeros(10), 0.5).all()   # a still video: nothing to rank, everything kept


def test_motion_errors():
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        motion_energy(np.zeros((5, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="gap"):
        motion_energy(np.zeros((5, 4, 4, 3), np.uint8), gap=0)
    with pytest.raises(ValueError, match="still_fraction"):
        moving_mask(np.zeros(4), 1.0)
    assert motion_energy(np.zeros((1, 4, 4, 3), np.uint8)).tolist() == [0.0]
