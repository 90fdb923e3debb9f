"""Apparent limb widths in pixels."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.data.synthetic.measure import LIMBS, dataset_limb_widths, limb_widths_px


def test_width_is_diameter_times_focal_over_depth():
    j = np.zeros((2, 17, 3))
    j[0, :, 2] = 4000.0
    j[1, :, 2] = 2000.0
    j[1, 16, 2] = 6000.0            # the right wrist far behind: its forearm's middle is at 4000 mm
    w = limb_widths_px(j, fx=1000.0, radius_mm=35.0, pairs=LIMBS["forearm"][0])
    np.testing.assert_allclose(w, [[17.5, 17.5], [17.5, 35.0]])
    with pytest.raises(ValueError, match="camera frame"):
        limb_widths_px(j[..., :2], 1000.0, 35.0, LIMBS["forearm"][0])


def test_dataset_limb_widths_of_a_tiny_render(tmp_path):
    from selfpose.config import from_dict
    from selfpose.data.store import Dataset
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize

    cfg = from_dict(SynthConfig, {"scenario": "lab", "height": 48, "width": 48, "max_seconds": 1.0, "fps": 5,
                                  "max_sequences": 1, "batch_size": 4})
    ds = Dataset.open(synthesize(cfg, tmp_path / "lab", progress=False))
    w = dataset_limb_widths(ds)
    assert set(w) == set(LIMBS)
    # a person filling 30-45% of a 48-px frame: thighs a few px wide, forearms thinner
    assert 0.3 < w["forearm"]["median_px"] < w["thigh"]["median_px"] < 10
    assert all(v["p10_px"] <= v["median_px"] for v in w.values())
