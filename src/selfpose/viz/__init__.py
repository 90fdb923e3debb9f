"""Pictures: skeletons on frames, 3D skeleton plots, dataset contact sheets.

matplotlib is imported only when a figure is made, so importing this package
stays cheap. Colour convention: subject's left blue, right red, centre green;
person box yellow, mask outline magenta (see :mod:`selfpose.viz.skeleton`).
"""

from selfpose.viz.sheet import contact_sheet, render_frame, sample_frames
from selfpose.viz.skeleton import (VizError, draw_box, draw_mask_outline, draw_skeleton_2d, figure_to_array,
                                   plot_skeleton_3d, save_figure, skeleton_views_figure)

__all__ = [
    "VizError", "contact_sheet", "draw_box", "draw_mask_outline", "draw_skeleton_2d", "figure_to_array",
    "plot_skeleton_3d", "render_frame", "sample_frames", "save_figure", "skeleton_views_figure",
]
