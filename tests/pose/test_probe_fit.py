"""The pose stage's closed-form probes (ridge, k-NN) on hand-made features whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.config import ConfigError, from_dict
from selfpose.pose.features import FeatureSet
from selfpose.pose.probe_fit import FittedProbes, ProbeConfig, fit_probes
from selfpose.pose.probes import knn_predict, knn_predict_many, select_knn, select_ridge


def feature_set(x, poses, subjects=None) -> FeatureSet:
    """A FeatureSet of hand-made features ``x`` (N, D) and pelvis-centred poses (N, J, 3) mm."""
    n = len(x)
    s = np.asarray(subjects if subjects is not None else ["S1"] * n, dtype=str)
    return FeatureSet(features=np.asarray(x, np.float32), seq=np.zeros(n, np.int64), frame=np.arange(n),
                      frame_ids=np.arange(n), frame_hw=np.full((n, 2), 64), sequence_ids=s, subjects=s,
                      actions=np.full(n, "walk"), takes=s, views=np.full(n, "c0"),
                      joints3d=np.asarray(poses, np.float32))


def _poses(rng, n, j=5):
    p = rng.normal(0, 200, (n, j, 3))
    return p - p[:, :1]


def test_linear_features_give_an_exact_ridge_probe_and_its_alpha_is_chosen_on_validation():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(15, 12))
    y, yv = _poses(rng, 300), _poses(rng, 100)
    x, xv = y.reshape(300, -1) @ A, yv.reshape(100, -1) @ A          # features: a linear image of the pose
    pr = fit_probes(feature_set(x, y), ProbeConfig(kinds=("ridge",), ridge_alphas=(1.0, 1e-8)),
                    feature_set(xv, yv))
    assert pr.chosen == {"ridge": 1e-8}                                # the map is exact: no shrinkage wins
    assert pr.val_n_mpjpe["ridge"]["1e-08"] < 1.0 < pr.val_n_mpjpe["ridge"]["1"]
    np.testing.assert_allclose(pr.predict(xv)["ridge"], yv, atol=0.5)  # mm
    assert pr.bank_x is None and set(pr.predict(xv)) == {"ridge"}


def test_noise_features_choose_the_strongest_ridge_the_mean_pose():
    rng = np.random.default_rng(1)
    y, yv = _poses(rng, 60) + 100.0 * np.arange(5)[:, None], _poses(rng, 200)
    y, yv = y - y[:, :1], yv - yv[:, :1]
    x, xv = rng.normal(size=(60, 40)), rng.normal(size=(200, 40))     # nothing to read: 40 columns, 60 rows
    alpha, scores = select_ridge(x, y, xv, yv, (0.0, 1e6))
    assert alpha == 1e6 and scores[1e6] < scores[0.0]


def test_knn_probe_finds_the_copy_of_each_validation_frame_and_k_is_chosen():
    rng = np.random.default_rng(2)
    y = _poses(rng, 200)
    x = rng.normal(size=(200, 6))
    # each validation frame is a near-copy of a training frame: its single nearest neighbour is the answer
    pick = rng.choice(200, 50, replace=False)
    xv, yv = x[pick] + 1e-3, y[pick]
    k, scores = select_knn(x, y, xv, yv, (10, 1, 5))
    assert k == 1 and scores[1] < 1e-6 < scores[5] < scores[10] + 1e-9
    pr = fit_probes(feature_set(x, y), ProbeConfig(kinds=("knn",), knn_ks=(10, 1)), feature_set(xv, yv))
    assert pr.chosen == {"knn": 1}
    # raw features in: the probe standardises them with the training statistics itself
    np.testing.assert_allclose(pr.predict(xv)["knn"], yv, atol=1e-3)


def test_knn_many_equals_one_k_at_a_time_with_ties_to_the_earlier_row():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(120, 2)).astype(float)                # many exact ties
    y = rng.normal(size=(120, 2, 3))
    t = rng.integers(0, 3, size=(30, 2)).astype(float)
    many = knn_predict_many(x, y, t, (1, 4, 9, 500), batch=7)
    assert set(many) == {1, 4, 9, 120}                                # k clipped to the 120 rows
    for k in (1, 4, 9):
        d = ((t[:, None] - x[None]) ** 2).sum(-1)
        idx = np.argsort(d, axis=1, kind="stable")[:, :k]              # the stable order: earlier row first
        np.testing.assert_allclose(many[k], y[idx].mean(1), atol=1e-12)
        np.testing.assert_allclose(knn_predict(x, y, t, k=k), many[k])


def test_without_validation_the_first_values_are_used_and_probes_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    y = _poses(rng, 80)
    x = rng.normal(size=(80, 7)) * [1, 10, 100, 1, 1, 1, 0]            # a constant column keeps scale 1
    pr = fit_probes(feature_set(x, y), ProbeConfig(ridge_alphas=(0.5, 0.0), knn_ks=(3, 1)))
    assert pr.chosen == {"ridge": 0.5, "knn": 3} and pr.val_n_mpjpe == {}
    assert np.isfinite(pr.std).all() and pr.std[-1] == 1.0
    back = FittedProbes.load(pr.save(tmp_path / "probes"))
    xt = rng.normal(size=(10, 7))
    for k, v in pr.predict(xt).items():
        np.testing.assert_array_equal(back.predict(xt)[k], v)
        assert v.shape == (10, 5, 3) and np.all(v[:, 0] == 0)          # pelvis-centred
    assert back.info() == pr.info()
    assert fit_probes(feature_set(x, y), ProbeConfig(kinds=())) is None


def test_probe_config_is_strict():
    with pytest.raises(ConfigError, match="kinds"):
        from_dict(ProbeConfig, {"kinds": ["lasso"]})
    with pytest.raises(ConfigError, match="knn_ks"):
        from_dict(ProbeConfig, {"knn_ks": [0]})
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(ProbeConfig, {"alpha": 1})


def test_k_is_chosen_on_at_most_knn_val_rows_evenly_spaced_held_out_rows(monkeypatch):
    import selfpose.pose.probes as pr_mod
    from selfpose.pose.probe_fit import knn_selection_rows

    assert knn_selection_rows(7, None).tolist() == list(range(7)) == knn_selection_rows(7, 7).tolist()
    rows = knn_selection_rows(1000, 10)
    assert len(rows) == 10 and rows[0] == 0 and rows[-1] == 999 and np.all(np.diff(rows) >= 110)
    rng = np.random.default_rng(5)
    y = _poses(rng, 200)
    x = rng.normal(size=(200, 6))
    pick = rng.choice(200, 120, replace=False)
    seen = []
    real = pr_mod.select_knn
    monkeypatch.setattr(pr_mod, "select_knn", lambda tx, ty, vx, vy, ks: seen.append(len(vx)) or real(tx, ty, vx, vy, ks))
    capped = fit_probes(feature_set(x, y), ProbeConfig(kinds=("knn",), knn_ks=(10, 1), knn_val_rows=30),
                        feature_set(x[pick] + 1e-3, y[pick]))
    full = fit_probes(feature_set(x, y), ProbeConfig(kinds=("knn",), knn_ks=(10, 1), knn_val_rows=None),
                      feature_set(x[pick] + 1e-3, y[pick]))
    assert seen == [30, 120]
    assert capped.chosen == full.chosen == {"knn": 1}     # the copies are found on the subset too
    with pytest.raises(ConfigError, match="knn_val_rows"):
        ProbeConfig(knn_val_rows=0)
