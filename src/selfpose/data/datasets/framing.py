"""Frame geometry of the dataset preparers: source image → stored frame, and the labels with it.

Every preparer maps a source image (a dataset's image or a
decoded video frame) to a stored frame with one :class:`FrameTransform`, and
moves the 2D labels, boxes and camera with the *same* transform, so labels and
pixels always agree. Pixel coordinates follow OpenCV: integer coordinates are
pixel centres, so a resize by ``s`` maps ``u ↦ (u + 0.5)·s − 0.5``.

Two framings (``PrepareConfig.crop``):

- ``"full"`` (default): the whole source frame, resized to fit inside
  ``size × size`` keeping its aspect ratio, centred on a black canvas
  (letterbox). Every stored frame of every dataset is then ``size × size``,
  which is what the self-supervised models expect: they find the person with
  their own detector (docs/design.md §1.1).
- ``"person"``: one square per sequence around the union of its person boxes
  (times ``crop_scale``), resized to ``size × size``. One square per sequence
  (not per frame) keeps a single camera per sequence; for single-image
  sequences it is the usual per-image person crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selfpose.data.datasets.config import PrepareConfig, PrepareError
from selfpose.geometry.camera import Camera


@dataclass(frozen=True)
class FrameTransform:
    """Source image → stored frame.

    The source region ``[x0, x1) × [y0, y1)`` (integer pixels; it may extend
    past the image border, which is filled with black) is resized to
    ``rw × rh`` and pasted at ``(px, py)`` on a black ``width × height`` canvas.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    rw: int
    rh: int
    px: int
    py: int
    width: int
    height: int

    # -- construction -----------------------------------------------------
    @classmethod
    def letterbox(cls, src_w: int, src_h: int, size: int) -> "FrameTransform":
        """Fit a ``src_w × src_h`` frame into ``size × size`` keeping its aspect (0 = unchanged)."""
        if size == 0:
            return cls(0, 0, src_w, src_h, src_w, src_h, 0, 0, src_w, src_h)
        s = size / max(src_w, src_h)
        rw, rh = max(1, round(src_w * s)), max(1, round(src_h * s))
        return cls(0, 0, src_w, src_h, rw, rh, (size - rw) // 2, (size - rh) // 2, size, size)

    @classmethod
    def square_crop(cls, cx: float, cy: float, side: float, size: int) -> "FrameTransform":
        """The square of side ``side`` px centred at ``(cx, cy)``, resized to ``size × size`` (0 = unscaled)."""
        side_i = max(1, int(round(side)))
        x0, y0 = int(round(cx - side_i / 2)), int(round(cy - side_i / 2))
        out = size or side_i
        return cls(x0, y0, x0 + side_i, y0 + side_i, out, out, 0, 0, out, out)

    # -- mapping ----------------------------------------------------------
    @property
    def scale(self) -> tuple[float, float]:
        """``(sx, sy)``: stored pixels per source pixel."""
        return self.rw / (self.x1 - self.x0), self.rh / (self.y1 - self.y0)

    @property
    def offset(self) -> tuple[float, float]:
        """``(ox, oy)`` with ``u' = sx·u + ox`` (pixel-centre convention)."""
        sx, sy = self.scale
        return ((0.5 - self.x0) * sx - 0.5 + self.px, (0.5 - self.y0) * sy - 0.5 + self.py)

    def points(self, uv: np.ndarray) -> np.ndarray:
        """``(..., 2)`` source pixels → stored pixels (NaN stays NaN)."""
        uv = np.asarray(uv, dtype=np.float64)
        return uv * np.array(self.scale) + np.array(self.offset)

    def boxes(self, xyxy: np.ndarray) -> np.ndarray:
        """``(..., 4)`` boxes x0, y0, x1, y1 in source pixels → stored pixels."""
        xyxy = np.asarray(xyxy, dtype=np.float64)
        return self.points(xyxy.reshape(*xyxy.shape[:-1], 2, 2)).reshape(xyxy.shape)

    def camera(self, cam: Camera) -> Camera:
        """The camera of the stored frame (``cam`` at the source image's size)."""
        sx, sy = self.scale
        ox, oy = self.offset
        return cam.scaled(sx, sy).cropped(-ox, -oy, self.width, self.height)

    def image(self, img: np.ndarray) -> np.ndarray:
        """Apply to one ``(H, W, 3)`` uint8 image → ``(height, width, 3)`` uint8."""
        import cv2

        H, W = img.shape[:2]
        if (self.x0, self.y0, self.x1, self.y1) == (0, 0, W, H):
            region = img
        else:
            region = np.zeros((self.y1 - self.y0, self.x1 - self.x0) + img.shape[2:], dtype=img.dtype)
            ax0, ay0, ax1, ay1 = max(self.x0, 0), max(self.y0, 0), min(self.x1, W), min(self.y1, H)
            if ax1 > ax0 and ay1 > ay0:
                region[ay0 - self.y0:ay1 - self.y0, ax0 - self.x0:ax1 - self.x0] = img[ay0:ay1, ax0:ax1]
        if region.shape[1] != self.rw or region.shape[0] != self.rh:
            # INTER_AREA averages the source pixels under each output pixel (no
            # aliasing when shrinking); it degenerates when enlarging.
            shrink = self.rw < region.shape[1] and self.rh < region.shape[0]
            region = cv2.resize(np.ascontiguousarray(region), (self.rw, self.rh),
                                interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if (self.rw, self.rh, self.px, self.py) == (self.width, self.height, 0, 0):
            return np.ascontiguousarray(region)
        out = np.zeros((self.height, self.width) + img.shape[2:], dtype=img.dtype)
        out[self.py:self.py + self.rh, self.px:self.px + self.rw] = region
        return out

    def images(self, imgs: np.ndarray) -> np.ndarray:
        """Apply to ``(n, H, W, 3)`` → ``(n, height, width, 3)``."""
        out = np.empty((len(imgs), self.height, self.width) + imgs.shape[3:], dtype=imgs.dtype)
        for i, img in enumerate(imgs):
            out[i] = self.image(img)
        return out


def person_square(boxes: np.ndarray, scale: float = 1.0) -> tuple[float, float, float]:
    """``(cx, cy, side)`` of the square around the union of ``(N, 4)`` xyxy boxes (pixels)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0 = np.nanmin(boxes[:, 0]), np.nanmin(boxes[:, 1])
    x1, y1 = np.nanmax(boxes[:, 2]), np.nanmax(boxes[:, 3])
    return (x0 + x1) / 2, (y0 + y1) / 2, scale * max(x1 - x0, y1 - y0, 1.0)


def sequence_transform(cfg: PrepareConfig, src_w: int, src_h: int, boxes: np.ndarray | None) -> FrameTransform:
    """The framing ``cfg.crop`` asks for, for a sequence of ``src_w × src_h`` images."""
    if cfg.crop == "person":
        if boxes is None or not np.isfinite(boxes).any():
            raise PrepareError("crop='person' needs person boxes, and this sequence has none; use crop='full'")
        return FrameTransform.square_crop(*person_square(boxes, cfg.crop_scale), cfg.size)
    return FrameTransform.letterbox(src_w, src_h, cfg.size)


def joint_boxes(joints2d: np.ndarray, margin: float = 0.08) -> np.ndarray:
    """Person boxes ``(N, 4)`` xyxy px from ``(N, J, 2+)`` 2D joints.

    The joints' extent padded on every side by ``margin`` × its larger side:
    hands, feet and hair reach beyond the wrist, ankle and head joints.
    """
    lo, hi = np.nanmin(joints2d[..., :2], axis=1), np.nanmax(joints2d[..., :2], axis=1)
    pad = margin * np.max(hi - lo, axis=1, keepdims=True)
    return np.concatenate([lo - pad, hi + pad], axis=1)


def clip_boxes(xyxy: np.ndarray, width: float, height: float) -> np.ndarray:
    """Boxes clipped to a ``width × height`` image (pixel-centre coordinates: it spans −0.5 … size − 0.5)."""
    lo, hi = np.array([-0.5, -0.5, -0.5, -0.5]), np.array([width, height, width, height]) - 0.5
    return np.clip(xyxy, lo, hi)


def keep_indices(n: int, step: int, max_frames: int) -> np.ndarray:
    """Indices kept by a frame step and a frame cap (0 = no cap)."""
    idx = np.arange(0, n, step)
    return idx[:max_frames] if max_frames else idx
