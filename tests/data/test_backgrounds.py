"""Background estimation on synthetic videos whose true background is known."""

import time
import warnings

import cv2
import numpy as np
import pytest

from selfpose.data.backgrounds import (BackgroundError, BackgroundWarning, _median_stack, camera_motion_px,
                                       choose_method, dive_background, estimate_background, fit_panorama,
                                       frame_homographies, median_background, method_for_scenario,
                                       panorama_backgrounds, sample_indices)


def texture(h, w, seed=0, scales=((4, 30), (12, 60), (40, 80))):
    """Smoothed multi-scale noise: photo-like texture that SIFT can match."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for s, amp in scales:
        n = rng.normal(size=(h // s + 2, w // s + 2, 3)).astype(np.float32)
        img += amp * cv2.resize(n, (w + 2 * s, h + 2 * s), interpolation=cv2.INTER_CUBIC)[:h, :w]
    return np.clip(128 + img, 0, 255).astype(np.uint8)


def static_video(T=400, H=128, W=128, seed=0):
    """Two coloured ellipses ("a person") moving over a static textured background."""
    bg = texture(H, W, seed)
    frames = np.repeat(bg[None], T, 0)
    yy, xx = np.mgrid[:H, :W]
    cover = np.zeros((H, W), np.int64)
    for t in range(T):
        for k, col in enumerate(((230, 30, 30), (30, 200, 60))):
            cx = W / 2 + 0.35 * W * np.sin(2 * np.pi * t / T * (k + 1) + k)
            cy = H / 2 + 0.35 * H * np.cos(2 * np.pi * t / T * (2 - k) + 0.5)
            m = (xx - cx) ** 2 / (0.12 * W) ** 2 + (yy - cy) ** 2 / (0.2 * H) ** 2 < 1
            frames[t][m] = col
            cover[m] += 1
    return frames, bg, cover / T


def pan_video(T=90, H=128, W=128, speed=2.0, seed=0, person=None):
    """A camera panning (sub-pixel translation) over a wide image, following a moving ellipse.

    ``person``: None for a plain magenta ellipse; a float ``r`` for a *textured* ellipse of
    half-width ``r·W`` that stays near the frame centre (a camera following someone whose
    clothes carry many SIFT features).
    """
    wide = texture(H + 40, W + int(speed * T) + 40, seed)
    cloth = texture(H, W, seed + 5, scales=((3, 60), (8, 60)))
    frames = np.empty((T, H, W, 3), np.uint8)
    true = np.empty_like(frames)
    yy, xx = np.mgrid[:H, :W]
    for t in range(T):
        M = np.array([[1, 0, -(20 + speed * t)], [0, 1, -20 - 0.1 * t]], np.float32)
        true[t] = cv2.warpAffine(wide, M, (W, H), flags=cv2.INTER_LINEAR)
        frames[t] = true[t]
        if person is None:
            m = (xx - W / 2 - 10 * np.sin(t / 10)) ** 2 / (0.12 * W) ** 2 + (yy - H / 2) ** 2 / (0.25 * H) ** 2 < 1
            frames[t][m] = (220, 40, 200)
        else:
            m = (xx - W / 2 - 3 * np.sin(t / 10)) ** 2 / (person * W) ** 2 + (yy - H / 2) ** 2 / (0.35 * H) ** 2 < 1
            frames[t][m] = cloth[m]
    return frames, true


def as_memmap(arr, path):
    np.save(path, arr)
    return np.load(path, mmap_mode="r")


def test_median_background_removes_moving_person_from_memmap(tmp_path):
    __import__("torch")  # its start-up is not what we time below

    frames, bg, cover = static_video()
    mm = as_memmap(frames, tmp_path / "frames.npy")
    t0 = time.perf_counter()
    est = median_background(mm)
    dt = time.perf_counter() - t0
    assert est.shape == bg.shape and est.dtype == np.uint8
    keep = cover < 0.5
    assert keep.mean() > 0.9 and cover.max() > 0.3  # the blobs do cover pixels often
    mae = np.abs(est.astype(int) - bg)[keep].mean()
    print(f"median 400x128x128: MAE {mae:.3f}/255 on {keep.mean():.0%} of pixels, {dt * 1e3:.0f} ms")
    assert mae < 3.0
    # The video itself is far from its background: the test can fail.
    assert np.abs(frames.astype(int) - bg).mean() > 3.0


def test_median_tiling_and_exactness():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (31, 20, 9, 3), dtype=np.uint8)
    whole = median_background(frames, max_frames=31)
    tiled = median_background(frames, max_frames=31, tile_bytes=1)  # one row per tile
    np.testing.assert_array_equal(whole, tiled)
    np.testing.assert_array_equal(whole, np.sort(frames, axis=0)[15])  # odd count: exact median
    idx = sample_indices(1000, 64)
    assert len(idx) == 64 and idx[0] == 0 and idx[-1] == 999


def test_masked_median_ignores_invalid_entries():
    rng = np.random.default_rng(2)
    stack = rng.integers(0, 256, (12, 50, 3), dtype=np.uint8)
    valid = rng.random((12, 50)) < 0.6
    valid[:, 0] = False
    valid[0, 0] = True  # one valid value only
    got = _median_stack(stack, valid)
    for p in range(50):
        v = np.sort(stack[valid[:, p], p], axis=0)
        n = len(v)
        if n == 0:
            continue
        lower, upper = v[(n - 1) // 2], v[n // 2]
        assert np.all((got[p] >= lower) & (got[p] <= upper)), p


def test_dive_background_from_first_and_last_frames():
    H, W, T = 96, 64, 30
    bg = texture(H, W, seed=3)
    frames = np.repeat(bg[None], T, 0)
    yy, xx = np.mgrid[:H, :W]
    for t in range(T):  # the diver falls from the top to the bottom
        cy = 0.15 * H + 0.7 * H * (t / (T - 1)) ** 2
        frames[t][(xx - W / 2) ** 2 + (yy - cy) ** 2 < 10 ** 2] = (250, 200, 150)
    est = dive_background(frames)
    assert np.abs(est.astype(int) - bg).max() == 0
    assert np.abs(estimate_background(frames, "dive").astype(int) - bg).max() == 0
    # Neither end frame alone is the background.
    assert np.abs(frames[0].astype(int) - bg).max() > 50 and np.abs(frames[-1].astype(int) - bg).max() > 50
    with pytest.raises(BackgroundError, match="at least 2"):
        dive_background(frames[:1])


def test_panorama_backgrounds_of_a_panning_camera():
    frames, true = pan_video()
    t0 = time.perf_counter()
    est = panorama_backgrounds(frames)
    dt = time.perf_counter() - t0
    assert est.shape == frames.shape and est.dtype == np.uint8
    err = np.abs(est.astype(int) - true)
    base = np.abs(frames.astype(int) - true)
    person = base.max(axis=-1) > 0
    print(f"pan 90x128x128: MAE {err.mean():.2f}/255 overall, {err[person].mean():.2f} on the person's pixels "
          f"(input {base[person].mean():.1f}), {dt:.1f} s")
    assert err.mean() < 4.0
    assert err[person].mean() < 0.2 * base[person].mean()  # the person is removed


def test_panorama_homographies_and_key_step():
    frames, true = pan_video(T=60)
    homs, failed = frame_homographies(frames)
    assert failed == []
    ref = len(frames) // 2
    # Ground truth: frame t is the crop at x + 2t, y + 0.1t, so x_ref = x + 2(t - ref).
    t = np.arange(len(frames))
    assert np.abs(homs[:, 0, 2] - 2.0 * (t - ref)).max() < 2.0
    assert np.abs(homs[:, 1, 2] - 0.1 * (t - ref)).max() < 2.0
    pano = fit_panorama(frames, step=3)  # every 3rd frame matched, the rest interpolated
    assert pano.covered.mean() > 0.9
    err = np.abs(pano.backgrounds().astype(int) - true).mean()
    assert err < 5.0


def test_pan_with_a_textured_followed_person():
    """The person carries more SIFT matches than the scene; the background consensus must still win."""
    frames, true = pan_video(person=0.2)
    homs, _ = frame_homographies(frames)
    t = np.arange(len(frames))
    err_px = np.abs(homs[:, 0, 2] - 2.0 * (t - len(frames) // 2))
    est = panorama_backgrounds(frames)
    mae, base = np.abs(est.astype(int) - true).mean(), np.abs(frames.astype(int) - true).mean()
    print(f"pan, textured person on 22% of the frame: median |Δx| {np.median(err_px):.2f} px, "
          f"MAE {mae:.2f} (input {base:.2f})")
    assert np.median(err_px) < 1.0 and np.mean(err_px < 3) > 0.9
    assert mae < 0.4 * base


def test_auto_tells_static_from_moving_camera():
    static, bg, _ = static_video(T=120)
    pan, _ = pan_video(T=60)
    assert camera_motion_px(static) < 0.5
    assert camera_motion_px(pan) > 10
    assert choose_method(static) == "median" and choose_method(pan) == "pan"
    assert estimate_background(static).shape == bg.shape
    assert estimate_background(pan).shape == pan.shape
    assert [method_for_scenario(s) for s in ("lab", "dive", "pan", "")] == ["median", "dive", "pan", "auto"]


def test_low_texture_falls_back_with_a_warning():
    frames = np.full((10, 48, 64, 3), 90, np.uint8)
    with pytest.warns(BackgroundWarning, match="no reliable homography"):
        homs, failed = frame_homographies(frames)
    np.testing.assert_allclose(homs, np.tile(np.eye(3), (10, 1, 1)))
    assert failed == list(range(1, 10))
    with pytest.warns(BackgroundWarning):
        est = panorama_backgrounds(frames)
    assert est.shape == frames.shape and np.all(est == 90)
    with pytest.warns(BackgroundWarning, match="assuming a static camera"):
        est = estimate_background(frames)
    assert est.shape == (48, 64, 3)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(BackgroundError, match="uint8"):
        median_background(np.zeros((3, 4, 4, 3), np.float32))
    with pytest.raises(BackgroundError, match=r"\(T, H, W, 3\)"):
        median_background(np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(BackgroundError, match="unknown background method"):
        estimate_background(np.zeros((3, 4, 4, 3), np.uint8), method="mean")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a static, well-textured video warns about nothing
        median_background(static_video(T=20)[0])
