"""Pooling the backgrounds of takes filmed by one static camera."""

import numpy as np
import pytest

from selfpose.data.background_pool import pool_dataset_backgrounds
from selfpose.data.backgrounds import BackgroundError, median_background, pool_backgrounds
from selfpose.data.sequence import SequenceMeta
from selfpose.data.store import Dataset, DatasetWriter
from selfpose.geometry.camera import Camera

H, W = 64, 48


def scene(seed):
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def take(bg, x0, T=20, still=True):
    """A red 'person' 8 px wide that stands at x0 (still) or walks from x0 across the frame."""
    frames = np.repeat(bg[None], T, 0)
    for t in range(T):
        x = x0 if still else (x0 + 5 * t) % (W - 8)
        frames[t, 8:28, x:x + 8] = (250, 10, 10)
    return frames


def test_pooling_removes_a_person_who_stands_still():
    bg = scene(0)
    own = np.stack([median_background(take(bg, x0)) for x0 in (0, 8, 16)])
    # Each take's own median keeps its motionless person ...
    assert all((np.abs(o.astype(int) - bg).max(-1) > 25).mean() > 0.04 for o in own)
    pooled, agree = pool_backgrounds(own)
    # ... the median over the takes does not: each pixel is covered in one take of three.
    np.testing.assert_array_equal(pooled, bg)
    assert agree.shape == (3,) and np.all((agree > 0.93) & (agree < 0.96))   # the person: 20×8 px of 64×48


def test_pooling_reports_another_camera_as_disagreeing():
    own = np.stack([scene(0), scene(0), scene(0), scene(1)])
    pooled, agree = pool_backgrounds(own)
    np.testing.assert_array_equal(pooled, scene(0))
    assert agree[:3].tolist() == [1.0, 1.0, 1.0] and agree[3] < 0.5


def test_pooling_input_errors():
    with pytest.raises(BackgroundError, match="at least 3"):
        pool_backgrounds(np.zeros((2, H, W, 3), np.uint8))
    with pytest.raises(BackgroundError, match="uint8"):
        pool_backgrounds(np.zeros((3, H, W, 3), np.float32))


def _write(root, takes):
    with DatasetWriter(root) as w:
        for k, (view, frames) in enumerate(takes):
            meta = SequenceMeta(f"s{k}_{view}", f"S{k}", "stand", f"t{k}", view, 10.0, len(frames), H, W,
                                Camera.from_fov(W, H, 50))
            w.write_sequence(meta, frames=frames, background=median_background(frames))


def test_dataset_pooling_by_view(tmp_path):
    a, b = scene(0), scene(1)
    takes = [("c0", take(a, x)) for x in (0, 10, 20, 30)] + [("c0", take(b, 4, still=False))]  # a stranger
    takes += [("c1", take(b, 0)), ("c1", take(b, 8))]                                      # only two in c1
    _write(tmp_path / "ds", takes)
    before = [np.array(s["background"]) for s in Dataset.open(tmp_path / "ds").sequences]
    report = pool_dataset_backgrounds(tmp_path / "ds")
    assert (report.pooled, report.kept, report.skipped) == (4, 1, 2)
    after = [np.array(s["background"]) for s in Dataset.open(tmp_path / "ds").sequences]
    for k in range(4):
        np.testing.assert_array_equal(after[k], a)
    for k in range(4, 7):   # the disagreeing sequence and the too-small group are untouched
        np.testing.assert_array_equal(after[k], before[k])
    # Idempotent: a second pass pools the same sequences to the same image.
    again = pool_dataset_backgrounds(tmp_path / "ds")
    assert (again.pooled, again.kept, again.skipped) == (4, 1, 2)
    np.testing.assert_array_equal(np.array(Dataset.open(tmp_path / "ds").sequences[0]["background"]), a)
