"""Drawing skeletons, boxes and masks on frames, and plotting 3D skeletons.

Colour convention (used by every picture selfpose makes, and shown in their
legends): limbs on the subject's own **left** are blue, on the subject's
**right** red, and the **centre** line (pelvis–spine–thorax–neck–head) green.
The person box is yellow and the mask outline magenta. Seen from the front, the
subject's left is on the right of the image — that is what the colours are for.

2D drawing uses OpenCV (anti-aliased, sub-pixel lines) directly on uint8 RGB
frames. 3D plots use matplotlib through :class:`matplotlib.figure.Figure` with
an Agg canvas, so no global backend is selected and nothing needs a display.
3D joints are in the house camera frame (millimetres; x right, y down,
z forward); for display they are mapped to ``(x, z, -y)`` so that "up" in the
image is up on the plot and depth goes into the screen in the front view.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from selfpose.geometry.skeleton import H36M17, Skeleton

if TYPE_CHECKING:  # matplotlib is imported lazily: importing selfpose.viz stays cheap
    from matplotlib.figure import Figure

#: RGB colours, 0-255, of the subject's left limbs, right limbs and centre line.
LEFT_RGB = (40, 120, 255)
RIGHT_RGB = (235, 45, 45)
CENTRE_RGB = (40, 190, 70)
SIDE_RGB = {"left": LEFT_RGB, "right": RIGHT_RGB, "centre": CENTRE_RGB}
#: RGB colours of the person box and of the mask outline.
BOX_RGB = (255, 215, 0)
MASK_RGB = (255, 0, 255)

#: Named 3D views: (elevation, azimuth) in degrees of matplotlib's 3D camera,
#: for the display axes (x right, z depth, -y up). ``front`` looks along +depth
#: like the recording camera; ``side`` is the front view rotated 90° about the
#: vertical axis (the recording camera is then on the left of the plot); ``top``
#: looks down.
VIEWS = {"front": (0.0, -90.0), "side": (0.0, 0.0), "top": (89.0, -90.0), "oblique": (20.0, -60.0)}

# OpenCV draws with integer coordinates; 4 fractional bits keep lines on tiny
# frames where sub-pixel positions matter.
_SHIFT = 4


class VizError(ValueError):
    """Arguments that cannot be drawn (wrong shapes, sizes or names)."""


def bone_sides(skeleton: Skeleton = H36M17) -> list[str]:
    """``'left'``, ``'right'`` or ``'centre'`` for each bone of ``skeleton.bones``.

    A bone belongs to the side of its child joint, read from the joint name, so
    this works for every skeleton in :mod:`selfpose.geometry.skeleton`.
    """
    out = []
    for _, child in skeleton.bones:
        name = skeleton.joint_names[child]
        out.append("left" if name.startswith("left") else "right" if name.startswith("right") else "centre")
    return out


def joint_sides(skeleton: Skeleton = H36M17) -> list[str]:
    """Side of each joint (same rule as :func:`bone_sides`)."""
    return ["left" if n.startswith("left") else "right" if n.startswith("right") else "centre"
            for n in skeleton.joint_names]


def default_thickness(height: int, width: int) -> int:
    """Line width in pixels for an image of this size: 1 px at 128 px, ~6 px at 1000 px."""
    return max(1, int(round(max(height, width) / 170)))


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise VizError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    return image


def _fixed(points: np.ndarray) -> np.ndarray:
    """Pixel coordinates → OpenCV fixed-point integers (see ``_SHIFT``)."""
    return np.round(np.asarray(points, dtype=np.float64) * (1 << _SHIFT)).astype(np.int64)


def visible_joints(joints2d: np.ndarray, conf: np.ndarray | None = None, min_conf: float = 0.3,
                   image_size: tuple[int, int] | None = None) -> np.ndarray:
    """``(J,)`` bool: finite joints with confidence ≥ ``min_conf``.

    Joints absurdly far outside the image (more than 10 image sizes away) are
    treated as invisible too: they would overflow OpenCV's fixed-point
    coordinates and can only come from a degenerate projection.
    """
    ok = np.isfinite(joints2d).all(axis=-1)
    if conf is not None:
        conf = np.asarray(conf, dtype=np.float64).reshape(-1)
        ok &= np.nan_to_num(conf, nan=0.0) >= min_conf
    if image_size is not None:
        lim = 10.0 * max(image_size) + 10.0
        with np.errstate(invalid="ignore"):
            ok &= (np.abs(np.nan_to_num(joints2d, nan=0.0)) < lim).all(axis=-1)
    return ok


def draw_skeleton_2d(image: np.ndarray, joints2d: np.ndarray, conf: np.ndarray | None = None,
                     skeleton: Skeleton = H36M17, thickness: int | None = None, min_conf: float = 0.3,
                     joint_radius: int | None = None) -> np.ndarray:
    """Draw a 2D skeleton on a copy of ``image``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB frame (not modified).
        joints2d: ``(J, 2)`` joint positions in pixels of ``image`` (x right,
            y down; pixel centres at integers). NaN joints are skipped.
        conf: optional ``(J,)`` confidences in [0, 1]; joints below
            ``min_conf`` are skipped, and so are the bones that touch them.
        skeleton: the joints' skeleton (bones and left/right from joint names).
        thickness: line width in pixels; default scales with the image size
            (:func:`default_thickness`), so tiny 128 px frames get 1 px lines
            and 1000 px frames ~6 px.
        joint_radius: radius of the joint dots in pixels (default thickness + 1).

    Returns:
        ``(H, W, 3)`` uint8 image with bones coloured by side (left blue,
        right red, centre green) and a dot per visible joint.
    """
    image = _check_image(image)
    joints2d = np.asarray(joints2d, dtype=np.float64)
    if joints2d.shape != (skeleton.num_joints, 2):
        raise VizError(f"joints2d must be ({skeleton.num_joints}, 2) pixels for skeleton {skeleton.name!r}, "
                       f"got {joints2d.shape}")
    h, w = image.shape[:2]
    out = np.ascontiguousarray(image).copy()
    th = default_thickness(h, w) if thickness is None else max(1, int(thickness))
    radius = th + 1 if joint_radius is None else max(1, int(joint_radius))
    ok = visible_joints(joints2d, conf, min_conf, (h, w))
    pts = _fixed(np.where(ok[:, None], joints2d, 0.0))
    for (a, b), side in zip(skeleton.bones, bone_sides(skeleton)):
        if ok[a] and ok[b]:
            cv2.line(out, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), SIDE_RGB[side], th,
                     cv2.LINE_AA, _SHIFT)
    for j, side in enumerate(joint_sides(skeleton)):
        if ok[j]:
            cv2.circle(out, tuple(int(v) for v in pts[j]), radius << _SHIFT, SIDE_RGB[side], -1, cv2.LINE_AA, _SHIFT)
    return out


def draw_box(image: np.ndarray, box: Sequence[float], colour: tuple[int, int, int] = BOX_RGB,
             thickness: int | None = None) -> np.ndarray:
    """Draw the box ``x0, y0, x1, y1`` (pixels) on a copy of ``image``.

    A box with a NaN coordinate is not drawn (the copy is returned unchanged).
    """
    image = _check_image(image)
    out = np.ascontiguousarray(image).copy()
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if box.shape != (4,):
        raise VizError(f"box must be x0, y0, x1, y1 in pixels, got shape {box.shape}")
    if not np.isfinite(box).all():
        return out
    h, w = image.shape[:2]
    box = np.clip(box, -10.0 * max(h, w), 10.0 * max(h, w))
    th = default_thickness(h, w) if thickness is None else max(1, int(thickness))
    p0, p1 = _fixed(box[:2]), _fixed(box[2:])
    cv2.rectangle(out, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), tuple(int(c) for c in colour), th,
                  cv2.LINE_AA, _SHIFT)
    return out


def draw_mask_outline(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = MASK_RGB,
                      thickness: int | None = None) -> np.ndarray:
    """Draw the outline of ``mask`` (``(H, W)``, nonzero = person) on a copy of ``image``."""
    image = _check_image(image)
    mask = np.asarray(mask)
    if mask.shape != image.shape[:2]:
        raise VizError(f"mask must have the image's size {image.shape[:2]}, got {mask.shape}; "
                       "resize it with nearest-neighbour interpolation first")
    out = np.ascontiguousarray(image).copy()
    th = default_thickness(*image.shape[:2]) if thickness is None else max(1, int(thickness))
    contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if contours:
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour), th, cv2.LINE_AA)
    return out


# -- 3D ---------------------------------------------------------------------

def camera_to_display(joints3d: np.ndarray) -> np.ndarray:
    """Camera-frame points ``(..., 3)`` (mm; x right, y down, z forward) → display
    axes ``(x, z, -y)``: right, depth, up (mm)."""
    j = np.asarray(joints3d, dtype=np.float64)
    return np.stack([j[..., 0], j[..., 2], -j[..., 1]], axis=-1)


def _segments(joints_disp: np.ndarray, skeleton: Skeleton) -> tuple[np.ndarray, list[tuple[float, ...]]]:
    segs, cols = [], []
    for (a, b), side in zip(skeleton.bones, bone_sides(skeleton)):
        if np.isfinite(joints_disp[[a, b]]).all():
            segs.append(joints_disp[[a, b]])
            cols.append(tuple(c / 255 for c in SIDE_RGB[side]))
    return np.array(segs).reshape(-1, 2, 3), cols


def plot_skeleton_3d(ax, joints3d: np.ndarray, *, pred: np.ndarray | None = None, skeleton: Skeleton = H36M17,
                     view: str | tuple[float, float] = "front", title: str | None = None,
                     linewidth: float = 2.5, show_axes: bool = True, limits_mm: float | None = None):
    """Plot a 3D skeleton on a matplotlib 3D axes (``projection='3d'``).

    Args:
        ax: the 3D axes.
        joints3d: ``(J, 3)`` joints in the camera frame, mm (NaN joints and
            their bones are skipped). Drawn solid.
        pred: optional second ``(J, 3)`` skeleton (e.g. a prediction, when
            ``joints3d`` is the truth), same frame and unit, drawn dashed and
            thinner in the same side colours.
        view: a key of :data:`VIEWS` (``front`` = as the camera sees it,
            ``side`` = rotated 90° about the vertical) or ``(elev, azim)``.
        limits_mm: half-width of the cube shown; default fits the data.
        show_axes: show ticks and axis labels (mm); off gives a clean picture.

    The axes get an orthographic projection and equal scale on all three axes
    (a cube around the data), so bone lengths are not distorted.
    """
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    joints3d = np.asarray(joints3d, dtype=np.float64)
    if joints3d.shape != (skeleton.num_joints, 3):
        raise VizError(f"joints3d must be ({skeleton.num_joints}, 3) mm, got {joints3d.shape}")
    skels = [(camera_to_display(joints3d), "-", linewidth, 1.0)]
    if pred is not None:
        pred = np.asarray(pred, dtype=np.float64)
        if pred.shape != joints3d.shape:
            raise VizError(f"pred must have the shape of joints3d {joints3d.shape}, got {pred.shape}")
        skels.append((camera_to_display(pred), "--", 0.7 * linewidth, 0.85))
    for disp, style, lw, alpha in skels:
        segs, cols = _segments(disp, skeleton)
        if len(segs):
            ax.add_collection3d(Line3DCollection(segs, colors=cols, linewidths=lw, linestyles=style, alpha=alpha))
        ok = np.isfinite(disp).all(axis=1)
        jc = [tuple(c / 255 for c in SIDE_RGB[s]) for s, k in zip(joint_sides(skeleton), ok) if k]
        if ok.any() and style == "-":
            ax.scatter(disp[ok, 0], disp[ok, 1], disp[ok, 2], c=jc, s=4 * lw, depthshade=False, alpha=alpha)

    pts = np.concatenate([s[0] for s in skels])
    pts = pts[np.isfinite(pts).all(axis=1)]
    centre = (pts.min(0) + pts.max(0)) / 2 if len(pts) else np.zeros(3)
    half = limits_mm if limits_mm is not None else (
        max(float((pts.max(0) - pts.min(0)).max()) / 2 * 1.15, 100.0) if len(pts) else 1000.0)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    # zoom: an orthographic cube seen face-on fills only ~70% of the axes box
    ax.set_box_aspect((1, 1, 1), zoom=1.2 if view in ("front", "side") else 1.0)
    ax.set_proj_type("ortho")
    if isinstance(view, str) and view not in VIEWS:
        raise VizError(f"unknown view {view!r}; use one of {', '.join(VIEWS)} or (elev, azim)")
    elev, azim = VIEWS[view] if isinstance(view, str) else view
    ax.view_init(elev=elev, azim=azim)
    if show_axes:
        from matplotlib.ticker import MaxNLocator

        # depth grows to the right in the side view: say where the camera is
        depth = "camera ◀   z depth (mm)" if view == "side" else "z depth (mm)"
        labels = {"x": "x right (mm)", "y": depth, "z": "up = −y (mm)"}
        # The axis pointing at the viewer collapses to a point: its ticks only clutter.
        edge_on = {"front": "y", "side": "x", "top": "z"}.get(view) if isinstance(view, str) else None
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis), ("z", ax.zaxis)):
            if name == edge_on:
                axis.set_ticklabels([])
                axis.set_ticks([])
                continue
            axis.set_major_locator(MaxNLocator(4))
            getattr(ax, f"set_{name}label")(labels[name], fontsize=7, labelpad=-6)
        ax.tick_params(labelsize=6, pad=-2)
    else:
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_ticklabels([])
            axis.set_ticks([])
        # keep the faint panes: they show the orientation of the view
    if title:
        # a face-on orthographic cube leaves a band of empty axes above it: pull the title down
        ax.set_title(title, fontsize=8, pad=0, y=0.975 if view in ("front", "side") else 1.0)
    return ax


def new_figure(width_in: float, height_in: float, dpi: int = 100) -> "Figure":
    """A matplotlib Figure with its own Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def skeleton_views_figure(joints3d_list: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                          views: Sequence[str | tuple[float, float]] = ("front", "side"), *,
                          preds: Sequence[np.ndarray | None] | None = None, skeleton: Skeleton = H36M17,
                          panel_in: float = 3.0, show_axes: bool = True, dpi: int = 100) -> "Figure":
    """One row per skeleton, one column per view.

    Args:
        joints3d_list: ``(J, 3)`` camera-frame skeletons, mm.
        titles: one per skeleton (the view name is appended).
        views: see :func:`plot_skeleton_3d` (``front`` = as seen from the
            camera, ``side`` = rotated 90° about the vertical axis).
        preds: optional second skeleton per row, drawn dashed (prediction vs truth).

    Returns:
        The Figure (convert with :func:`figure_to_array` or :func:`save_figure`).
    """
    n = len(joints3d_list)
    if n == 0:
        raise VizError("skeleton_views_figure needs at least one skeleton")
    if titles is not None and len(titles) != n:
        raise VizError(f"{len(titles)} titles for {n} skeletons")
    if preds is not None and len(preds) != n:
        raise VizError(f"{len(preds)} predictions for {n} skeletons")
    legend_h = 0.35
    fig = new_figure(panel_in * len(views), panel_in * n + legend_h, dpi)
    for r, joints in enumerate(joints3d_list):
        for c, view in enumerate(views):
            ax = fig.add_subplot(n, len(views), r * len(views) + c + 1, projection="3d")
            name = view if isinstance(view, str) else f"elev {view[0]:.0f}°, azim {view[1]:.0f}°"
            title = f"{titles[r]} · {name}" if titles is not None else name
            plot_skeleton_3d(ax, joints, pred=None if preds is None else preds[r], skeleton=skeleton, view=view,
                             title=title, show_axes=show_axes)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - legend_h / fig.get_figheight(),
                        wspace=0.05, hspace=0.12)
    add_legend(fig, with_pred=preds is not None, with_box=False, with_mask=False)
    return fig


def legend_handles(with_box: bool = True, with_mask: bool = True, with_pred: bool = False) -> list:
    """matplotlib handles explaining the colour convention."""
    from matplotlib.lines import Line2D

    rgb = lambda c: tuple(v / 255 for v in c)  # noqa: E731
    h = [Line2D([], [], color=rgb(LEFT_RGB), lw=3, label="subject's left"),
         Line2D([], [], color=rgb(RIGHT_RGB), lw=3, label="subject's right"),
         Line2D([], [], color=rgb(CENTRE_RGB), lw=3, label="centre (spine, head)")]
    if with_box:
        h.append(Line2D([], [], color=rgb(BOX_RGB), lw=3, label="person box"))
    if with_mask:
        h.append(Line2D([], [], color=rgb(MASK_RGB), lw=3, label="mask outline"))
    if with_pred:
        h += [Line2D([], [], color="0.3", lw=2.5, ls="-", label="truth"),
              Line2D([], [], color="0.3", lw=1.8, ls="--", label="prediction")]
    return h


def add_legend(fig: "Figure", y: float = 1.0, **kw) -> None:
    """A one-line colour legend along the top of ``fig`` (``y`` in figure fraction)."""
    fig.legend(handles=legend_handles(**kw), loc="upper center", bbox_to_anchor=(0.5, y), ncol=7, fontsize=8,
               frameon=False, handlelength=2.0, columnspacing=1.5)


def figure_to_array(fig: "Figure") -> np.ndarray:
    """Render ``fig`` to an ``(H, W, 3)`` uint8 RGB array (H, W = figure size × dpi)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_figure(fig: "Figure", path: str | os.PathLike, dpi: int | None = None) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, e.g. ``.png``/``.pdf``), creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=fig.dpi if dpi is None else dpi, facecolor="white")
    return path
