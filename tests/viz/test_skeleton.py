"""Tests of skeleton drawing and 3D plots (selfpose.viz.skeleton)."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.geometry.skeleton import H36M17, HUMANEVA15
from selfpose.viz.skeleton import (LEFT_RGB, RIGHT_RGB, VizError, bone_sides, camera_to_display, default_thickness,
                                   draw_box, draw_mask_outline, draw_skeleton_2d, figure_to_array, new_figure,
                                   plot_skeleton_3d, save_figure, skeleton_views_figure)

# A standing person in the camera frame, mm (x right, y down, z forward), 3 m away.
POSE3D = np.array([
    [0, 0, 3000], [-120, 0, 3000], [-130, 420, 3000], [-130, 840, 3000],
    [120, 0, 3000], [130, 420, 3000], [130, 840, 3000],
    [0, -230, 3000], [0, -480, 3000], [0, -580, 2980], [0, -740, 3000],
    [180, -450, 3000], [320, -220, 3000], [420, 0, 3000],
    [-180, -450, 3000], [-320, -220, 3000], [-420, 0, 3000],
], dtype=np.float64)


def _pose2d(size: int) -> np.ndarray:
    """POSE3D through a pinhole camera whose image is ``size`` px square (person ~70% of its height)."""
    f = size * 0.7 * 3000 / 1580
    return POSE3D[:, :2] / POSE3D[:, 2:] * f + size / 2


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).sum(-1) > 0


def test_bone_sides_follow_joint_names():
    sides = dict(zip(H36M17.bones, bone_sides(H36M17)))
    assert sides[(0, 1)] == "right" and sides[(5, 6)] == "left" and sides[(8, 9)] == "centre"
    assert sides[(8, 11)] == "left" and sides[(8, 14)] == "right"
    assert bone_sides(HUMANEVA15).count("left") == 6


@pytest.mark.parametrize("size", [128, 1000])
def test_draw_skeleton_changes_pixels_along_bones_only(size):
    img = np.full((size, size, 3), 128, np.uint8)
    j = _pose2d(size)
    out = draw_skeleton_2d(img, j)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (img == 128).all(), "the input image must not be modified"
    changed = _changed(out, img)
    # the middle of the left shin (knee 5 → ankle 6) is drawn, in blue; the right shin in red
    for (a, b), colour in (((5, 6), LEFT_RGB), ((2, 3), RIGHT_RGB)):
        mid = np.round((j[a] + j[b]) / 2).astype(int)
        assert changed[mid[1], mid[0]]
        assert np.abs(out[mid[1], mid[0]].astype(int) - colour).sum() < 60
    # far from every joint and bone (a corner, and the gap between the legs below the pelvis) nothing changes
    assert not changed[: size // 10, : size // 10].any()
    knee_mid = np.round((j[2] + j[5]) / 2).astype(int)
    assert not changed[knee_mid[1], knee_mid[0]]
    # line width grows with the image: the fraction of changed pixels is of the same order at both sizes
    assert 0.003 < changed.mean() < 0.08


def test_default_thickness_scales():
    assert default_thickness(128, 128) == 1
    assert default_thickness(1000, 1000) >= 5
    assert default_thickness(64, 48) == 1


def test_nan_and_low_confidence_joints_are_skipped():
    size = 200
    img = np.zeros((size, size, 3), np.uint8)
    j = _pose2d(size)
    j_nan = j.copy()
    j_nan[6] = np.nan  # left ankle unknown
    mid = np.round((j[5] + j[6]) / 2).astype(int)
    assert _changed(draw_skeleton_2d(img, j), img)[mid[1], mid[0]]
    assert not _changed(draw_skeleton_2d(img, j_nan), img)[mid[1], mid[0]]
    conf = np.ones(17)
    conf[6] = 0.1
    assert not _changed(draw_skeleton_2d(img, j, conf), img)[mid[1], mid[0]]
    assert _changed(draw_skeleton_2d(img, j, conf, min_conf=0.05), img)[mid[1], mid[0]]
    # absurd coordinates (a degenerate projection) do not crash OpenCV
    j_far = j.copy()
    j_far[3] = (1e12, -1e12)
    draw_skeleton_2d(img, j_far)


def test_draw_skeleton_rejects_bad_input():
    with pytest.raises(VizError, match="joints2d"):
        draw_skeleton_2d(np.zeros((10, 10, 3), np.uint8), np.zeros((15, 2)))
    with pytest.raises(VizError, match="uint8"):
        draw_skeleton_2d(np.zeros((10, 10, 3), np.float32), np.zeros((17, 2)))


def test_draw_box():
    img = np.zeros((100, 100, 3), np.uint8)
    out = draw_box(img, (20, 30, 80, 90), colour=(255, 255, 0), thickness=1)
    ch = _changed(out, img)
    assert ch[30, 25:75].all() and ch[90, 25:75].all() and ch[35:85, 20].all() and ch[35:85, 80].all()
    assert not ch[40:80, 30:70].any() and not ch[:20].any()
    assert not _changed(draw_box(img, (np.nan, 0, 1, 1)), img).any()


def test_draw_mask_outline():
    img = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 20:40] = 1
    ch = _changed(draw_mask_outline(img, mask, thickness=1), img)
    assert ch[16, 25:35].all() and ch[47, 25:35].all()  # top and bottom edges
    assert not ch[24:40, 26:34].any()  # the interior
    assert not ch[:10].any()
    with pytest.raises(VizError, match="size"):
        draw_mask_outline(img, np.zeros((32, 32), np.uint8))


def test_camera_to_display_puts_up_up():
    d = camera_to_display(np.array([[10.0, -100.0, 3000.0]]))
    np.testing.assert_allclose(d, [[10.0, 3000.0, 100.0]])  # right, depth, up


def _screen(ax, pts_disp: np.ndarray) -> np.ndarray:
    from mpl_toolkits.mplot3d import proj3d

    x, y, _ = proj3d.proj_transform(pts_disp[:, 0], pts_disp[:, 1], pts_disp[:, 2], ax.get_proj())
    return np.stack([x, y], axis=1)


def test_front_view_matches_the_camera_and_side_view_shows_depth():
    fig = new_figure(6, 3)
    front = fig.add_subplot(1, 2, 1, projection="3d")
    side = fig.add_subplot(1, 2, 2, projection="3d")
    plot_skeleton_3d(front, POSE3D, view="front")
    plot_skeleton_3d(side, POSE3D, view="side")
    figure_to_array(fig)
    probe = np.array([[0, 0, 3000], [100, 0, 3000], [0, -100, 3000], [0, 0, 3100]], dtype=float)
    f = _screen(front, camera_to_display(probe))
    s = _screen(side, camera_to_display(probe))
    # front: camera x → screen right, camera -y (up) → screen up, depth → no screen motion
    assert f[1, 0] > f[0, 0] + 1e-3 and abs(f[1, 1] - f[0, 1]) < 1e-6
    assert f[2, 1] > f[0, 1] + 1e-3
    assert np.allclose(f[3], f[0], atol=1e-6)
    # side: depth → screen right, up stays up, camera x → no screen motion
    assert s[3, 0] > s[0, 0] + 1e-3 and s[2, 1] > s[0, 1] + 1e-3
    assert np.allclose(s[1], s[0], atol=1e-6)


def test_plot_skeleton_3d_equal_aspect_and_pred_style():
    fig = new_figure(3, 3)
    ax = fig.add_subplot(projection="3d")
    pred = POSE3D + 30.0
    plot_skeleton_3d(ax, POSE3D, pred=pred)
    spans = [np.diff(lim)[0] for lim in (ax.get_xlim(), ax.get_ylim(), ax.get_zlim())]
    assert np.allclose(spans, spans[0])  # same scale on all axes
    assert spans[0] >= 1580  # the person's height (mm) fits
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    lines = [c for c in ax.collections if isinstance(c, Line3DCollection)]
    assert len(lines) == 2
    styles = [c.get_linestyle()[0] for c in lines]
    assert styles[0][1] is None and styles[1][1] is not None  # truth solid, prediction dashed
    with pytest.raises(VizError, match="view"):
        plot_skeleton_3d(ax, POSE3D, view="behind")
    with pytest.raises(VizError, match="pred"):
        plot_skeleton_3d(ax, POSE3D, pred=pred[:10])


def test_views_figure_to_array_and_save(tmp_path):
    fig = skeleton_views_figure([POSE3D, POSE3D * 1.1], titles=["a", "b"], preds=[None, POSE3D], panel_in=2.0,
                                dpi=80)
    assert len(fig.axes) == 4
    arr = figure_to_array(fig)
    assert arr.dtype == np.uint8 and arr.shape[2] == 3
    assert arr.shape[1] == 2 * 2 * 80 and abs(arr.shape[0] - int((2 * 2 + 0.35) * 80)) <= 1
    assert (np.abs(arr.astype(int) - LEFT_RGB).sum(-1) < 40).sum() > 50  # blue limbs are visible
    path = save_figure(fig, tmp_path / "sub" / "views.png")
    assert path.is_file() and path.stat().st_size > 5000
    with pytest.raises(VizError, match="titles"):
        skeleton_views_figure([POSE3D], titles=["a", "b"])
