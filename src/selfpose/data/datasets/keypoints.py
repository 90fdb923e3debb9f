"""2D keypoint files for videos (weak labels, docs/design.md §1.1 Eq. 13).

One file per video, ``<video stem>.npz`` or ``<video stem>.json``, one row per
*source* video frame, coordinates in source-video pixels (of the upright
frame), as written by an off-the-shelf 2D detector:

- ``.npz``: the array under ``keypoints`` (or the file's only array),
  optional ``skeleton`` (``"coco17"``, ``"mediapipe33"``, ``"h36m17"``) and
  ``normalized`` (bool) entries;
- ``.json``: either the nested list itself or
  ``{"keypoints": [...], "skeleton": ..., "normalized": ...}``; a frame
  without a detection may be ``null`` or ``[]``.

Shapes: ``(T, 17, C)`` COCO-17 (or Human3.6M-17 when ``skeleton`` says so),
``(T, 33, C)`` MediaPipe-33. Channels ``C``: 2 = x, y; 3 = x, y, confidence;
4 = x, y, z, confidence (MediaPipe's x, y, z, visibility; z is ignored).
``normalized`` coordinates (MediaPipe's default, in [0, 1] of the frame)
are scaled by the frame size.

Converted to the house skeleton with :func:`~selfpose.geometry.skeleton.to_h36m`:
a joint with confidence 0 or non-finite coordinates is unknown (NaN), and a
house joint derived from unknown joints is unknown too (confidence 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selfpose.data.datasets.config import PrepareError
from selfpose.data.datasets.files import read_json, read_npz
from selfpose.data.datasets.framing import FrameTransform
from selfpose.geometry.skeleton import to_h36m

KEYPOINT_SUFFIXES = (".npz", ".json")
_BY_JOINTS = {17: "coco17", 33: "mediapipe33"}


@dataclass(frozen=True)
class Keypoints2D:
    """Detected 2D keypoints of one video in its source skeleton.

    Attributes:
        xy: ``(T, J, 2)`` source-video pixels, NaN = unknown.
        conf: ``(T, J)`` confidence in [0, 1] (0 where unknown).
        skeleton: the source skeleton's name.
        path: the file they came from.
    """

    xy: np.ndarray
    conf: np.ndarray
    skeleton: str
    path: Path

    def __len__(self) -> int:
        return len(self.xy)

    def to_house(self, frames: np.ndarray, transform: FrameTransform) -> tuple[np.ndarray, np.ndarray]:
        """House-order keypoints of source frames ``frames`` in stored pixels.

        Args:
            frames: ``(n,)`` source frame indices; those beyond the file are unknown.
            transform: source frame → stored frame.

        Returns:
            ``(joints2d (n, 17, 2) float32 px, joints2d_conf (n, 17) float32)``.
        """
        frames = np.asarray(frames, dtype=np.int64)
        inside = frames < len(self.xy)
        xy = np.full((len(frames),) + self.xy.shape[1:], np.nan)
        conf = np.zeros((len(frames), self.xy.shape[1]))
        xy[inside], conf[inside] = self.xy[frames[inside]], self.conf[frames[inside]]
        j2d, _ = to_h36m(xy, self.skeleton)
        c17, _ = to_h36m(conf[..., None], self.skeleton)
        c17 = c17[..., 0]
        known = np.isfinite(j2d).all(-1)
        c17 = np.where(known, np.nan_to_num(c17), 0.0)
        return transform.points(j2d).astype(np.float32), np.clip(c17, 0, 1).astype(np.float32)


def find_keypoints(video: Path, folder: Path | None = None) -> Path | None:
    """The keypoint file of ``video``: ``folder/<stem>.npz|json`` first, then beside the video."""
    dirs = ([folder] if folder is not None else []) + [video.parent]
    for d in dirs:
        for suffix in KEYPOINT_SUFFIXES:
            cand = d / (video.stem + suffix)
            if cand.is_file() and cand != video:
                return cand
    return None


def _json_array(data, path: Path) -> np.ndarray:
    """Nested lists with ``null``/``[]`` frames → ``(T, J, C)`` float with NaN rows."""
    if not isinstance(data, list) or not data:
        raise PrepareError(f"{path}: 'keypoints' must be a non-empty list of frames")
    shape = None
    for frame in data:
        if frame:
            shape = np.asarray(frame, dtype=np.float64).shape
            break
    if shape is None or len(shape) != 2:
        raise PrepareError(f"{path}: each frame must be a list of J joints of 2-4 numbers (or null)")
    out = np.full((len(data),) + shape, np.nan)
    for t, frame in enumerate(data):
        if frame:
            try:
                out[t] = np.asarray(frame, dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise PrepareError(f"{path}: frame {t} has the wrong shape (expected {shape}): {e}") from e
    return out


def load_keypoints(path: str | Path, width: int, height: int) -> Keypoints2D:
    """Read a keypoint file (see the module docstring) for a ``width × height`` video.

    Raises:
        PrepareError: unreadable file, unknown layout, or coordinates that look
            normalised without ``normalized`` being set.
    """
    path = Path(path)
    if not path.is_file():
        raise PrepareError(f"keypoint file {path} not found")
    skeleton, normalized = None, False
    if path.suffix == ".npz":
        d = read_npz(path)
        arrays = {k: v for k, v in d.items() if k not in ("skeleton", "normalized")}
        if "keypoints" in d:
            kp = np.asarray(d["keypoints"], dtype=np.float64)
        elif len(arrays) == 1:
            kp = np.asarray(next(iter(arrays.values())), dtype=np.float64)
        else:
            raise PrepareError(f"{path}: put the keypoints under the key 'keypoints' (found {', '.join(d)})")
        skeleton = str(d["skeleton"]) if "skeleton" in d else None
        normalized = bool(d["normalized"]) if "normalized" in d else False
    elif path.suffix == ".json":
        data = read_json(path)
        if isinstance(data, dict):
            if "keypoints" not in data:
                raise PrepareError(f"{path}: a JSON object needs a 'keypoints' entry")
            skeleton = data["skeleton"] if "skeleton" in data else None
            normalized = bool(data["normalized"]) if "normalized" in data else False
            data = data["keypoints"]
        kp = _json_array(data, path)
    else:
        raise PrepareError(f"{path}: keypoint files must be .npz or .json")
    if kp.ndim != 3 or not 2 <= kp.shape[2] <= 4:
        raise PrepareError(f"{path}: keypoints must have shape (T, J, 2|3|4), got {kp.shape}")
    J, C = kp.shape[1], kp.shape[2]
    skeleton = skeleton or _BY_JOINTS.get(J)
    known = {"coco17": 17, "h36m17": 17, "mediapipe33": 33}
    if skeleton not in known:
        raise PrepareError(f"{path}: {J} joints per frame; supported: COCO-17 (17), MediaPipe-33 (33), "
                           f"or 17 with skeleton='h36m17' (got skeleton={skeleton!r})")
    if known[skeleton] != J:
        raise PrepareError(f"{path}: skeleton {skeleton!r} has {known[skeleton]} joints, the file has {J}")
    if C == 4 and skeleton != "mediapipe33":
        raise PrepareError(f"{path}: 4 channels (x, y, z, visibility) are only meaningful for MediaPipe-33")
    xy = kp[..., :2].copy()
    conf = np.ones(kp.shape[:2]) if C == 2 else np.clip(np.nan_to_num(kp[..., C - 1]), 0, 1)
    if normalized:
        xy *= np.array([width, height], dtype=np.float64)
    else:
        finite = xy[np.isfinite(xy).all(-1) & (conf > 0)]
        if len(finite) and max(width, height) > 64 and np.abs(finite).max() <= 1.5:
            raise PrepareError(f"{path}: all coordinates are within [0, 1.5] for a {width}x{height} video: they "
                               "look normalised; store pixels, or set 'normalized' to true in the file")
    unknown = ~np.isfinite(xy).all(-1) | (conf <= 0)
    xy[unknown] = np.nan
    conf = np.where(unknown, 0.0, conf)
    return Keypoints2D(xy=xy, conf=conf, skeleton=skeleton, path=path)
