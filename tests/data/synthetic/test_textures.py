import numpy as np
import pytest

from selfpose.data.synthetic import textures as tx


@pytest.mark.parametrize("name", tx.PHOTO_NAMES)
def test_every_photo_loads_offline_as_rgb(name):
    img = tx.photo(name)
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    assert min(img.shape[:2]) >= 100 and img.std() > 5


@pytest.mark.parametrize("kind", ["photo", "procedural", "any", *tx.PROCEDURAL_KINDS])
def test_background_kinds_are_textured_and_seeded(kind):
    a = tx.background(np.random.default_rng(0), 48, 64, kind)
    b = tx.background(np.random.default_rng(0), 48, 64, kind)
    c = tx.background(np.random.default_rng(1), 48, 64, kind)
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8
    assert a.astype(float).std() > 2                 # not a flat colour
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_photo_background_crops_differ_and_greys_are_tinted():
    rng = np.random.default_rng(3)
    crops = [tx.photo_background(rng, 32, 32, "brick") for _ in range(3)]
    assert not np.array_equal(crops[0], crops[1])
    # brick is greyscale: the random tint makes the channels differ
    assert max(np.abs(c[..., 0].astype(int) - c[..., 2]).mean() for c in crops) > 1


def test_lab_room_has_a_wall_above_a_floor():
    img = tx.lab_room_texture(np.random.default_rng(2), 96, 96).astype(float)
    top, bottom = img[:20], img[-20:]
    assert np.abs(top.mean(axis=(0, 1)) - bottom.mean(axis=(0, 1))).max() > 5


@pytest.mark.parametrize("kind", ["photo", "procedural"])
def test_wide_background_is_four_frames_wide_and_does_not_repeat(kind):
    w = tx.wide_background(np.random.default_rng(4), 40, 50, kind)
    assert w.shape == (40, 200, 3) and w.dtype == np.uint8
    left, right = w[:, :50].astype(float), w[:, -50:].astype(float)
    assert np.abs(left - right).mean() > 3
    assert tx.wide_background(np.random.default_rng(4), 40, 50, kind, factor=2.5).shape == (40, 125, 3)


def test_value_noise_range():
    n = tx.value_noise(np.random.default_rng(0), 30, 70)
    assert n.shape == (30, 70) and n.min() == pytest.approx(0) and n.max() == pytest.approx(1)


def test_unknown_kind_and_photo_are_errors():
    with pytest.raises(tx.TextureError, match="choose one of"):
        tx.background(np.random.default_rng(0), 8, 8, "marble")
    with pytest.raises(tx.TextureError, match="unknown photo 'astronaut'"):
        tx.photo("astronaut")
