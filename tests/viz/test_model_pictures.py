"""Tests of the model-judging pictures (selfpose.viz.model_pictures)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from selfpose.training.logs import read_metric_columns
from selfpose.viz.model_pictures import (RECONSTRUCTION_COLUMNS, TRUE_BOX_RGB, as_image, as_images,
                                         detection_grid, pose_comparison_figure,
                                         reconstruction_grid, save_png, skeleton_strip, to_array, training_curves,
                                         transfer_grid)
from selfpose.viz.skeleton import BOX_RGB, VizError

# A standing person, camera frame mm (x right, y down, z forward), pelvis at the origin.
_STAND = np.array([
    [0, 0, 0], [-120, 0, 0], [-130, 420, 0], [-130, 840, 0], [120, 0, 0], [130, 420, 0], [130, 840, 0],
    [0, -230, 0], [0, -480, 0], [0, -580, -20], [0, -740, 0], [180, -450, 0], [320, -220, 0], [420, 0, 0],
    [-180, -450, 0], [-320, -220, 0], [-420, 0, 0]], dtype=np.float64)


def _has_colour(img: np.ndarray, rgb, tol: int = 30) -> bool:
    return bool((np.abs(img.astype(int) - np.array(rgb)).max(axis=-1) <= tol).any())


def test_as_images_layouts():
    chw = torch.rand(2, 3, 10, 12)
    a = as_images(chw)
    assert a.shape == (2, 10, 12, 3) and a.dtype == np.uint8
    assert np.abs(a[1, 4, 5].astype(int) - np.round(chw[1, :, 4, 5].numpy() * 255)).max() <= 1
    grey = as_images(np.array([[[0.0, 1.0]]]))               # (N, H, W) float mask
    assert grey.shape == (1, 1, 2, 3) and grey[0, 0, 1].tolist() == [255, 255, 255]
    assert as_images(torch.ones(3, 1, 4, 4)).shape == (3, 4, 4, 3)
    assert as_image(np.zeros((3, 5, 7))).shape == (5, 7, 3)     # one channels-first image
    with pytest.raises(VizError):
        as_images(np.zeros((2, 5, 5, 2)))


def test_detection_grid_draws_both_boxes_and_iou():
    frames = np.full((5, 64, 48, 3), 40, np.uint8)
    pred = np.tile([10.0, 8.0, 38.0, 56.0], (5, 1))
    grid = detection_grid(frames, pred, pred + 2.0, ncols=3, cell_px=96)
    assert grid.dtype == np.uint8 and grid.ndim == 3
    assert grid.shape[1] >= 3 * 96 and grid.shape[0] >= 2 * 96
    assert _has_colour(grid, BOX_RGB) and _has_colour(grid, TRUE_BOX_RGB)
    only_pred = detection_grid(frames, pred, cell_px=96)
    assert not _has_colour(only_pred, TRUE_BOX_RGB)
    with pytest.raises(VizError, match="boxes_pred"):
        detection_grid(frames, pred[:3])


def test_reconstruction_grid_columns_and_blank_column():
    n, c = 3, 32
    frames = torch.rand(n, 3, 64, 64)
    args = dict(crops=torch.rand(n, 3, c, c), decoded_rgb=torch.rand(n, 3, c, c), masks=torch.rand(n, 1, c, c),
                composites=torch.rand(n, 3, 64, 64))
    g = reconstruction_grid(frames, **args, boxes=np.tile([8.0, 8, 40, 56], (n, 1)), cell_px=80)
    assert len(RECONSTRUCTION_COLUMNS) == 5
    assert g.shape[1] >= 5 * 80 and g.shape[0] >= 3 * 80
    assert g.std() > 20  # random content, not a blank canvas
    # no decoder: the decoded column is left blank (white) but the grid keeps its size
    g2 = reconstruction_grid(frames, **{**args, "decoded_rgb": None}, cell_px=80)
    assert g2.shape == g.shape
    assert (g2 == 255).mean() > (g == 255).mean()
    with pytest.raises(VizError, match="masks"):
        reconstruction_grid(frames, **{**args, "masks": torch.rand(2, 1, c, c)})


def test_transfer_grid_shape_and_count_check():
    R, C, c = 2, 3, 16
    g = transfer_grid(torch.rand(R, 3, c, c), torch.rand(C, 3, c, c), torch.rand(R, C, 3, c, c), cell_px=50)
    g_flat = transfer_grid(torch.rand(R, 3, c, c), torch.rand(C, 3, c, c), torch.rand(R * C, 3, c, c), cell_px=50)
    assert g.shape == g_flat.shape
    assert g.shape[1] > (C + 1) * 50 and g.shape[0] > (R + 1) * 50
    assert g.shape[1] < (C + 2) * 50 + 150 and g.shape[0] < (R + 2) * 50 + 60
    with pytest.raises(VizError, match="2×3"):
        transfer_grid(torch.rand(R, 3, c, c), torch.rand(C, 3, c, c), torch.rand(5, 3, c, c))


def test_pose_comparison_figure_reports_errors():
    true = np.stack([_STAND, _STAND + [0, 0, 50]])
    pred = true.copy()
    pred[1, 13] += [0, 170, 0]  # one wrist 170 mm off → MPJPE 10 mm
    fig = pose_comparison_figure(pred, true, titles=["same", "wrist"])
    texts = [ax.get_title() for ax in fig.axes]
    assert any("same · MPJPE 0" in t for t in texts)
    assert any("wrist · MPJPE 10," in t for t in texts)
    img = to_array(fig)
    assert img.ndim == 3 and img.std() > 5
    with pytest.raises(VizError):
        pose_comparison_figure(pred[:1], true)


def test_skeleton_strip_with_images(tmp_path):
    j = np.stack([_STAND] * 3)
    imgs = [np.full((40, 30, 3), v, np.uint8) for v in (50, 100, 150)]
    fig = skeleton_strip(j, imgs, ["a", "b", "c"])
    assert len(fig.axes) == 9  # image, front, side per column
    p = save_png(fig, tmp_path / "strip.png")
    assert cv2.imread(str(p)).shape[1] == int(3 * 2.2 * 100)


def test_training_curves_with_blank_cells(tmp_path):
    csv = tmp_path / "run" / "metrics.csv"
    csv.parent.mkdir()
    rows = ["step,loss,dsl,time"] + [f"{s},{np.exp(-s / 50):.5f},{'' if s % 20 else 0.5},{s * 0.1}"
                                      for s in range(0, 200, 10)]
    csv.write_text("\n".join(rows) + "\n")
    data = read_metric_columns(csv)
    assert np.isnan(data["dsl"][1]) and data["dsl"][2] == 0.5
    fig = training_curves(csv)
    assert [ax.get_title().split()[0] for ax in fig.axes] == ["loss", "dsl"]  # the clock column is skipped
    assert fig.axes[0].get_yscale() == "log"   # exp(-s/50) spans > 20x
    assert fig.axes[1].get_yscale() == "linear"
    with pytest.raises(VizError, match="nope"):
        training_curves(csv, names=["nope"])
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(VizError, match="step"):
        training_curves(bad)


def test_save_png_round_trip(tmp_path):
    img = np.zeros((10, 20, 3), np.uint8)
    img[..., 0] = 200  # red in RGB
    p = save_png(img, tmp_path / "sub" / "x.png")
    back = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, img)
