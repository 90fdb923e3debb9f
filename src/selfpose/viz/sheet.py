"""The dataset contact sheet (``selfpose show``): one PNG to judge a dataset by eye.

From top to bottom:

1. a header: dataset name, counts, resolutions, which labels exist, and the
   colour legend (see :mod:`selfpose.viz.skeleton`);
2. a grid of frames sampled across sequences (subjects, actions, views
   interleaved), each with the mask outline, the person box and the 2D
   skeleton drawn — whichever of them the sequence has. Sequences without
   frames (e.g. mocap-only HumanEva) get their skeletons on a blank canvas;
   sequences without 2D but with 3D and a camera get the projected 3D;
3. for a few sequences with an estimated background: the frame, the estimated
   background, the true one when it exists, and their absolute difference,
   captioned with the mean absolute difference over pixels;
4. 3D skeletons of a few sampled frames, front (as the camera sees them) and
   side (rotated 90° about the vertical).

Only the sampled frames are read from the memory-mapped arrays, never a whole
sequence, so a sheet of a 100 GB dataset costs the same as of a tiny one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from selfpose.data.sequence import ARRAY_SPECS
from selfpose.data.store import Dataset, DatasetError, SequenceRecord
from selfpose.viz.skeleton import (add_legend, default_thickness, draw_box, draw_mask_outline, draw_skeleton_2d,
                                   new_figure, plot_skeleton_3d, save_figure)

# Layout, inches (the figure is drawn at ``dpi`` dots per inch).
_CELL_IN = 2.6          # width of one grid cell
_TITLE_IN = 0.36        # two lines of panel title
_GAP_IN = 0.10          # between rows
_SECTION_IN = 0.32      # a section heading
_MARGIN_IN = 0.15
_BLANK_RGB = 236        # canvas for sequences without frames


@dataclass(frozen=True)
class FramePick:
    """One sampled frame: stored frame ``index`` of sequence ``rec``."""

    rec: SequenceRecord
    index: int

    @property
    def title(self) -> str:
        m = self.rec.meta
        return f"{m.subject} · {m.action}\n{m.view} · frame {self.index}/{m.num_frames}"


def sample_frames(ds: Dataset, num_frames: int = 16, seed: int = 0,
                  max_sequences: int | None = None) -> list[FramePick]:
    """Pick ``num_frames`` frames spread over the dataset.

    Sequences are taken round-robin over subjects (shuffled with ``seed``), so
    subjects, actions and views are interleaved rather than the first sequence
    filling the sheet; ``max_sequences`` caps how many distinct sequences are
    used. Within a sequence chosen ``k`` times the frames are stratified over
    ``k`` equal spans of time. Returns picks in round-robin order (first picks
    cover the most subjects).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be ≥ 1, got {num_frames}")
    rng = np.random.default_rng(seed)
    by_subject: dict[str, list[SequenceRecord]] = {}
    for rec in ds.sequences:
        if rec.meta.num_frames > 0:
            by_subject.setdefault(rec.meta.subject, []).append(rec)
    if not by_subject:
        raise DatasetError(f"dataset {ds.root} has no sequence with frames to show")
    groups = [by_subject[s] for s in sorted(by_subject)]
    for g in groups:
        rng.shuffle(g)
    rng.shuffle(groups)
    order: list[SequenceRecord] = []
    for k in range(max(len(g) for g in groups)):
        order += [g[k] for g in groups if k < len(g)]
    if max_sequences is not None:
        if max_sequences < 1:
            raise ValueError(f"max_sequences must be ≥ 1, got {max_sequences}")
        order = order[:max_sequences]
    counts = np.bincount(np.arange(num_frames) % len(order), minlength=len(order))
    picks_by_seq: list[list[int]] = []
    for rec, k in zip(order, counts):
        T = rec.meta.num_frames
        k = min(int(k), T)
        edges = np.linspace(0, T, k + 1)
        idx = [int(rng.integers(int(edges[j]), max(int(edges[j]) + 1, int(edges[j + 1])))) for j in range(k)]
        picks_by_seq.append(sorted(set(idx)))
    # interleave again so the first picks span sequences
    out: list[FramePick] = []
    for k in range(max((len(p) for p in picks_by_seq), default=0)):
        out += [FramePick(rec, p[k]) for rec, p in zip(order, picks_by_seq) if k < len(p)]
    return out[:num_frames]


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``(width, height)``: cubic when enlarging, area-average when shrinking."""
    w, h = size
    if (img.shape[1], img.shape[0]) == (w, h):
        return np.ascontiguousarray(img)
    interp = cv2.INTER_CUBIC if w > img.shape[1] else cv2.INTER_AREA
    return cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=interp)


def _display_size(height: int, width: int, target_px: int) -> tuple[float, int, int]:
    """Scale and ``(height, width)`` with the longer side ``target_px``."""
    s = target_px / max(height, width)
    return s, max(1, int(round(height * s))), max(1, int(round(width * s)))


def _to_display(points: np.ndarray, s: float) -> np.ndarray:
    """Pixel coordinates (centres at integers) of the stored frame → of the frame resized by ``s``."""
    return (np.asarray(points, dtype=np.float64) + 0.5) * s - 0.5


def _frame_size(rec: SequenceRecord) -> tuple[int, int]:
    """Stored frame ``(height, width)``; for frame-less sequences without a size, a square canvas."""
    m = rec.meta
    if rec.has("frames"):
        return tuple(rec["frames"].shape[1:3])  # type: ignore[return-value]
    if m.height > 0 and m.width > 0:
        return m.height, m.width
    return 1000, 1000


def _joints2d(pick: FramePick) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """2D joints (px of the stored frame), their confidences, and a note on where they came from."""
    rec, i = pick.rec, pick.index
    if rec.has("joints2d"):
        conf = np.asarray(rec["joints2d_conf"][i]) if rec.has("joints2d_conf") else None
        return np.asarray(rec["joints2d"][i], dtype=np.float64), conf, ""
    if rec.has("joints3d") and rec.meta.camera is not None:
        return rec.meta.camera.project(np.asarray(rec["joints3d"][i], dtype=np.float64)), None, "2D = projected 3D"
    return None, None, ""


def render_frame(pick: FramePick, target_px: int) -> tuple[np.ndarray, str]:
    """The picked frame resized to ``target_px`` on its longer side with its labels drawn.

    Returns the ``(h, w, 3)`` uint8 image and a short note (e.g. "no frames").
    """
    rec, i = pick.rec, pick.index
    H, W = _frame_size(rec)
    s, h, w = _display_size(H, W, target_px)
    notes = []
    if rec.has("frames"):
        img = _resize(np.asarray(rec["frames"][i]), (w, h))
    else:
        img = np.full((h, w, 3), _BLANK_RGB, np.uint8)
        notes.append("no frames")
    th = default_thickness(h, w)
    if rec.has("masks"):
        mask = cv2.resize(np.ascontiguousarray(rec["masks"][i]), (w, h), interpolation=cv2.INTER_NEAREST)
        img = draw_mask_outline(img, mask, thickness=max(1, th - 1))
    if rec.has("boxes"):
        img = draw_box(img, _to_display(np.asarray(rec["boxes"][i]).reshape(2, 2), s).reshape(4), thickness=th)
    joints, conf, note = _joints2d(pick)
    if joints is not None:
        img = draw_skeleton_2d(img, _to_display(joints, s), conf, thickness=th)
    if note:
        notes.append(note)
    return img, ", ".join(notes)


def _background_at(rec: SequenceRecord, i: int, stem: str) -> np.ndarray | None:
    """``stem`` (``background``/``true_background``) at frame ``i``: static or per-frame."""
    if rec.has(stem):
        return np.asarray(rec[stem])
    if rec.has(stem + "s"):
        return np.asarray(rec[stem + "s"][i])
    return None


def background_error(estimated: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute difference of two ``(H, W, 3)`` uint8 images over pixels and channels, as a fraction of 255."""
    return float(np.abs(estimated.astype(np.int16) - true.astype(np.int16)).mean() / 255.0)


def _summary(ds: Dataset) -> list[str]:
    seqs = ds.sequences
    name = str(ds.attrs["name"]) if "name" in ds.attrs else ds.root.name
    sizes: dict[str, int] = {}
    fps: set[str] = set()
    for r in seqs:
        key = f"{r.meta.width}×{r.meta.height}"
        sizes[key] = sizes.get(key, 0) + 1
        fps.add(f"{r.meta.fps:g}")
    res = ", ".join(k for k, _ in sorted(sizes.items(), key=lambda kv: -kv[1])[:3])
    if len(sizes) > 3:
        res += f" (+{len(sizes) - 3} more)"
    labels = []
    for arr in ARRAY_SPECS:
        if arr == "frame_ids":
            continue
        n = sum(r.has(arr) for r in seqs)
        if n:
            labels.append(arr if n == len(seqs) else f"{arr} ({n}/{len(seqs)})")
    scen = sorted({r.meta.scenario for r in seqs if r.meta.scenario})
    line2 = (f"{len(seqs)} sequences · {ds.num_frames:,} frames · {len(ds.subjects())} subjects · "
             f"{len(ds.actions())} actions · {len(ds.views())} views · {res} px · {', '.join(sorted(fps))} fps")
    if scen:
        line2 += f" · scenario {', '.join(scen)}"
    return [f"{name}   ({ds.root})", line2, "labels: " + (", ".join(labels) if labels else "none")]


def _imshow(ax, img: np.ndarray, title: str, cmap: str | None = None) -> None:
    ax.imshow(img, cmap=cmap, vmin=0, vmax=255, interpolation="antialiased")
    ax.set_xticks([])
    ax.set_yticks([])
    for sp in ax.spines.values():
        sp.set_linewidth(0.5)
        sp.set_color("0.6")
    ax.set_title(title, fontsize=7.5, pad=2, linespacing=1.15)


def contact_sheet(ds: Dataset, out: str | os.PathLike, *, num_frames: int = 16, seed: int = 0,
                  max_sequences: int | None = None, num_backgrounds: int = 2, num_3d: int = 2,
                  dpi: int = 110) -> Path:
    """Write a PNG contact sheet of ``ds`` to ``out`` and return its path.

    Args:
        ds: an opened dataset.
        out: the PNG path (parent folders are created); an existing folder
            gets ``contact_sheet.png`` inside it.
        num_frames: frames in the sampled grid.
        seed: sampling seed (same seed, same sheet).
        max_sequences: use at most this many distinct sequences.
        num_backgrounds: sequences with an estimated background to show (0 = none).
        num_3d: sampled frames whose 3D skeleton is plotted, front and side (0 = none).
        dpi: resolution; the sheet is about ``(4 × 2.6 + 0.3) × dpi`` pixels wide.

    Raises:
        DatasetError: the dataset has no frame to show.
    """
    out = Path(out)
    if out.is_dir():
        out = out / "contact_sheet.png"
    picks = sample_frames(ds, num_frames, seed, max_sequences)
    # Backgrounds and 3D come from distinct sequences among the picks, in
    # round-robin order (spanning subjects); sequences with a true background first.
    seen: set[str] = set()
    bg_picks: list[FramePick] = []
    for p in sorted(picks, key=lambda p: not (p.rec.has("true_background") or p.rec.has("true_backgrounds"))):
        if (p.rec.has("background") or p.rec.has("backgrounds")) and p.rec.id not in seen:
            seen.add(p.rec.id)
            bg_picks.append(p)
    bg_picks = bg_picks[:num_backgrounds]
    seen = set()
    pose_picks = []
    for p in picks:
        if p.rec.has("joints3d") and p.rec.id not in seen:
            seen.add(p.rec.id)
            pose_picks.append(p)
    pose_picks = pose_picks[:num_3d]
    grid = sorted(picks, key=lambda p: (p.rec.meta.subject, p.rec.meta.action, p.rec.meta.view, p.index))

    ncols = max(4, math.ceil(math.sqrt(len(grid))))
    cols_3d = 2 * len(pose_picks)
    if cols_3d > ncols:  # never wider than the frame grid
        pose_picks = pose_picks[: ncols // 2]
        cols_3d = 2 * len(pose_picks)
    nrows = math.ceil(len(grid) / ncols)
    target_px = int(round(_CELL_IN * dpi * 0.97))
    aspects = [np.divide(*_frame_size(p.rec)) for p in grid]
    aspect = float(np.clip(max(aspects), 0.4, 1.6))
    panel_h = _CELL_IN * aspect
    row_h = panel_h + _TITLE_IN + _GAP_IN
    header_h = 1.05
    fig_w = ncols * _CELL_IN + 2 * _MARGIN_IN
    fig_h = (header_h + _SECTION_IN + nrows * row_h
             + (_SECTION_IN + len(bg_picks) * row_h if bg_picks else 0)
             + (_SECTION_IN + _CELL_IN + _TITLE_IN if pose_picks else 0) + _MARGIN_IN)
    fig = new_figure(fig_w, fig_h, dpi)
    fig.patch.set_facecolor("white")

    def axes_at(top_in: float, col: int, height_in: float, **kw):
        """Axes whose top-left corner is ``top_in`` inches from the top, in grid column ``col``."""
        x = (_MARGIN_IN + col * _CELL_IN + 0.04) / fig_w
        y = 1 - (top_in + height_in) / fig_h
        return fig.add_axes((x, y, (_CELL_IN - 0.08) / fig_w, height_in / fig_h), **kw)

    def heading(top_in: float, text: str) -> None:
        fig.text(_MARGIN_IN / fig_w, 1 - (top_in + 0.22) / fig_h, text, fontsize=10, weight="bold", color="0.15")

    # 1. header
    lines = _summary(ds)
    fig.text(_MARGIN_IN / fig_w, 1 - 0.3 / fig_h, lines[0], fontsize=12, weight="bold")
    fig.text(_MARGIN_IN / fig_w, 1 - 0.52 / fig_h, lines[1], fontsize=8.5)
    fig.text(_MARGIN_IN / fig_w, 1 - 0.72 / fig_h, lines[2], fontsize=8.5, color="0.25")
    add_legend(fig, y=1 - 0.76 / fig_h, with_pred=False)
    top = header_h

    # 2. sampled frames
    heading(top, f"{len(grid)} sampled frames (seed {seed}) — subject · action / view · frame")
    top += _SECTION_IN
    for k, pick in enumerate(grid):
        r, c = divmod(k, ncols)
        img, note = render_frame(pick, target_px)
        ax = axes_at(top + r * row_h + _TITLE_IN, c, panel_h)
        _imshow(ax, img, pick.title + (f" ({note})" if note else ""))
    top += nrows * row_h

    # 3. backgrounds
    if bg_picks:
        heading(top, "estimated vs true background")
        top += _SECTION_IN
        for r, pick in enumerate(bg_picks):
            H, W = _frame_size(pick.rec)
            _, h, w = _display_size(H, W, target_px)
            est = _background_at(pick.rec, pick.index, "background")
            true = _background_at(pick.rec, pick.index, "true_background")
            panels = []
            if pick.rec.has("frames"):
                panels.append((_resize(np.asarray(pick.rec["frames"][pick.index]), (w, h)), pick.title, None))
            panels.append((_resize(est, (w, h)), "estimated background", None))
            if true is not None:
                err = background_error(est, true)
                diff = np.abs(est.astype(np.int16) - true.astype(np.int16)).mean(axis=2)
                panels.append((_resize(true, (w, h)), "true background", None))
                panels.append((_resize(np.clip(4 * diff, 0, 255).astype(np.uint8), (w, h)),
                               f"|estimated − true| ×4\nmean abs diff {err * 255:.1f}/255 = {err:.3f}", "gray"))
            else:
                panels[-1] = (panels[-1][0], "estimated background\n(no true background)", None)
            for c, (img, title, cmap) in enumerate(panels[:ncols]):
                _imshow(axes_at(top + r * row_h + _TITLE_IN, c, panel_h), img, title, cmap)
        top += len(bg_picks) * row_h

    # 4. 3D skeletons
    if pose_picks:
        heading(top, "3D joints, camera frame (front = seen from the camera, side = turned 90° about the vertical)")
        top += _SECTION_IN
        for k, pick in enumerate(pose_picks):
            joints = np.asarray(pick.rec["joints3d"][pick.index], dtype=np.float64)
            m = pick.rec.meta
            for v, view in enumerate(("front", "side")):
                ax = axes_at(top + _TITLE_IN, 2 * k + v, _CELL_IN - 0.1, projection="3d")
                plot_skeleton_3d(ax, joints, view=view, show_axes=True,
                                 title=f"{m.subject} · {m.action} · {m.view} · frame {pick.index}\n{view}")
    return save_figure(fig, out)
