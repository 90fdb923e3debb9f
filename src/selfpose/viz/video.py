"""Writing videos (overlays, reconstructions) with PyAV, streamed chunk by chunk.

Frames are uint8 RGB. They are encoded as H.264 (``libx264``) when PyAV's
FFmpeg build has it — every browser and player shows it — and as MPEG-4 Part 2
(``mpeg4``) otherwise. Both use 4:2:0 chroma (``yuv420p``), which needs an
even width and height: odd sizes are padded with one black column/row on the
right/bottom (never resized, so pixel coordinates drawn on a frame stay right).

The file is written to a temporary name beside ``path`` and renamed into place
when complete, so an interrupted write never leaves a truncated video that
looks finished.
"""

from __future__ import annotations

import os
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from selfpose.errors import SelfposeError
from selfpose.viz.skeleton import VizError

#: Codecs tried in order (FFmpeg encoder names).
CODECS = ("libx264", "mpeg4")


class VideoWriteError(SelfposeError, RuntimeError):
    """A video could not be encoded or written (no encoder, disk full, bad path)."""


def available_codec(preferred: Iterable[str] = CODECS) -> str:
    """The first encoder of ``preferred`` that PyAV's FFmpeg build provides."""
    import av
    from av.codec import Codec

    tried = []
    for name in preferred:
        try:
            Codec(name, "w")
            return name
        except (ValueError, av.FFmpegError):  # PyAV raises UnknownCodecError (a ValueError) or FFmpegError by version
            tried.append(name)
    raise VideoWriteError(f"none of the video encoders {', '.join(tried)} is in PyAV's FFmpeg build; "
                          "install a PyAV wheel with libx264 (pip install av)")


def _rate(fps: float) -> Fraction:
    """``fps`` as the exact fraction video containers use (23.976 → 24000/1001)."""
    if not np.isfinite(fps) or fps <= 0:
        raise VizError(f"fps must be a positive number, got {fps}")
    return Fraction(float(fps)).limit_denominator(1001)


class VideoWriter:
    """Streamed video writing: ``with VideoWriter(path, fps) as w: w.write(chunk)``.

    Args:
        path: the output file (``.mp4`` recommended); parent folders are created.
        fps: frames per second.
        codec: an FFmpeg encoder name; default the first available of :data:`CODECS`.
        crf: quality for libx264 (lower = better, 18 ≈ visually lossless, 23 default).
        bitrate: bits per second for the other encoders (mpeg4 ignores crf).

    The frame size is fixed by the first frame written; every later frame must
    match it.
    """

    def __init__(self, path: str | os.PathLike, fps: float, codec: str | None = None, crf: int = 18,
                 bitrate: int = 4_000_000):
        self.path = Path(path)
        self.rate = _rate(fps)
        self.codec = codec or available_codec()
        self.crf, self.bitrate = int(crf), int(bitrate)
        self.num_frames = 0
        self.size: tuple[int, int] | None = None  # (height, width) of the frames given
        self._container = None
        self._stream = None
        self._tmp = self.path.with_name(f".{self.path.name}.partial-{uuid.uuid4().hex[:8]}{self.path.suffix}")

    # -- context ------------------------------------------------------------------------
    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open(self, height: int, width: int) -> None:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = av.open(str(self._tmp), mode="w", format="mp4" if self.path.suffix.lower()
                                      in (".mp4", ".m4v", ".mov") else None)
            stream = self._container.add_stream(self.codec, rate=self.rate)
        except (av.FFmpegError, OSError, ValueError) as e:
            self.abort()
            raise VideoWriteError(f"cannot create video {self.path} with encoder {self.codec}: {e}") from e
        # yuv420p halves chroma resolution: both sides must be even (padded in write()).
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        if self.codec == "libx264":
            stream.options = {"crf": str(self.crf), "preset": "veryfast"}
        else:
            stream.bit_rate = self.bitrate
        self._stream = stream
        self.size = (height, width)

    def write(self, frames: np.ndarray) -> None:
        """Append ``(H, W, 3)`` or ``(n, H, W, 3)`` uint8 RGB frames."""
        import av

        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise VizError(f"frames must be (n, H, W, 3) or (H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}")
        if len(frames) == 0:
            return
        h, w = frames.shape[1:3]
        if self._stream is None:
            self._open(h, w)
        elif (h, w) != self.size:
            raise VizError(f"frame size {w}x{h} differs from the video's first frame {self.size[1]}x{self.size[0]}")
        ph, pw = h % 2, w % 2
        if ph or pw:
            frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)))
        try:
            for img in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
                self.num_frames += 1
        except (av.FFmpegError, OSError) as e:
            self.abort()
            raise VideoWriteError(f"writing video {self.path} failed at frame {self.num_frames}: {e}") from e

    def close(self) -> Path:
        """Flush the encoder, finish the file and move it into place; returns the path."""
        import av

        if self._container is None:
            if self.num_frames == 0 and not self._tmp.exists():
                raise VizError(f"no frame was written to {self.path}; a video needs at least one frame")
            return self.path
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except (av.FFmpegError, OSError) as e:
            self.abort()
            raise VideoWriteError(f"finishing video {self.path} failed: {e}") from e
        self._container = None
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop and delete the partial file (no output is left)."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # already broken; the partial file is removed below either way
                pass
            self._container = None
        self._tmp.unlink(missing_ok=True)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray] | np.ndarray, fps: float,
                codec: str | None = None, crf: int = 18) -> Path:
    """Encode frames to a video file, streaming.

    Args:
        path: output file (``.mp4``); written atomically.
        frames: an iterable of ``(n, H, W, 3)`` uint8 RGB chunks (or single
            ``(H, W, 3)`` frames), or one ``(T, H, W, 3)`` array. Only one
            chunk is held at a time.
        fps: frames per second.
        codec: FFmpeg encoder (default: ``libx264`` when available, else ``mpeg4``).
        crf: libx264 quality (18 ≈ visually lossless).

    Returns:
        ``path``. Odd frame sizes are padded by one black row/column
        (bottom/right) for yuv420p.

    Raises:
        VizError: bad frames (shape, dtype, size change) or no frame at all.
        VideoWriteError: the encoder or the file system failed.
    """
    if isinstance(frames, np.ndarray) and frames.ndim == 4:
        frames = [frames]
    with VideoWriter(path, fps, codec=codec, crf=crf) as w:
        for chunk in frames:
            w.write(chunk)
        if w.num_frames == 0:
            raise VizError(f"no frame to write to {path}")
    return Path(path)
