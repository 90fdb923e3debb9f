"""Shared pieces of the dataset preparers: the config, errors, frame geometry, file reading.

Frame geometry. Every preparer maps a source image (a dataset's image or a
decoded video frame) to a stored frame with one :class:`FrameTransform`, and
moves the 2D labels, boxes and camera with the *same* transform, so labels and
pixels always agree. Pixel coordinates follow OpenCV: integer coordinates are
pixel centres, so a resize by ``s`` maps ``u ↦ (u + 0.5)·s − 0.5``.

Two framings (``PrepareConfig.crop``):

- ``"full"`` (default): the whole source frame, resized to fit inside
  ``size × size`` keeping its aspect ratio, centred on a black canvas
  (letterbox). Every stored frame of every dataset is then ``size × size``,
  which is what the self-supervised models expect: they find the person with
  their own detector (DESIGN.md §1.1).
- ``"person"``: one square per sequence around the union of its person boxes
  (times ``crop_scale``), resized to ``size × size``. One square per sequence
  (not per frame) keeps a single camera per sequence; for single-image
  sequences it is the usual per-image person crop.
"""

from __future__ import annotations

from selfpose.errors import SelfposeError

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np

from selfpose.config import ConfigError
from selfpose.data.datasets import safe_read
from selfpose.geometry.camera import Camera


class PrepareError(SelfposeError, RuntimeError):
    """A source dataset is missing, malformed or inconsistent."""


class PrepareWarning(UserWarning):
    """Something was skipped or guessed while preparing a dataset."""


@dataclass
class PrepareConfig:
    """How ``selfpose prepare`` converts a source dataset.

    Attributes:
        size: stored frames are ``size × size`` pixels (see ``crop``); 0 keeps
            the source resolution (no resize, no padding). 128 matches the
            synthetic CPU profile.
        crop: ``"full"`` (letterboxed whole frame) or ``"person"`` (square
            around the sequence's person boxes); image datasets only — videos
            are always ``"full"``.
        crop_scale: the ``"person"`` square's side is this times the largest
            side of the union of the sequence's person boxes (which are tight).
        step: keep every ``step``-th frame (videos: decoded frame;
            image datasets: annotated image of a sequence). The stored fps is
            divided accordingly.
        max_frames: keep at most this many frames per sequence (0 = all).
        subjects: only these subjects (empty = all), e.g. ``["S1", "S5"]``.
        keypoints: folder of 2D keypoint files for ``videos`` (``<video stem>.npz``
            or ``.json``); empty = look next to each video only.
        background: background estimator run on each stored sequence
            (``selfpose.data.backgrounds``): ``auto``, ``median``, ``dive``,
            ``pan`` or ``none``.
        background_min_frames: sequences with fewer frames get no background
            (a median of a few frames still contains the person).
        smpl_model: path to an SMPL model file (``.npz`` or chumpy-free
            ``.pkl``) for exact 3DPW joints; empty = approximate joints.
        calib_max_px: HumanEva cameras are estimated from its 2D/3D pairs and
            used only if their worst reprojection error is below this (pixels).
        chunk: frames decoded/written per chunk (memory bound while streaming).
    """

    size: int = 128
    crop: Literal["full", "person"] = "full"
    crop_scale: float = 1.25
    step: int = 1
    max_frames: int = 0
    subjects: tuple[str, ...] = ()
    keypoints: str = ""
    background: Literal["auto", "median", "dive", "pan", "none"] = "auto"
    background_min_frames: int = 8
    smpl_model: str = ""
    calib_max_px: float = 2.0
    chunk: int = 64

    def __post_init__(self) -> None:
        if self.size < 0 or 0 < self.size < 16:
            raise ConfigError(f"prepare.size must be 0 (source resolution) or >= 16 pixels, got {self.size}")
        if self.step < 1:
            raise ConfigError(f"prepare.step must be >= 1, got {self.step}")
        if self.max_frames < 0:
            raise ConfigError(f"prepare.max_frames must be >= 0 (0 = all), got {self.max_frames}")
        if self.crop_scale <= 0:
            raise ConfigError(f"prepare.crop_scale must be > 0, got {self.crop_scale}")
        if self.chunk < 1:
            raise ConfigError(f"prepare.chunk must be >= 1, got {self.chunk}")
        self.subjects = tuple(self.subjects)


# ----------------------------------------------------------------------------- frame geometry


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


def check_found(samples: list, skipped: list[str], root: Path) -> None:
    """Error when no annotated image was found, warning when some were not."""
    if not samples and skipped:
        raise PrepareError(f"none of the {len(skipped)} annotated images was found under {root} "
                           f"(e.g. {skipped[0]}); pass the folder that holds them (or their 'images/' folder)")
    if not samples:
        raise PrepareError(f"no annotated images selected in {root} (check --subjects)")
    if skipped:
        warn(f"{len(skipped)} annotated image(s) not found under {root} and skipped, e.g. {skipped[0]}")


def keep_indices(n: int, step: int, max_frames: int) -> np.ndarray:
    """Indices kept by a frame step and a frame cap (0 = no cap)."""
    idx = np.arange(0, n, step)
    return idx[:max_frames] if max_frames else idx


# ----------------------------------------------------------------------------- reading files


def read_image(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise PrepareError(f"cannot read image {path}: missing or not an image file OpenCV can decode")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def find_image(root: Path, name: str) -> Path | None:
    """The image ``name`` (a path relative to the dataset) under ``root``.

    Tries ``root/name`` and ``root/images/name``, then — for flat folders such
    as the mmpose sample files — the bare file name in ``root`` and
    ``root/images``. ``None`` when absent.
    """
    rel = Path(name)
    for cand in (root / rel, root / "images" / rel, root / rel.name, root / "images" / rel.name):
        if cand.is_file():
            return cand
    return None


def read_npz(path: Path, required: Iterable[str] = ()) -> dict[str, Any]:
    """All arrays of an ``.npz`` file (pickled objects allowed: these are trusted dataset files)."""
    return safe_read.read_npz(path, required, error=PrepareError)


def read_pickle(path: Path) -> Any:
    """A pickle written by Python 2 or 3 (trusted dataset files only)."""
    return safe_read.read_pickle(path, error=PrepareError)


def read_json(path: Path) -> Any:
    return safe_read.read_json(path, error=PrepareError)


def warn(msg: str) -> None:
    warnings.warn(msg, PrepareWarning, stacklevel=2)


# ----------------------------------------------------------------------------- body3d annotations


def read_body3d_npz(path: Path) -> dict[str, np.ndarray]:
    """An mmpose ``body3d`` annotation file, checked.

    Keys used: ``imgname`` (N,), ``part`` (N, 17, 3) 2D px + visibility,
    ``S`` (N, 17, 4) 3D camera-frame metres + visibility (``center``/``scale``,
    mmpose's padded square crop, are not used: boxes come from the joints).
    """
    d = read_npz(path, ("imgname", "part", "S"))
    n = len(d["imgname"])
    part, S = np.asarray(d["part"], np.float64), np.asarray(d["S"], np.float64)
    if part.shape[:2] != (n, 17) or part.shape[2] < 2 or S.shape[:2] != (n, 17) or S.shape[2] < 3:
        raise PrepareError(f"{path}: expected part (N, 17, 2|3) and S (N, 17, 3|4) for N = {n} images, "
                           f"got {part.shape} and {S.shape}")
    return {"imgname": np.asarray(d["imgname"]).astype(str), "part": part, "S": S}


def is_body3d_npz(path: Path) -> bool:
    """True for an mmpose body3d file with 17 joints (other npz files in the folder are skipped)."""
    # A truncated or corrupt npz is an error, not "some other file" silently skipped.
    if not {"imgname", "part", "S"} <= set(safe_read.npz_keys(path, error=PrepareError)):
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["S"].ndim == 3 and z["S"].shape[1] == 17
    except safe_read.CORRUPT_FILE_ERRORS as e:
        raise safe_read.unreadable(path, e, PrepareError, "an .npz archive") from e


def body3d_files(source: Path, kind: str) -> tuple[Path, list[Path]]:
    """``(root, npz files)`` for a folder of (or one) mmpose body3d annotation file(s)."""
    if source.is_file():
        if not is_body3d_npz(source):
            raise PrepareError(f"{source} is not an mmpose {kind} annotation file "
                               "(npz with imgname, part and S of 17 joints)")
        return source.parent, [source]
    files = sorted(p for p in (*source.glob("*.npz"), *source.glob("annotations/*.npz")) if is_body3d_npz(p))
    if not files:
        raise PrepareError(f"no mmpose {kind} annotation file (npz with imgname, part and S of 17 joints) "
                           f"found in {source} or {source / 'annotations'}")
    return source, files


# ----------------------------------------------------------------------------- image sequences


@dataclass
class ImageSample:
    """One annotated image of an image dataset, labels at the source resolution.

    ``joints2d`` (17, 2) px and ``joints3d`` (17, 3) camera mm are in house
    order; ``box`` (4,) is x0, y0, x1, y1 px; ``camera`` is the source camera
    (its width/height are replaced by the image's real size).
    """

    image: Path
    subject: str
    action: str
    take: str
    view: str
    frame_id: int
    camera: Camera | None
    box: np.ndarray
    joints2d: np.ndarray | None = None
    joints3d: np.ndarray | None = None
    attrs: dict[str, Any] | None = None
    fps: float = 0.0  # source frame rate when it differs within a dataset (0 = the preparer's default)


def group_samples(samples: Iterable[ImageSample]) -> dict[tuple[str, str, str], list[ImageSample]]:
    """Samples grouped by (subject, take, view), each group sorted by frame id, duplicates dropped."""
    groups: dict[tuple[str, str, str], dict[int, ImageSample]] = {}
    for s in samples:
        groups.setdefault((s.subject, s.take, s.view), {}).setdefault(s.frame_id, s)
    return {k: [g[f] for f in sorted(g)] for k, g in sorted(groups.items())}


def sequence_fps(frame_ids: np.ndarray, source_fps: float) -> float:
    """Stored fps of frames taken at ``frame_ids`` of a ``source_fps`` recording (median spacing)."""
    if len(frame_ids) < 2:
        return float(source_fps)
    gap = float(np.median(np.diff(frame_ids)))
    return float(source_fps) / max(gap, 1.0)


def estimate_sequence_background(sw, cfg: PrepareConfig) -> None:
    """Estimate and store the background of a closed sequence writer, reading its frames memory-mapped."""
    if cfg.background == "none" or sw.meta.num_frames < cfg.background_min_frames:
        return
    from selfpose.data.backgrounds import estimate_background

    frames = np.load(sw.array_path("frames"), mmap_mode="r")
    bg = estimate_background(frames, method=cfg.background)
    if bg.ndim == 4:
        sw.set(backgrounds=bg)
        sw.meta.scenario = sw.meta.scenario or "moving"
    else:
        sw.set(background=bg)
        sw.meta.scenario = sw.meta.scenario or "static"
    del frames


def write_image_sequences(writer, samples: list[ImageSample], cfg: PrepareConfig, source_fps: float,
                          progress: bool | None, description: str) -> dict[str, Any]:
    """Write samples grouped into sequences (one per subject/take/view), streaming the frames.

    Images that cannot be found were dropped by the caller; an image whose
    size differs from its sequence's first image is an error (one camera per
    sequence). A sequence's attrs get its first sample's ``attrs``. Returns
    summary facts for the dataset's attributes.
    """
    from selfpose.data.sequence import SequenceMeta, safe_id
    from selfpose.utils.progress import progress_bar

    groups = group_samples(samples)
    total = sum(len(keep_indices(len(g), cfg.step, cfg.max_frames)) for g in groups.values())
    worst_reproj = 0.0
    with progress_bar(progress) as prog:
        task = prog.add_task(description, total=total)
        for (subject, take, view), group in groups.items():
            group = [group[i] for i in keep_indices(len(group), cfg.step, cfg.max_frames)]
            first = read_image(group[0].image)
            H, W = first.shape[:2]
            boxes = np.stack([s.box for s in group])
            tf = sequence_transform(cfg, W, H, boxes)
            cam = group[0].camera
            if cam is not None:
                cam = replace(cam, width=W, height=H)
            frame_ids = np.array([s.frame_id for s in group], dtype=np.int64)
            attrs: dict[str, Any] = {"first_image": group[0].image.name, "source_size": [W, H]}
            has2d = all(s.joints2d is not None for s in group)
            has3d = all(s.joints3d is not None for s in group)
            if cam is not None and has2d and has3d:
                # Diagnostic: how well the source 3D reprojects onto the source 2D.
                err = np.linalg.norm(cam.project(np.stack([s.joints3d for s in group]))
                                     - np.stack([s.joints2d for s in group]), axis=-1)
                attrs["reprojection_max_px"] = float(np.nanmax(err))
                worst_reproj = max(worst_reproj, attrs["reprojection_max_px"])
            attrs.update(group[0].attrs or {})
            seq_id = safe_id(take, view) if take.startswith(subject) else safe_id(subject, take, view)
            meta = SequenceMeta(
                id=seq_id, subject=subject, action=group[0].action, take=take, view=view,
                fps=sequence_fps(frame_ids, group[0].fps or source_fps), num_frames=len(group),
                height=tf.height, width=tf.width, camera=None if cam is None else tf.camera(cam), attrs=attrs)
            sw = writer.add_sequence(meta)
            # Boxes of the visible person: clipped to the source image, then to the stored frame.
            stored_boxes = clip_boxes(tf.boxes(clip_boxes(boxes, W, H)), tf.width, tf.height)
            labels: dict[str, np.ndarray] = {"frame_ids": frame_ids, "boxes": stored_boxes}
            if has2d:
                labels["joints2d"] = tf.points(np.stack([s.joints2d for s in group]))
                labels["joints2d_conf"] = np.isfinite(labels["joints2d"]).all(-1).astype(np.float32)
            if has3d:
                labels["joints3d"] = np.stack([s.joints3d for s in group])
            for start in range(0, len(group), cfg.chunk):
                part = group[start:start + cfg.chunk]
                frames = np.stack([tf.image(first if start + i == 0 else _same_size(read_image(s.image), H, W, s))
                                   for i, s in enumerate(part)])
                sw.append(frames=frames, **{k: v[start:start + len(part)] for k, v in labels.items()})
                prog.advance(task, len(part))
            sw.close()
            estimate_sequence_background(sw, cfg)
    return {"num_sequences": len(groups), "reprojection_max_px": worst_reproj}


def _same_size(img: np.ndarray, H: int, W: int, s: ImageSample) -> np.ndarray:
    if img.shape[:2] != (H, W):
        raise PrepareError(f"{s.image}: size {img.shape[1]}x{img.shape[0]} differs from the other images of "
                           f"sequence {s.subject}/{s.take}/{s.view} ({W}x{H}); one sequence needs one camera")
    return img
