"""2D detector noise models: statistics match their settings, seeding, shapes, masks, validation."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.config import ConfigError, from_dict
from selfpose.geometry.skeleton import H36M17
from selfpose.lifting.noise import (
    DEFAULT_JOINT_SCALE,
    LIMB_PAIRS,
    NoiseConfig,
    NoiseInputError,
    corrupt,
    dropout_mask,
    jitter,
    missing_mask,
    outliers,
    outside_mask,
    sample_rng,
    swap_limbs,
    zero_noise,
)


def poses(shape=(50, 17), seed=0) -> np.ndarray:
    """Distinct finite joints ``(*shape, 2)`` px inside a 1000×1000 image (every joint differs from every other)."""
    rng = np.random.default_rng(seed)
    base = np.stack([np.arange(17) * 40.0 + 100, np.arange(17) * 25.0 + 200], axis=-1)  # (17, 2)
    return (base + rng.uniform(-5, 5, shape + (2,))).astype(np.float32)


def binomial_tol(n: int, p: float, k: float = 5.0) -> float:
    """``k`` standard deviations of a rate estimated from ``n`` Bernoulli(p) trials."""
    return k * np.sqrt(p * (1 - p) / n)


def test_default_config_is_valid_and_documented_factors_have_mean_one():
    cfg = NoiseConfig()
    assert len(cfg.jitter_joint_scale) == H36M17.num_joints
    assert np.mean(DEFAULT_JOINT_SCALE) == pytest.approx(1.0, abs=0.01)
    # extremities noisier than the head, as documented
    assert cfg.jitter_joint_scale[H36M17.index("left_wrist")] > cfg.jitter_joint_scale[H36M17.index("head")]


def test_zero_config_is_identity_for_both_shapes():
    for shape in [(30, 17), (4, 30, 17)]:
        x = poses(shape)
        noisy, vis = corrupt(x, zero_noise(), np.random.default_rng(1))
        assert noisy.dtype == x.dtype
        np.testing.assert_array_equal(noisy, x)
        assert vis.dtype == np.float32 and vis.shape == shape and (vis == 1).all()
    # also with image bounds, when every joint is inside
    noisy, vis = corrupt(poses(), zero_noise(), np.random.default_rng(1), image_size=(1000, 1000))
    np.testing.assert_array_equal(noisy, poses())
    assert (vis == 1).all()


@pytest.mark.parametrize("shape", [(40, 17), (3, 40, 17)])
def test_shapes_and_nan_exactly_where_invisible(shape):
    cfg = NoiseConfig(missing_prob=0.2, dropout_joint_prob=0.05, dropout_person_prob=0.05)
    noisy, vis = corrupt(poses(shape), cfg, np.random.default_rng(2), image_size=(1000, 1000))
    assert noisy.shape == shape + (2,) and vis.shape == shape
    assert set(np.unique(vis)) == {0.0, 1.0}
    nan = np.isnan(noisy)
    assert (nan[..., 0] == nan[..., 1]).all()  # a joint is missing whole, never one coordinate
    np.testing.assert_array_equal(nan[..., 0], vis == 0)


def test_seeded_reproducibility_and_seed_dependence():
    x = poses((3, 60, 17))
    a = corrupt(x, NoiseConfig(), np.random.default_rng(7), (1000, 1000))
    b = corrupt(x, NoiseConfig(), np.random.default_rng(7), (1000, 1000))
    c = corrupt(x, NoiseConfig(), np.random.default_rng(8), (1000, 1000))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0], equal_nan=True)
    s1 = corrupt(x, NoiseConfig(), sample_rng(0, 1, 5))[0]
    np.testing.assert_array_equal(s1, corrupt(x, NoiseConfig(), sample_rng(0, 1, 5))[0])
    assert not np.array_equal(s1, corrupt(x, NoiseConfig(), sample_rng(0, 2, 5))[0], equal_nan=True)


def test_switching_one_mode_off_keeps_the_others_draws():
    x = poses((2, 50, 17))
    only_jitter = corrupt(x, NoiseConfig(outlier_prob=0, swap_prob=0, missing_prob=0, dropout_joint_prob=0,
                                         dropout_person_prob=0), np.random.default_rng(3))[0]
    with_missing = corrupt(x, NoiseConfig(outlier_prob=0, swap_prob=0, missing_prob=0.3, dropout_joint_prob=0,
                                          dropout_person_prob=0), np.random.default_rng(3))[0]
    both = ~np.isnan(with_missing)
    assert both.mean() < 0.8
    np.testing.assert_array_equal(with_missing[both], only_jitter[both])


def test_jitter_std_matches_per_joint_setting():
    x = np.zeros((20000, 17, 2))
    scale = np.linspace(0.5, 1.5, 17)
    d = jitter(x, 4.0, tuple(scale), np.random.default_rng(0))
    std = d.std(axis=0)  # (17, 2)
    np.testing.assert_allclose(std, np.repeat((4.0 * scale)[:, None], 2, axis=1), rtol=0.03)
    assert abs(d.mean()) < 0.05
    # through corrupt with the default factors
    cfg = NoiseConfig(jitter_std_px=3.0, outlier_prob=0, swap_prob=0, missing_prob=0, dropout_joint_prob=0,
                      dropout_person_prob=0)
    noisy, _ = corrupt(np.zeros((10, 2000, 17, 2)), cfg, np.random.default_rng(1))
    per_joint = noisy.reshape(-1, 17, 2).std(axis=0).mean(axis=-1)
    np.testing.assert_allclose(per_joint, 3.0 * np.array(DEFAULT_JOINT_SCALE), rtol=0.03)


def test_outlier_rate_and_magnitude():
    x = poses((4000, 17))
    n = x.shape[0] * 17
    out, hit = outliers(x, 0.05, 50.0, 0.0, np.random.default_rng(0))
    assert abs(hit.mean() - 0.05) < binomial_tol(n, 0.05)
    moved = np.linalg.norm(out - x, axis=-1)
    assert (moved[~hit] == 0).all()
    assert moved[hit].min() >= 25 - 1e-6 and moved[hit].max() <= 75 + 1e-6
    assert moved[hit].mean() == pytest.approx(50.0, rel=0.03)


def test_jumping_outliers_land_on_another_joint():
    x = poses((3000, 17)).astype(np.float64)
    out, hit = outliers(x, 0.1, 50.0, 1.0, np.random.default_rng(0))
    f, j = np.nonzero(hit)
    dist = np.linalg.norm(out[f, j][:, None, :] - x[f], axis=-1)  # (hits, 17) distance to every joint of that frame
    assert (dist.min(axis=1) == 0).all()           # exactly on some joint...
    assert (dist.argmin(axis=1) != j).all()        # ...that is not itself


def test_swaps_exchange_left_and_right_at_the_set_rate():
    x = poses((20000, 17))
    out, swapped = swap_limbs(x, 0.1, np.random.default_rng(0))
    assert swapped.shape == (20000, len(LIMB_PAIRS))
    assert abs(swapped.mean() - 0.1) < binomial_tol(swapped.size, 0.1)
    for k, (left, right) in enumerate(LIMB_PAIRS):
        s = swapped[:, k]
        np.testing.assert_array_equal(out[s][:, left], x[s][:, right])
        np.testing.assert_array_equal(out[s][:, right], x[s][:, left])
        np.testing.assert_array_equal(out[~s][:, left + right], x[~s][:, left + right])
    untouched = [i for i in range(17) if not any(i in l + r for l, r in LIMB_PAIRS)]
    np.testing.assert_array_equal(out[:, untouched], x[:, untouched])
    # the swapped joints are the H36M17 left/right wrists and ankles, among others
    flip = {frozenset(pair) for pair in H36M17.flip_pairs}
    assert all(frozenset((a, b)) in flip for l, r in LIMB_PAIRS for a, b in zip(l, r))
    names = {H36M17.joint_names[i] for l, r in LIMB_PAIRS for i in l + r}
    assert {"left_wrist", "right_wrist", "left_ankle", "right_ankle"} <= names


def test_missing_rate():
    m = missing_mask((500, 17 * 20), 0.07, np.random.default_rng(0))
    assert abs(m.mean() - 0.07) < binomial_tol(m.size, 0.07)


def run_stats(mask: np.ndarray) -> tuple[int, int, list[int]]:
    """(runs started, visible frames that could start one, lengths of runs that ended) of ``(S, T)`` bool streams."""
    starts, chances, lengths = 0, 0, []
    for m in mask:
        prev = np.concatenate([[False], m[:-1]])
        starts += int((m & ~prev).sum())
        chances += int((~prev).sum())
        edges = np.flatnonzero(np.diff(np.concatenate([[0], m.astype(int), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            if b < m.size:  # a run cut by the sequence's end is shorter than drawn
                lengths.append(b - a)
    return starts, chances, lengths


def test_dropout_start_rate_and_mean_length():
    p, L = 0.01, 8.0
    mask = dropout_mask((400, 500, 17), p, L, np.random.default_rng(0))
    streams = mask.transpose(0, 2, 1).reshape(-1, 500)
    starts, chances, lengths = run_stats(streams)
    assert abs(starts / chances - p) < binomial_tol(chances, p)
    assert np.mean(lengths) == pytest.approx(L, rel=0.03)
    assert min(lengths) >= 1
    assert mask.mean() == pytest.approx(p * L / (1 + p * L), rel=0.05)


def test_person_dropout_hides_every_joint_for_a_run():
    cfg = NoiseConfig(jitter_std_px=0, outlier_prob=0, swap_prob=0, missing_prob=0, dropout_joint_prob=0,
                      dropout_person_prob=0.02, dropout_mean_frames=5)
    _, vis = corrupt(poses((200, 300, 17)), cfg, np.random.default_rng(0))
    frame_gone = vis.max(axis=-1) == 0
    assert ((vis == 0).all(axis=-1) == frame_gone).all() and ((vis == 1).all(axis=-1) == ~frame_gone).all()
    starts, chances, lengths = run_stats(frame_gone)
    assert abs(starts / chances - 0.02) < binomial_tol(chances, 0.02)
    assert np.mean(lengths) == pytest.approx(5.0, rel=0.05)


def test_joints_outside_the_image_go_missing_unless_kept():
    x = poses((10, 17))
    x[:, 3, 0] = 1200.0  # right ankle beyond the right border of a 1000-px-wide image
    noisy, vis = corrupt(x, zero_noise(), np.random.default_rng(0), image_size=(1000, 1000))
    assert (vis[:, 3] == 1).all()  # zero_noise keeps them
    cfg = NoiseConfig(jitter_std_px=0, outlier_prob=0, swap_prob=0, missing_prob=0, dropout_joint_prob=0,
                      dropout_person_prob=0)
    noisy, vis = corrupt(x, cfg, np.random.default_rng(0), image_size=(1000, 1000))
    assert (vis[:, 3] == 0).all() and np.isnan(noisy[:, 3]).all()
    assert (vis[:, np.arange(17) != 3] == 1).all()
    # non-finite input joints count as missing
    x[0, 5] = np.nan
    _, vis = corrupt(x, zero_noise(), np.random.default_rng(0))
    assert vis[0, 5] == 0 and vis.sum() == vis.size - 1


def test_combined_default_noise_statistics():
    clean = poses((20, 500, 17))
    noisy, vis = corrupt(clean, NoiseConfig(), np.random.default_rng(0), (1000, 1000))
    # missing: i.i.d. 1% + joint dropouts (p·L/(1+p·L) ≈ 2%) + person dropouts (≈ 0.5%) ≈ 3.4%
    assert 0.02 < 1 - vis.mean() < 0.05
    # mean 2D error of the visible joints: jitter ≈ 4·√(π/2) = 5 px, plus ~1% outliers and swaps (documented ≈ 5.9 px)
    err = np.linalg.norm(noisy - clean, axis=-1)[vis > 0]
    assert 5.0 < err.mean() < 7.5


@pytest.mark.parametrize("key,value,words", [
    ("jitter_std_px", -1.0, "jitter_std_px must be a finite number ≥ 0"),
    ("outlier_px", -5, "outlier_px must be"),
    ("outlier_prob", 1.5, "outlier_prob must be a probability in [0, 1]"),
    ("swap_prob", -0.1, "swap_prob must be a probability"),
    ("missing_prob", 2, "missing_prob must be a probability"),
    ("dropout_joint_prob", -0.01, "dropout_joint_prob must be a probability"),
    ("dropout_person_prob", 1.01, "dropout_person_prob must be a probability"),
    ("outlier_jump_frac", 1.2, "outlier_jump_frac must be a probability"),
    ("dropout_mean_frames", 0.5, "dropout_mean_frames must be ≥ 1"),
    ("jitter_joint_scale", [1.0, -1.0], "jitter_joint_scale must be finite numbers ≥ 0"),
    ("outside_image", "clamp", "outside_image"),
    ("jiter_std_px", 1.0, "did you mean jitter_std_px"),
])
def test_config_errors_are_one_line(key, value, words):
    with pytest.raises(ConfigError) as e:
        from_dict(NoiseConfig, {key: value})
    assert words in str(e.value) and "\n" not in str(e.value)


def test_config_errors_in_code_too():
    with pytest.raises(ConfigError, match="must be a probability"):
        NoiseConfig(missing_prob=float("nan"))


def test_wrong_joint_count_or_shape_is_a_one_line_error():
    with pytest.raises(ConfigError, match="one factor per joint"):
        corrupt(np.zeros((5, 15, 2)), NoiseConfig(swap_prob=0), np.random.default_rng(0))
    with pytest.raises(NoiseInputError, match=r"\(T, J, 2\)"):
        corrupt(np.zeros((5, 17)), NoiseConfig(), np.random.default_rng(0))
    # a 15-joint skeleton works with per-joint factors of its own and no swaps
    cfg = NoiseConfig(jitter_joint_scale=(), swap_prob=0)
    noisy, vis = corrupt(np.zeros((5, 15, 2)), cfg, np.random.default_rng(0))
    assert noisy.shape == (5, 15, 2) and vis.shape == (5, 15)


def test_dropout_mask_follows_the_markov_chain_from_frame_zero():
    # The event-form draw must give the chain's exact transient: P(missing at t) from m_0 = p,
    # m_t = m_{t-1}(1 - q) + (1 - m_{t-1}) p, and P(missing at t | missing at t-1) = 1 - q.
    p, L, T = 0.05, 4.0, 24
    q = 1 / L
    mask = dropout_mask((60000, T, 1), p, L, np.random.default_rng(4))[..., 0]
    m = [p]
    for _ in range(1, T):
        m.append(m[-1] * (1 - q) + (1 - m[-1]) * p)
    n = mask.shape[0]
    for t in range(T):
        assert abs(mask[:, t].mean() - m[t]) < binomial_tol(n, m[t])
    stay = (mask[:, 1:] & mask[:, :-1]).sum() / mask[:, :-1].sum()
    assert abs(stay - (1 - q)) < binomial_tol(int(mask[:, :-1].sum()), 1 - q)


@pytest.mark.parametrize("p", [0.002, 0.05, 0.3, 1.0])
def test_missing_rate_on_sparse_and_dense_draws(p):
    m = missing_mask((400, 32, 17), p, np.random.default_rng(0))
    assert m.shape == (400, 32, 17) and m.dtype == bool
    assert abs(m.mean() - p) < binomial_tol(m.size, p) + 1e-12
    # independent of position: the rate is the same in each half of the flat order
    flat = m.reshape(-1)
    assert abs(flat[: flat.size // 2].mean() - flat[flat.size // 2:].mean()) < 2 * binomial_tol(flat.size // 2, p) + 1e-12


def test_clip_batches_are_reproducible_and_dropouts_run_along_time():
    x = poses((64, 32, 17))
    cfg = NoiseConfig(dropout_joint_prob=0.02, dropout_mean_frames=6)
    a = corrupt(x, cfg, sample_rng(0, 3, 1), (1000, 1000))
    b = corrupt(x, cfg, sample_rng(0, 3, 1), (1000, 1000))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # runs along T: a missing joint is much more often missing in the next frame than the overall rate
    gone = a[1] == 0
    after = (gone[:, 1:] & gone[:, :-1]).sum() / gone[:, :-1].sum()
    assert after > 0.5 > 3 * gone.mean()


@pytest.mark.parametrize("mode", ["swap_prob", "outlier_prob", "missing_prob", "dropout_joint_prob",
                                  "dropout_person_prob"])
def test_switching_any_mode_leaves_jitter_and_the_masks_of_others(mode):
    x = poses((8, 40, 17))
    on = NoiseConfig(**{mode: 0.05})
    off = NoiseConfig(**{mode: 0.0})
    (a, va), (b, vb) = (corrupt(x, c, np.random.default_rng(9)) for c in (on, off))
    both = (va > 0) & (vb > 0)
    same = (a == b).all(axis=-1) & both
    if mode in ("missing_prob", "dropout_joint_prob", "dropout_person_prob"):
        assert same[both].all()                 # only the mask changed
        assert (va <= vb).all() and va.sum() < vb.sum()
    else:
        assert 0.7 < same[both].mean() < 1.0    # only the hit joints moved
        np.testing.assert_array_equal(va, vb)   # the masks are untouched (no image bounds here)
    # and jitter on/off leaves every mask as it was
    nj = NoiseConfig(**{mode: 0.05}, jitter_std_px=0.0)
    np.testing.assert_array_equal(corrupt(x, nj, np.random.default_rng(9))[1], va)


def test_dtypes_and_one_joint_skeletons():
    x = poses((3, 10, 17))
    assert corrupt(x.astype(np.float64), NoiseConfig(), np.random.default_rng(0))[0].dtype == np.float64
    assert corrupt(np.rint(x).astype(np.int32), NoiseConfig(), np.random.default_rng(0))[0].dtype == np.float64
    assert corrupt(x, NoiseConfig(), np.random.default_rng(0))[0].dtype == np.float32
    # one joint: an outlier cannot jump onto another joint, it is displaced
    one = np.zeros((2000, 1, 2))
    out, hit = outliers(one, 0.5, 50.0, 1.0, np.random.default_rng(0))
    moved = np.linalg.norm(out - one, axis=-1)
    assert hit.any() and (moved[hit] >= 25 - 1e-6).all() and (moved[~hit] == 0).all()


def test_outside_mask_on_non_square_images_and_per_frame_sizes():
    # (x, y) px in an image of H=500, W=1000: x may reach 999.5, y only 499.5
    j = np.array([[[10, 10], [900, 10], [10, 900], [999.5, 499.5], [1000, 10], [-0.6, 10], [np.nan, 10]]],
                 np.float32)
    want = np.array([[False, False, True, False, True, True, True]])
    np.testing.assert_array_equal(outside_mask(j, (500, 1000)), want)
    np.testing.assert_array_equal(outside_mask(j[..., ::-1], (1000, 500)), want)   # transposed image
    # one size per frame (arrays broadcasting against (N, J)) gives the same answer
    hw = np.array([[500.0, 1000.0]])
    np.testing.assert_array_equal(outside_mask(j, (hw[:, 0:1], hw[:, 1:2])), want)


def test_person_px_scales_jitter_and_outliers_with_each_windows_person():
    """person_px=320: a window whose person spans 640 px gets twice the px jitter, one of 160 px half; the
    person's place in the image does not matter, and missing joints stay missing."""
    base = poses((400, 17), seed=2)   # joints spread over ~640 px (x 100..740), far from the origin
    small = (base - base.mean((0, 1))) / 4 + 500.0   # the same person at a quarter of the size, elsewhere
    cfg = NoiseConfig(jitter_std_px=3.0, jitter_joint_scale=(), outlier_prob=0, swap_prob=0, missing_prob=0,
                      dropout_joint_prob=0, dropout_person_prob=0, person_px=320.0)
    extent = np.median((base.max(1) - base.min(1)).max(-1))
    for x, factor in ((base, extent / 320), (small, extent / 4 / 320)):
        noisy, vis = corrupt(x[None], cfg, np.random.default_rng(3))
        np.testing.assert_allclose((noisy[0] - x).std(), 3.0 * factor, rtol=0.05)
        assert vis.all()
    absolute, _ = corrupt(small[None], NoiseConfig(**{**cfg.__dict__, "person_px": 0.0}), np.random.default_rng(3))
    np.testing.assert_allclose((absolute[0] - small).std(), 3.0, rtol=0.05)
    holes = base.copy()
    holes[:, 4] = np.nan
    noisy, vis = corrupt(holes[None], cfg, np.random.default_rng(3))
    assert np.isnan(noisy[0, :, 4]).all() and not vis[0, :, 4].any() and np.isfinite(noisy[0, :, :4]).all()
    # an all-missing window is left as it is (scale 1) rather than failing
    empty, vis = corrupt(np.full((1, 5, 17, 2), np.nan), cfg, np.random.default_rng(0))
    assert np.isnan(empty).all() and not vis.any()
    with pytest.raises(ConfigError, match="person_px"):
        NoiseConfig(person_px=-1.0)
