"""Temporal windows over flat frame arrays: bounds, edge padding, tiling."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.lifting.data import LiftingDataError
from selfpose.lifting.windows import context_index, sequence_bounds, tile_sequences, window_index


def test_bounds_of_contiguous_sequences():
    s, e = sequence_bounds(np.array(["a", "a", "a", "b", "b", "c"]))
    assert s.tolist() == [0, 0, 0, 3, 3, 5] and e.tolist() == [3, 3, 3, 5, 5, 6]
    with pytest.raises(LiftingDataError, match="contiguous"):
        sequence_bounds(np.array(["a", "b", "a"]))


def test_windows_repeat_the_edge_frames_and_never_cross_sequences():
    seq = np.array(["a"] * 4 + ["b"] * 3)
    s, e = sequence_bounds(seq)
    # a window of 5 centred on frame 0 of "a" and on frame 1 of "b" (flat index 5)
    idx = window_index(s[[0, 5]], e[[0, 5]], np.array([-2, 3]), 5)
    assert idx.tolist() == [[0, 0, 0, 1, 2], [4, 4, 5, 6, 6]]
    inp, tgt = context_index(s[[1]], e[[1]], np.array([1]), clip=2, before=1, after=2)
    assert inp.tolist() == [[0, 1, 2, 3, 3]] and tgt.tolist() == [[1, 2]]


def test_tiles_cover_every_frame_without_padding_when_the_sequence_is_long_enough():
    seq = np.array(["a"] * 10 + ["b"] * 3)
    s, e = sequence_bounds(seq)
    firsts = tile_sequences(s, e, 4)
    assert firsts.tolist() == [0, 4, 6, 10]           # the last clip of "a" moves back to end on frame 9
    covered = set()
    for f in firsts:
        covered |= {int(i) for i in range(f, min(f + 4, e[f]))}
    assert covered == set(range(13))
