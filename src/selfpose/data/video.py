"""Video decoding with PyAV: probe a file, stream its frames in resized chunks.

Frames come out as uint8 RGB, upright (a rotation stored in the file's
display matrix, as phones write it, is applied), optionally letterboxed into
``size × size`` (see :class:`~selfpose.data.datasets.framing.FrameTransform`):
the short side is padded with black so that every stored frame of every
video has the same size and the pixels keep their aspect ratio. Decoding uses
FFmpeg's frame/slice threads; resizing uses OpenCV's ``INTER_AREA`` (no
aliasing when shrinking). Frames skipped by ``step`` are decoded (inter-coded
video needs them) but never converted or resized.

Errors are :class:`VideoError` and name the file: missing, unreadable or
corrupt, no video stream, a decoding failure part-way (with the number of
frames decoded before it), fewer decodable frames than the container's index
lists (a truncated file), or no decodable frame at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from selfpose.data.datasets.framing import FrameTransform
from selfpose.errors import SelfposeError

#: File extensions treated as videos when scanning folders.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".mts")


class VideoError(SelfposeError, RuntimeError):
    """A video file is missing, unreadable, corrupt or has no frames."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video.

    Attributes:
        fps: frames per second (the stream's average rate).
        num_frames: frame count from the container, an estimate (containers
            may be wrong by a frame or two; :func:`iter_frames` yields the truth).
        width, height: size of the upright frame, pixels (after rotation).
        codec: the video codec's name (``h264``, ``mpeg4``, ...).
        rotation: degrees counter-clockwise applied to decoded frames (0, 90, 180, 270).
        duration_s: duration in seconds (0 when unknown).
    """

    fps: float
    num_frames: int
    width: int
    height: int
    codec: str
    rotation: int = 0
    duration_s: float = 0.0


def _open(path: Path):
    import av

    path = Path(path)
    if not path.exists():
        raise VideoError(f"video {path} not found")
    if not path.is_file():
        raise VideoError(f"{path} is not a file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoError(f"cannot open video {path}: {e} — the file is corrupt, truncated or not a video "
                         "that FFmpeg can read") from e
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path} has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame + slice threads: several times faster on long videos
    return container, stream


def _fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(Fraction(rate))
    return 0.0


def _rotation(frame) -> int:
    rot = getattr(frame, "rotation", 0) or 0
    return int(round(rot / 90.0)) % 4 * 90


def _upright(img: np.ndarray, rotation: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(img, k=rotation // 90)) if rotation else img


def probe(path: str | os.PathLike) -> VideoInfo:
    """Frame rate, estimated frame count, upright size and codec of a video.

    Decodes the first frame, so an unreadable file fails here, early.
    """
    import av

    path = Path(path)
    container, stream = _open(path)
    try:
        fps = _fps(stream)
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        if not duration and container.duration:
            duration = container.duration / 1e6
        n = stream.frames or (int(round(duration * fps)) if fps else 0)
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as e:
            raise VideoError(f"cannot decode video {path}: {e} — the file is corrupt or truncated") from e
        if first is None:
            raise VideoError(f"{path} has no decodable video frame")
        rot = _rotation(first)
        w, h = (first.height, first.width) if rot in (90, 270) else (first.width, first.height)
        if not fps:
            raise VideoError(f"{path} does not say its frame rate; re-encode it with a constant frame rate")
        return VideoInfo(fps=fps, num_frames=int(n), width=int(w), height=int(h),
                         codec=stream.codec_context.name, rotation=rot, duration_s=duration)
    finally:
        container.close()


def frame_transform(info: VideoInfo, size: int | None) -> FrameTransform:
    """The letterbox mapping :func:`iter_frames` applies for ``size`` (None/0 = unchanged)."""
    return FrameTransform.letterbox(info.width, info.height, size or 0)


def iter_frames(path: str | os.PathLike, size: int | None = None, step: int = 1, max_frames: int | None = None,
                chunk: int = 32) -> Iterator[np.ndarray]:
    """Decode a video in chunks.

    Args:
        path: the video file.
        size: letterbox every frame into ``size × size`` pixels (aspect kept,
            black padding centred); None or 0 keeps the source size.
        step: keep every ``step``-th decoded frame (frame ``i·step`` of the video).
        max_frames: stop after this many kept frames (None or 0 = all).
        chunk: frames per yielded array.

    Yields:
        ``(n, H, W, 3)`` uint8 RGB arrays, ``n <= chunk``, in frame order; the
        kept frame ``k`` of the whole stream is the video's frame ``k·step``.

    Raises:
        VideoError: missing/corrupt file, a decoding failure, or no frame.
    """
    import av

    if step < 1 or chunk < 1:
        raise ValueError(f"step and chunk must be >= 1, got step={step}, chunk={chunk}")
    path = Path(path)
    container, stream = _open(path)
    tf: FrameTransform | None = None
    buf: list[np.ndarray] = []
    kept = decoded = 0
    try:
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.FFmpegError as e:
                raise VideoError(f"decoding {path} failed after {decoded} frames: {e} — the file is corrupt "
                                 "or truncated; re-encode or remove it") from e
            decoded += 1
            if (decoded - 1) % step:
                continue
            img = _upright(frame.to_ndarray(format="rgb24"), _rotation(frame))
            if tf is None:
                tf = FrameTransform.letterbox(img.shape[1], img.shape[0], size or 0)
            elif img.shape[:2] != (tf.y1, tf.x1):
                raise VideoError(f"{path}: frame {decoded - 1} is {img.shape[1]}x{img.shape[0]}, the first was "
                                 f"{tf.x1}x{tf.y1}; videos whose size changes are not supported")
            buf.append(tf.image(img))
            kept += 1
            if len(buf) == chunk:
                yield np.stack(buf)
                buf = []
            if max_frames and kept >= max_frames:
                break
        if kept == 0:
            raise VideoError(f"{path} has no decodable video frame")
        expected = stream.frames
        if not (max_frames and kept >= max_frames) and expected and decoded < expected - max(2, expected // 100):
            # The container's index promises more frames than the data holds: a cut-off file.
            raise VideoError(f"{path} is truncated or corrupt: its index lists {expected} frames but only "
                             f"{decoded} could be decoded; re-encode or remove it")
        if buf:
            yield np.stack(buf)
    finally:
        container.close()


def read_frames(path: str | os.PathLike, **kwargs) -> np.ndarray:
    """All (kept) frames of a short video as one ``(T, H, W, 3)`` array; see :func:`iter_frames`."""
    return np.concatenate(list(iter_frames(path, **kwargs)))
