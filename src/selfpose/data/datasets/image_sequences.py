"""Image datasets to stored sequences: annotated images grouped per subject/take/view, framed, streamed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from selfpose.data.datasets.config import PrepareConfig, PrepareError
from selfpose.data.datasets.files import read_image
from selfpose.data.datasets.framing import clip_boxes, keep_indices, sequence_transform
from selfpose.geometry.camera import Camera


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
