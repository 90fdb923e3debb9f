"""Tests of video writing (selfpose.viz.video), read back with selfpose.data.video."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.data.video import iter_frames, probe, read_frames
from selfpose.viz.skeleton import VizError
from selfpose.viz.video import VideoWriter, available_codec, write_video


def _frames(T: int, H: int, W: int) -> np.ndarray:
    """A moving white square over a colour ramp that changes with time (easy to compress, easy to check)."""
    f = np.zeros((T, H, W, 3), np.uint8)
    f[..., 0] = (np.arange(T) * 10)[:, None, None]
    f[..., 1] = np.linspace(0, 200, W, dtype=np.uint8)[None, None, :]
    f[..., 2] = 90
    for t in range(T):
        f[t, 10:30, 5 + t:25 + t] = 255
    return f


def test_round_trip_streamed_chunks_odd_size(tmp_path):
    T, H, W = 20, 63, 81
    fr = _frames(T, H, W)
    path = write_video(tmp_path / "a.mp4", (fr[i:i + 7] for i in range(0, T, 7)), fps=23.976)
    info = probe(path)
    assert info.num_frames == T
    assert abs(info.fps - 24000 / 1001) < 1e-3
    back = read_frames(path)
    # yuv420p needs even sides: one black column/row padded on the right/bottom
    assert back.shape == (T, H + 1, W + 1, 3)
    assert np.abs(back[:, :H, :W].astype(int) - fr.astype(int)).mean() < 6.0
    assert back[:, H, :, :].mean() < 20  # the padding is black
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]  # no partial file left


def test_single_frames_and_whole_array_and_mpeg4(tmp_path):
    fr = _frames(6, 32, 48)
    p1 = write_video(tmp_path / "one.mp4", list(fr), fps=10)           # (H, W, 3) frames one by one
    p2 = write_video(tmp_path / "two.mp4", fr, fps=10, codec="mpeg4")  # one (T, H, W, 3) array
    for p in (p1, p2):
        back = np.concatenate(list(iter_frames(p)))
        assert back.shape == fr.shape
        assert np.abs(back.astype(int) - fr.astype(int)).mean() < 8.0
    assert probe(p2).codec == "mpeg4"
    assert available_codec() in ("libx264", "mpeg4")


def test_bad_frames_leave_no_file(tmp_path):
    with pytest.raises(VizError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 8, 8, 3), np.float32), fps=5)
    with pytest.raises(VizError, match="differs"):
        write_video(tmp_path / "s.mp4", [np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 10, 8, 3), np.uint8)],
                    fps=5)
    with pytest.raises(VizError, match="no frame"):
        write_video(tmp_path / "e.mp4", [], fps=5)
    with pytest.raises(VizError, match="fps"):
        VideoWriter(tmp_path / "z.mp4", fps=0)
    assert list(tmp_path.iterdir()) == []
