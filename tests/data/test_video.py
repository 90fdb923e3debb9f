"""Video probing and decoding: synthetic clips made in the test, and the real clips in ../shared/data/videos."""

from __future__ import annotations

import os

import numpy as np
import pytest

from selfpose.data.video import VideoError, VideoInfo, frame_transform, iter_frames, probe, read_frames

W, H, T = 96, 64, 30


def write_clip(path, num_frames=T, width=W, height=H, fps=25, codec="mpeg4"):
    """A clip whose frame ``i`` is grey with a white 8×8 square at x = 8 + 2·i: the square tells the frame."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for i in range(num_frames):
            img = np.full((height, width, 3), 60, np.uint8)
            x = 8 + 2 * i
            img[24:32, x:x + 8] = 255
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def square_x(frame: np.ndarray) -> float:
    """Centre column of the bright square, pixels."""
    cols = np.where((frame[..., 0] > 180).any(axis=0))[0]
    return float(cols.mean())


@pytest.fixture()
def clip(tmp_path):
    return write_clip(tmp_path / "clip.avi")


def test_probe_synthetic(clip):
    info = probe(clip)
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height, info.fps, info.num_frames) == (W, H, 25.0, T)
    assert info.codec == "mpeg4" and info.rotation == 0


def test_iter_frames_step_max_and_chunks(clip):
    chunks = list(iter_frames(clip, step=7, chunk=2))
    assert [len(c) for c in chunks] == [2, 2, 1]  # frames 0, 7, 14, 21, 28
    frames = np.concatenate(chunks)
    assert frames.dtype == np.uint8 and frames.shape == (5, H, W, 3)
    # The kept frame k is source frame 7k: its square sits at x = 8 + 2·7k (+3.5 to its centre).
    np.testing.assert_allclose([square_x(f) for f in frames], 11.5 + 14 * np.arange(5), atol=1.0)
    assert len(read_frames(clip, step=3, max_frames=4)) == 4


def test_letterbox_size_keeps_aspect_and_pads(clip):
    frames = read_frames(clip, size=48)
    assert frames.shape == (T, 48, 48, 3)
    tf = frame_transform(probe(clip), 48)
    assert (tf.rw, tf.rh, tf.px, tf.py) == (48, 32, 0, 8)
    assert frames[:, :8].max() == 0 and frames[:, 40:].max() == 0  # black bars above and below
    assert frames[:, 8:40].mean() > 50
    # The square's centre maps through the same transform the labels use.
    x_src = 8 + 2 * 10 + 3.5
    assert abs(square_x(frames[10]) - tf.points(np.array([x_src, 27.5]))[0]) < 1.0


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        probe(tmp_path / "nope.mp4")
    with pytest.raises(VideoError, match="not found"):
        next(iter_frames(tmp_path / "nope.mp4"))


def test_garbage_file(tmp_path):
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(VideoError, match="garbage.mp4.*corrupt"):
        probe(bad)
    with pytest.raises(VideoError, match="garbage.mp4"):
        read_frames(bad)


def test_truncated_file(tmp_path, clip):
    data = clip.read_bytes()
    head = tmp_path / "head.avi"  # index intact, data cut: fewer frames than listed
    head.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="head.avi.*truncated"):
        read_frames(head)
    stub = tmp_path / "stub.avi"  # only the first bytes
    stub.write_bytes(data[:300])
    with pytest.raises(VideoError, match="stub.avi"):
        read_frames(stub)


def test_zero_decodable_frames(tmp_path):
    import av

    empty = tmp_path / "empty.avi"
    with av.open(str(empty), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height = W, H
        c.start_encoding()
    with pytest.raises(VideoError, match="empty.avi has no decodable video frame"):
        probe(empty)
    with pytest.raises(VideoError, match="no decodable video frame"):
        read_frames(empty)


@pytest.mark.parametrize("name, frames, fps, size", [
    ("hybrik_taiji.mp4", 412, 23.976, (1280, 720)),
    ("mmaction2_ntu_S001C001P001R001A001_rgb.avi", 103, 30.0, (1920, 1080)),
    ("single_person_demo.mp4", 40, 12.0, (1080, 1920)),
])
def test_real_videos(shared_data, name, frames, fps, size):
    path = shared_data / "videos" / name
    if not path.is_file():
        pytest.skip(f"real video {path} not found")
    info = probe(path)
    assert abs(info.fps - fps) < 0.01 and (info.width, info.height) == size
    assert abs(info.num_frames - frames) <= 1
    step = 8
    decoded = read_frames(path, size=32, step=step)
    assert decoded.shape == (-(-frames // step), 32, 32, 3)
    assert decoded.std() > 5  # real pictures, not blank frames


def test_display_rotation_is_applied(tmp_path):
    """Phones store portrait video as rotated landscape plus a display matrix: frames come out upright."""
    import av

    path = tmp_path / "rot.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.set_display_rotation(90)  # counter-clockwise
        img = np.full((H, W, 3), 60, np.uint8)
        img[:8, :8] = 255  # a mark in the coded frame's top-left corner
        for _ in range(3):
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (H, W, 90)
    frames = read_frames(path)
    assert frames.shape == (3, W, H, 3)
    # Turned a quarter counter-clockwise, the top-left corner is now the bottom-left one.
    ys, xs = np.nonzero(frames[0, ..., 0] > 200)
    assert ys.mean() > W - 10 and xs.mean() < 10
