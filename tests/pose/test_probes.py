"""Closed-form probes and shortcut inputs, on hand-made features whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.pose.probes import (ProbeError, box_camera_inputs, held_out_subjects, knn_predict, knn_predict_many,
                                  linear_classifier_accuracy, ridge_fit, ridge_fit_many, ridge_predict,
                                  standardise)


def _linear_data(n=200, d=6, j=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = rng.normal(size=(d, 3 * j)) * 100
    y = (x @ w + 50.0).reshape(n, j, 3)     # poses, mm, exactly linear in x (with a bias)
    return x, y, w


def test_standardise_uses_training_statistics_only():
    train = np.array([[0.0, 5.0], [2.0, 5.0]])
    test = np.array([[4.0, 7.0]])
    tr, te = standardise(train, test)
    np.testing.assert_allclose(tr, [[-1.0, 0.0], [1.0, 0.0]])
    # column 0: (4 - 1) / 1; column 1 is constant in training: scale 1, so 7 - 5
    np.testing.assert_allclose(te, [[3.0, 2.0]])
    with pytest.raises(ProbeError, match="columns"):
        standardise(train, np.zeros((1, 3)))
    with pytest.raises(ProbeError, match="non-finite"):
        standardise(np.array([[np.nan, 1.0]]))


def test_ridge_recovers_an_exactly_linear_map_and_shrinks_with_alpha():
    x, y, true_w = _linear_data()
    xt = _linear_data(seed=1)[0]
    w = ridge_fit(x, y, alpha=0.0)
    np.testing.assert_allclose(ridge_predict(w, x, (4, 3)), y, atol=1e-6)
    # new inputs through the same map: still exact (the map is what was learnt, not the rows)
    yt = (xt @ true_w + 50.0).reshape(-1, 4, 3)
    np.testing.assert_allclose(ridge_predict(w, xt, (4, 3)), yt, atol=1e-6)
    # a huge ridge leaves only the (unpenalised) bias: the mean pose
    big = ridge_predict(ridge_fit(x, y, alpha=1e9), xt, (4, 3))
    np.testing.assert_allclose(big, np.broadcast_to(y.mean(axis=0), big.shape), atol=1e-3)
    with pytest.raises(ProbeError, match="rows"):
        ridge_fit(x[:10], y, 1.0)
    with pytest.raises(ProbeError, match="at least one number per row"):
        ridge_fit(x, y[:, 0, 0], 1.0)


def test_ridge_fit_many_equals_one_fit_per_alpha():
    x, y, _ = _linear_data()
    noisy = y + np.random.default_rng(2).normal(size=y.shape) * 30
    many = ridge_fit_many(x, noisy, [0.0, 0.1, 10.0])
    assert list(many) == [0.0, 0.1, 10.0]
    for a, w in many.items():
        np.testing.assert_allclose(w, ridge_fit(x, noisy, a), rtol=1e-10, atol=1e-8)
    # different alphas really give different fits (the shared Gram is copied, not shrunk in place)
    assert not np.allclose(many[0.0], many[10.0])
    with pytest.raises(ProbeError, match="alpha must be >= 0"):
        ridge_fit_many(x, y, [1.0, -1.0])


def test_knn_returns_the_mean_of_the_k_nearest_poses():
    train_x = np.array([[0.0], [1.0], [10.0], [11.0]])
    train_y = np.arange(4 * 2 * 3, dtype=float).reshape(4, 2, 3)
    test_x = np.array([[0.2], [10.6]])
    one = knn_predict(train_x, train_y, test_x, k=1)
    np.testing.assert_allclose(one, train_y[[0, 3]])
    two = knn_predict(train_x, train_y, test_x, k=2, batch=1)
    np.testing.assert_allclose(two, [train_y[[0, 1]].mean(0), train_y[[2, 3]].mean(0)])
    # k larger than the training set: every row, the mean pose
    np.testing.assert_allclose(knn_predict(train_x, train_y, test_x, k=99), np.broadcast_to(train_y.mean(0), (2, 2, 3)))
    with pytest.raises(ProbeError, match="k must be"):
        knn_predict(train_x, train_y, test_x, k=0)


def test_knn_matches_a_stable_sort_even_with_many_ties():
    """The neighbour search (top-k, then exact tie repair) equals a brute-force stable sort: the k nearest by
    distance, ties to the earlier training row — on integer features where ties are everywhere."""
    rng = np.random.default_rng(3)
    train_x = rng.integers(0, 3, (300, 2)).astype(float)      # 9 distinct points: every distance is tied
    train_y = rng.normal(size=(300, 1, 3))
    test_x = rng.integers(0, 3, (40, 2)).astype(float) + rng.choice([0.0, 0.5], (40, 1))
    d = ((test_x[:, None, :] - train_x[None, :, :]) ** 2).sum(-1)
    ks = (1, 7, 50, 299)
    got = knn_predict_many(train_x, train_y, test_x, ks, batch=16)
    for k in ks:
        nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
        np.testing.assert_allclose(got[k], train_y[nearest].mean(axis=1), atol=1e-12)


def test_box_camera_inputs_are_relative_to_the_frame_with_a_one_hot_camera():
    boxes = np.array([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 64.0, 32.0]])
    hw = np.array([[100, 200], [64, 64]])
    x = box_camera_inputs(boxes, hw, ["cam2", "cam1"])
    np.testing.assert_allclose(x[0, :5], [20 / 200, 40 / 100, 20 / 200, 40 / 100, np.log(40 / 20)])
    np.testing.assert_allclose(x[1, :5], [0.5, 0.25, 1.0, 0.5, np.log(0.5)])
    np.testing.assert_array_equal(x[:, 5:], [[0, 1], [1, 0]])     # sorted names: cam1, cam2
    x = box_camera_inputs(boxes, hw, ["cam2", "cam9"], view_names=["cam1", "cam2"])
    np.testing.assert_array_equal(x[:, 5:], [[0, 1], [0, 0]])     # an unknown camera: no column set
    with pytest.raises(ProbeError, match="must match"):
        box_camera_inputs(boxes, hw, ["cam1"])


def test_held_out_subjects_never_reach_training():
    subjects = ["S1", "S5", "S1", "S7", "S5"]
    train, val = held_out_subjects(subjects, ["S5"])
    assert val.tolist() == [False, True, False, False, True] and (train == ~val).all()
    assert not set(np.asarray(subjects)[train]) & {"S5"}
    with pytest.raises(ProbeError, match="S9"):
        held_out_subjects(subjects, ["S9"])
    with pytest.raises(ProbeError, match="nothing left"):
        held_out_subjects(subjects, ["S1", "S5", "S7"])


def test_linear_classifier_reads_separable_classes_and_not_noise():
    rng = np.random.default_rng(0)
    centres = {"S1": [3.0, 0.0], "S5": [0.0, 3.0], "S6": [-3.0, -3.0], "S7": [3.0, 3.0]}
    labels = np.repeat(list(centres), 50)
    x = np.array([centres[c] for c in labels]) + rng.normal(0, 0.3, (200, 2))
    xt = np.array([centres[c] for c in labels]) + rng.normal(0, 0.3, (200, 2))
    assert linear_classifier_accuracy(x, labels, xt, labels) > 0.95
    # features that carry no label: about chance (1/4)
    noise = rng.normal(size=(200, 2))
    assert linear_classifier_accuracy(noise, labels, rng.normal(size=(200, 2)), labels) < 0.45
    with pytest.raises(ProbeError, match="never occur"):
        linear_classifier_accuracy(x, labels, xt[:2], ["S9", "S1"])
    with pytest.raises(ProbeError, match="two classes"):
        linear_classifier_accuracy(x[:5], ["S1"] * 5, xt[:5], ["S1"] * 5)
