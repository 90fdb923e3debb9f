"""The pictures a person looks at to judge a trained (or training) model.

- :func:`detection_grid` — frames with the detected person box (yellow) and,
  when known, the true box (cyan), captioned with their IoU;
- :func:`reconstruction_grid` — one row per frame: input | the crop the
  detector cut | the decoded crop | the decoded mask | the recomposed frame
  (Eq. 1): the whole self-supervised loop at a glance;
- :func:`transfer_grid` — pose/appearance transfer: row ``r``, column ``c``
  is ``decode(v_r, i_c)``, the pose of row ``r``'s frame in the appearance of
  column ``c``'s frame;
- :func:`pose_comparison_figure` — predicted vs true 3D skeletons (front and
  side), captioned with per-sample errors;
- :func:`training_curves` — the curves of a run's ``metrics.csv``.

The grids are built with OpenCV (fast enough to call from a training loop's
picture log) and returned as ``(H, W, 3)`` uint8 RGB arrays; the two plots are
matplotlib :class:`~matplotlib.figure.Figure` objects on their own Agg canvas
(no pyplot state). :func:`save_png` writes either.

Inputs may be numpy arrays or torch tensors, uint8 or float in [0, 1],
channels-last ``(N, H, W, 3)`` or channels-first ``(N, 3, H, W)`` (as models
produce them); masks ``(N, H, W)`` or ``(N, 1, H, W)``. Colours follow
:mod:`selfpose.viz.skeleton` (box yellow, mask outline magenta).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from selfpose.viz.skeleton import (BOX_RGB, VizError, default_thickness, draw_box, figure_to_array, new_figure,
                                   save_figure, skeleton_views_figure)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Colour of the true box (the detected one is :data:`~selfpose.viz.skeleton.BOX_RGB`).
TRUE_BOX_RGB = (0, 230, 255)
_BG = 255            # canvas colour between cells
_TEXT_RGB = (30, 30, 30)
_PAD = 4             # px between cells
_FONT = cv2.FONT_HERSHEY_SIMPLEX


# -- conversion ---------------------------------------------------------------------------


def as_images(x, name: str = "images") -> np.ndarray:
    """A batch of images of any usual layout → ``(N, H, W, 3)`` uint8 RGB.

    Accepts numpy arrays or torch tensors; uint8, bool, or float in [0, 1]
    (clipped); ``(N, H, W, 3)``, ``(N, 3, H, W)``, ``(N, H, W, 1)``,
    ``(N, 1, H, W)`` or ``(N, H, W)`` (grey → three equal channels). The
    batch axis is required (a 3-D array is N grey images); use :func:`as_image`
    for one image.
    """
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.dtype.is_floating_point else x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim == 3:  # (N, H, W) grey
        a = a[..., None]
    if a.ndim != 4:
        raise VizError(f"{name} must be (N, H, W, 3), (N, 3, H, W) or (N, H, W) images, got shape {a.shape}")
    if a.shape[-1] not in (1, 3) and a.shape[1] in (1, 3):
        a = np.moveaxis(a, 1, -1)
    if a.shape[-1] not in (1, 3):
        raise VizError(f"{name} must have 1 or 3 channels, got shape {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = np.round(np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0) * 255).astype(np.uint8)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a)


def as_image(x, name: str = "image") -> np.ndarray:
    """One image ``(H, W, 3)``, ``(3, H, W)``, ``(H, W)``, ``(1, H, W)`` or ``(H, W, 1)`` → ``(H, W, 3)`` uint8."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.dtype.is_floating_point else x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim not in (2, 3):
        raise VizError(f"{name} must be one image (H, W, 3), (3, H, W) or (H, W), got shape {a.shape}")
    return as_images(a[None], name)[0]


def _fit(img: np.ndarray, cell: int) -> np.ndarray:
    """Resize ``img`` so its longer side is ``cell`` px, centred on a ``cell × cell`` white square.

    Nearest-neighbour when enlarging: a 64 px crop shown at 160 px keeps its
    pixels visible (blur would hide what the decoder really produced).
    """
    h, w = img.shape[:2]
    s = cell / max(h, w)
    nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    if (nh, nw) != (h, w):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_NEAREST if s > 1 else cv2.INTER_AREA)
    out = np.full((cell, cell, 3), _BG, np.uint8)
    y, x = (cell - nh) // 2, (cell - nw) // 2
    out[y:y + nh, x:x + nw] = img
    return out


def _text(img: np.ndarray, text: str, x: int, y: int, scale: float = 0.4) -> None:
    """Draw ``text`` (several lines split on newline) in place, baseline of line 1 at ``y``."""
    for k, line in enumerate(text.split("\n")):
        cv2.putText(img, line, (x, y + k * int(round(32 * scale))), _FONT, scale, _TEXT_RGB, 1, cv2.LINE_AA)


def _label_height(labels: Sequence[str], scale: float) -> int:
    lines = max((lab.count("\n") + 1 for lab in labels if lab), default=0)
    return 0 if lines == 0 else int(round(32 * scale)) * lines + 6


def tile(cells: Sequence[Sequence[np.ndarray | None]], cell_px: int = 160, col_labels: Sequence[str] | None = None,
         row_labels: Sequence[str] | None = None, captions: Sequence[Sequence[str]] | None = None,
         title: str | None = None, font_scale: float = 0.4) -> np.ndarray:
    """Lay out images in a grid with labels: ``cells[r][c]`` is an ``(h, w, 3)`` uint8 image or None (blank).

    Every image is fitted into a ``cell_px`` square (aspect kept). Column labels
    go above the grid, row labels to its left, per-cell captions under each
    cell, an optional title on top. Returns one ``(H, W, 3)`` uint8 RGB image.
    """
    nrows = len(cells)
    ncols = max((len(r) for r in cells), default=0)
    if nrows == 0 or ncols == 0:
        raise VizError("nothing to draw: the grid has no cell")
    char_w = int(round(20 * font_scale))
    title_h = _label_height([title or ""], font_scale * 1.2)
    col_h = _label_height(col_labels or [], font_scale)
    cap_h = _label_height([c for row in (captions or []) for c in row], font_scale)
    row_w = 0 if not row_labels else max(len(line) for lab in row_labels for line in lab.split("\n")) * char_w + 8
    row_h = cell_px + cap_h + _PAD
    H = title_h + col_h + nrows * row_h + _PAD
    W = row_w + ncols * (cell_px + _PAD) + _PAD
    out = np.full((H, W, 3), _BG, np.uint8)
    if title:
        _text(out, title, _PAD, int(round(24 * font_scale * 1.2)), font_scale * 1.2)
    y0 = title_h + col_h
    for c in range(ncols):
        x = row_w + _PAD + c * (cell_px + _PAD)
        if col_labels and c < len(col_labels) and col_labels[c]:
            _text(out, col_labels[c], x + 2, title_h + int(round(24 * font_scale)), font_scale)
    for r, row in enumerate(cells):
        y = y0 + r * row_h + _PAD
        if row_labels and r < len(row_labels):
            _text(out, row_labels[r], 4, y + cell_px // 2, font_scale)
        for c, img in enumerate(row):
            x = row_w + _PAD + c * (cell_px + _PAD)
            if img is not None:
                out[y:y + cell_px, x:x + cell_px] = _fit(as_image(img, "cell"), cell_px)
            if captions and r < len(captions) and c < len(captions[r]) and captions[r][c]:
                _text(out, captions[r][c], x + 2, y + cell_px + int(round(26 * font_scale)), font_scale)
    return out


def _check_len(n: int, **arrays) -> None:
    for name, a in arrays.items():
        if a is not None and len(a) != n:
            raise VizError(f"{name} has {len(a)} entries for {n} frames")


def _boxes(boxes, n: int, name: str) -> np.ndarray | None:
    if boxes is None:
        return None
    b = np.asarray(boxes.detach().cpu().numpy() if hasattr(boxes, "detach") else boxes, dtype=np.float64)
    if b.shape != (n, 4):
        raise VizError(f"{name} must be ({n}, 4) x0, y0, x1, y1 pixels, got {b.shape}")
    return b


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``(N, 4)`` xyxy boxes, pairwise by row."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def _upscaled(img: np.ndarray, cell_px: int) -> tuple[np.ndarray, float]:
    """The frame enlarged (cubic) so that boxes are drawn at display resolution, and the scale."""
    s = cell_px / max(img.shape[:2])
    if s <= 1:
        return img, 1.0
    h, w = int(round(img.shape[0] * s)), int(round(img.shape[1] * s))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC), s


def _scale_box(box: np.ndarray, s: float) -> np.ndarray:
    """Box in pixels (centres at integers) of a frame → of the frame resized by ``s``."""
    return (box + 0.5) * s - 0.5


# -- the grids ----------------------------------------------------------------------------


def detection_grid(frames, boxes_pred, boxes_true=None, ncols: int | None = None, cell_px: int = 160,
                   titles: Sequence[str] | None = None) -> np.ndarray:
    """Frames with their detected box (yellow) and the true box (cyan) when given.

    Args:
        frames: ``N`` frames (see :func:`as_images`).
        boxes_pred: ``(N, 4)`` detected boxes x0, y0, x1, y1, pixels of the frames.
        boxes_true: optional ``(N, 4)`` true boxes, same pixels; each cell is
            then captioned with the IoU, and the title with the mean IoU.
        ncols: grid width (default ≈ √N).
        cell_px: side of a cell in the picture, pixels.
        titles: optional caption per frame (put before the IoU).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    imgs = as_images(frames, "frames")
    n = len(imgs)
    bp = _boxes(boxes_pred, n, "boxes_pred")
    bt = _boxes(boxes_true, n, "boxes_true")
    _check_len(n, titles=titles)
    ious = _iou(bp, bt) if bt is not None else None
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    cells, caps = [], []
    for k in range(n):
        img, s = _upscaled(imgs[k], cell_px)
        th = default_thickness(*img.shape[:2])
        if bt is not None:
            img = draw_box(img, _scale_box(bt[k], s), colour=TRUE_BOX_RGB, thickness=th)
        img = draw_box(img, _scale_box(bp[k], s), colour=BOX_RGB, thickness=th)
        cap = titles[k] if titles is not None else ""
        if ious is not None:
            cap = f"{cap}  IoU {ious[k]:.2f}".strip()
        if k % ncols == 0:
            cells.append([])
            caps.append([])
        cells[-1].append(img)
        caps[-1].append(cap)
    title = "detected box (yellow)" + (f" vs true box (cyan) - mean IoU {np.nanmean(ious):.3f}"
                                       if ious is not None else "")
    return tile(cells, cell_px, captions=caps if any(any(c) for c in caps) else None, title=title)


#: Column names of :func:`reconstruction_grid`.
RECONSTRUCTION_COLUMNS = ("input", "crop", "decoded crop", "mask", "recomposed")


def reconstruction_grid(frames, crops, decoded_rgb, masks, composites, boxes=None, cell_px: int = 128,
                        row_labels: Sequence[str] | None = None) -> np.ndarray:
    """One row per frame: input | crop | decoded crop | mask | recomposed (Eq. 1).

    Args:
        frames: ``N`` input frames ``I_t``.
        crops: ``N`` crops ``C_t`` the detector cut (``c × c``).
        decoded_rgb: ``N`` decoded crops ``P̂_t``.
        masks: ``N`` decoded masks ``M_t`` in [0, 1] (crop size, or frame size
            for the warped-back ``W⁻¹(M)``), shown grey (white = person).
        composites: ``N`` recomposed frames ``Î_t``.
        boxes: optional ``(N, 4)`` detected boxes (pixels of ``frames``), drawn
            on the input in yellow.
        cell_px: side of a cell, pixels.
        row_labels: optional label per row (e.g. the frame id).

    Any of ``crops``/``decoded_rgb``/``masks`` may be None (a model without
    detector or decoder): its column is left blank.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    f = as_images(frames, "frames")
    n = len(f)
    cols = [f] + [None if a is None else as_images(a, name) for a, name in
                  ((crops, "crops"), (decoded_rgb, "decoded_rgb"), (masks, "masks"), (composites, "composites"))]
    _check_len(n, **dict(zip(("crops", "decoded_rgb", "masks", "composites"), cols[1:])), row_labels=row_labels)
    b = _boxes(boxes, n, "boxes")
    cells = []
    for k in range(n):
        row = [None if a is None else a[k] for a in cols]
        if b is not None:
            img, s = _upscaled(f[k], cell_px)
            row[0] = draw_box(img, _scale_box(b[k], s), thickness=default_thickness(*img.shape[:2]))
        cells.append(row)
    return tile(cells, cell_px, col_labels=RECONSTRUCTION_COLUMNS, row_labels=row_labels)


def transfer_grid(pose_images, appearance_images, decoded, cell_px: int = 112,
                  pose_labels: Sequence[str] | None = None,
                  appearance_labels: Sequence[str] | None = None) -> np.ndarray:
    """Pose/appearance transfer: cell ``(r, c)`` = ``decode(v_r, i_c)``.

    Args:
        pose_images: ``R`` images (crops or frames) whose pose code ``v`` drives each row.
        appearance_images: ``C`` images whose appearance code ``i`` fills each column.
        decoded: ``(R, C, ...)`` decoded crops (each one image, any layout of
            :func:`as_images`), or ``R·C`` images in row-major order.
        cell_px: side of a cell, pixels.
        pose_labels, appearance_labels: optional labels (e.g. subject names).

    The first column shows the pose sources, the first row the appearance
    sources; when a decoded image matches its row's pose and its column's
    appearance, ``v`` and ``i`` are disentangled.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    P = as_images(pose_images, "pose_images")
    A = as_images(appearance_images, "appearance_images")
    R, C = len(P), len(A)
    if hasattr(decoded, "detach"):
        decoded = decoded.detach().float().cpu().numpy() if decoded.dtype.is_floating_point else \
            decoded.detach().cpu().numpy()
    dec = np.asarray(decoded)
    if dec.ndim >= 5 and dec.shape[:2] == (R, C):
        dec = dec.reshape(R * C, *dec.shape[2:])
    D = as_images(dec, "decoded")
    if len(D) != R * C:
        raise VizError(f"decoded must hold {R}×{C} = {R * C} images (rows = pose sources, columns = appearance "
                       f"sources), got {len(D)}")
    _check_len(R, pose_labels=pose_labels)
    _check_len(C, appearance_labels=appearance_labels)
    cells = [[None] + list(A)]
    for r in range(R):
        cells.append([P[r]] + [D[r * C + c] for c in range(C)])
    col_labels = ["pose \\ appear."] + [f"appearance {c}" if appearance_labels is None else appearance_labels[c]
                                       for c in range(C)]
    row_labels = [""] + [f"pose {r}" if pose_labels is None else pose_labels[r] for r in range(R)]
    return tile(cells, cell_px, col_labels=col_labels, row_labels=row_labels,
                title="decode(v of row, i of column)")


# -- plots --------------------------------------------------------------------------------


def pose_comparison_figure(pred3d, true3d, titles: Sequence[str] | None = None,
                           views: Sequence[str] = ("front", "side"), max_rows: int = 6,
                           dpi: int = 100) -> "Figure":
    """Predicted (dashed) vs true (solid) 3D skeletons, one row per sample, one column per view.

    Args:
        pred3d, true3d: ``(N, 17, 3)`` camera-frame joints, mm. Both are
            pelvis-centred for display; each row's title gives its MPJPE and
            N-MPJPE (mm) after centring.
        titles: optional per-sample title (the errors are appended).
        views: see :func:`selfpose.viz.skeleton.plot_skeleton_3d`.
        max_rows: at most this many samples, evenly spaced, are drawn.

    Returns:
        A matplotlib Figure (see :func:`save_png`, :func:`figure_to_array`).
    """
    from selfpose.evaluation.metrics import mpjpe, n_mpjpe

    p = np.asarray(pred3d.detach().cpu().numpy() if hasattr(pred3d, "detach") else pred3d, dtype=np.float64)
    t = np.asarray(true3d.detach().cpu().numpy() if hasattr(true3d, "detach") else true3d, dtype=np.float64)
    if p.ndim == 2:
        p, t = p[None], t[None]
    if p.shape != t.shape or p.ndim != 3 or p.shape[-1] != 3:
        raise VizError(f"pred3d and true3d must both be (N, J, 3) mm, got {p.shape} and {t.shape}")
    _check_len(len(p), titles=titles)
    if max_rows < 1:
        raise VizError(f"max_rows must be >= 1, got {max_rows}")
    idx = np.unique(np.linspace(0, len(p) - 1, min(max_rows, len(p))).round().astype(int))
    p = p[idx] - p[idx, :1]
    t = t[idx] - t[idx, :1]
    e = mpjpe(p, t, reduction="none")
    en = n_mpjpe(p, t, reduction="none")
    names = [f"{titles[i]} · " if titles is not None else f"#{i} · " for i in idx]
    row_titles = [f"{nm}MPJPE {a:.0f}, N-MPJPE {b:.0f} mm" for nm, a, b in zip(names, e, en)]
    return skeleton_views_figure(list(t), row_titles, views, preds=list(p), dpi=dpi)


def skeleton_strip(joints3d, images=None, titles: Sequence[str] | None = None,
                   views: Sequence[str] = ("front", "side"), panel_in: float = 2.2, dpi: int = 100,
                   image_legend: bool = True) -> "Figure":
    """A strip of 3D skeletons over time: one column per frame; rows = the frame (optional), then each view.

    Args:
        joints3d: ``(N, 17, 3)`` camera-frame joints, mm (predictions need no truth).
        images: optional ``N`` frames (e.g. overlay frames) shown above their skeletons.
        titles: optional title per column (e.g. ``"frame 120"``).
        views: see :func:`selfpose.viz.skeleton.plot_skeleton_3d` (``front`` =
            as the camera sees it, ``side`` = turned 90° about the vertical).
        image_legend: list the person box and mask colours in the legend when ``images`` are given (False
            for images that show neither, e.g. a keypoint overlay).

    All panels of one view share one scale (the largest extent over the
    strip), so the sizes of different frames compare.

    Returns:
        A matplotlib Figure.
    """
    from selfpose.viz.skeleton import add_legend, plot_skeleton_3d

    j = np.asarray(joints3d.detach().cpu().numpy() if hasattr(joints3d, "detach") else joints3d, dtype=np.float64)
    if j.ndim != 3 or j.shape[-1] != 3 or len(j) == 0:
        raise VizError(f"joints3d must be (N, J, 3) mm with N >= 1, got {j.shape}")
    n = len(j)
    imgs = None if images is None else [as_image(im, "images") for im in images]
    _check_len(n, images=imgs, titles=titles)
    rows = (1 if imgs is not None else 0) + len(views)
    aspect = 1.0 if imgs is None else float(np.clip(max(im.shape[0] / im.shape[1] for im in imgs), 0.3, 2.0))
    heights = ([panel_in * aspect] if imgs is not None else []) + [panel_in] * len(views)
    legend_in = 0.35
    fig = new_figure(panel_in * n, sum(heights) + legend_in + 0.1, dpi)
    gs = fig.add_gridspec(rows, n, height_ratios=heights, left=0.01, right=0.99, bottom=0.01,
                          top=1 - legend_in / fig.get_figheight(), wspace=0.04, hspace=0.12)
    centred = j - j[:, :1]
    fin = centred[np.isfinite(centred).all(axis=-1)]
    half = max(float(np.abs(fin).max()) * 1.1, 100.0) if len(fin) else 1000.0
    for c in range(n):
        r = 0
        title = titles[c] if titles is not None else f"#{c}"
        if imgs is not None:
            ax = fig.add_subplot(gs[0, c])
            ax.imshow(imgs[c])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=8, pad=2)
            r = 1
        for k, view in enumerate(views):
            ax = fig.add_subplot(gs[r + k, c], projection="3d")
            plot_skeleton_3d(ax, centred[c], view=view, show_axes=False, limits_mm=half,
                             title=view if imgs is not None else f"{title} · {view}")
    add_legend(fig, with_box=imgs is not None and image_legend, with_mask=imgs is not None and image_legend)
    return fig


def _ema(y: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential moving average over the finite values of ``y`` (NaN stays NaN)."""
    out = np.full_like(y, np.nan)
    acc = math.nan
    for k, v in enumerate(y):
        if np.isfinite(v):
            acc = v if not np.isfinite(acc) else alpha * acc + (1 - alpha) * v
            out[k] = acc
    return out


def training_curves(metrics_csv: str | os.PathLike, names: Sequence[str] | None = None, smooth: float = 0.9,
                    ncols: int = 3, dpi: int = 100) -> "Figure":
    """Loss/metric curves of a run: one panel per column of ``metrics_csv`` against ``step``.

    Args:
        metrics_csv: CSV with a header ``step,<name>,...`` (one row per logged step).
        names: columns to plot (default: every column but ``step`` and clock
            columns such as ``time``/``wall_s``).
        smooth: EMA factor for the bold curve (0 = none); the raw values are
            drawn faintly behind it.
        ncols: panels per row.

    Panels whose finite values are all positive and span more than a factor
    of 20 use a log y axis.

    Returns:
        A matplotlib Figure.
    """
    from selfpose.training.logs import MetricsError, read_metric_columns

    try:
        data = read_metric_columns(metrics_csv)
    except MetricsError as e:
        raise VizError(str(e)) from e
    skip = {"step", "time", "time_s", "wall", "wall_s", "elapsed_s", "epoch"}
    names = [n for n in data if n not in skip] if names is None else list(names)
    missing = [n for n in names if n not in data]
    if missing:
        raise VizError(f"{metrics_csv} has no column(s) {', '.join(missing)}; it has: {', '.join(data)}")
    names = [n for n in names if np.isfinite(data[n]).any()]
    if not names:
        raise VizError(f"{metrics_csv} has no numeric metric to plot")
    step = data["step"]
    ncols = max(1, min(ncols, len(names)))
    nrows = math.ceil(len(names) / ncols)
    fig = new_figure(3.6 * ncols, 2.5 * nrows + 0.3, dpi)
    for k, name in enumerate(names):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        y = data[name]
        ok = np.isfinite(y) & np.isfinite(step)
        ax.plot(step[ok], y[ok], color="C0", alpha=0.3 if smooth > 0 else 1.0, lw=0.8)
        if smooth > 0 and ok.sum() > 2:
            ax.plot(step[ok], _ema(y[ok], smooth), color="C0", lw=1.6)
        pos = y[ok]
        if len(pos) and (pos > 0).all() and pos.max() / pos.min() > 20:
            ax.set_yscale("log")
        last = pos[-1] if len(pos) else math.nan
        ax.set_title(f"{name}  (last {last:.4g})", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"training curves - {Path(metrics_csv).parent.name or Path(metrics_csv).name}", fontsize=10)
    fig.tight_layout()
    return fig


# -- output -------------------------------------------------------------------------------


def save_png(picture, path: str | os.PathLike) -> Path:
    """Write an ``(H, W, 3)`` uint8 RGB array or a matplotlib Figure to ``path`` (PNG), creating folders."""
    path = Path(path)
    if hasattr(picture, "savefig"):
        return save_figure(picture, path)
    img = as_image(picture, "picture")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
        raise VizError(f"cannot write {path} (is the folder writable and the suffix .png?)")
    return path


def to_array(picture) -> np.ndarray:
    """A picture from this module (array or Figure) as ``(H, W, 3)`` uint8 RGB."""
    if hasattr(picture, "savefig"):
        return figure_to_array(picture)
    return as_image(picture, "picture")
