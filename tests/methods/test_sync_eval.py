"""Scoring the sync pretext task (selfpose.methods.sync_eval): cluster-bootstrap intervals, the flip leak."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfpose.methods.sync_eval import cluster_bootstrap_ci, pretext_scores


def test_cluster_bootstrap_interval_covers_the_accuracy_and_widens_with_clusters():
    rng = np.random.default_rng(0)
    correct = rng.random(600) < 0.7
    lo, hi = cluster_bootstrap_ci(correct, np.arange(600))
    assert lo < correct.mean() < hi and hi - lo < 0.1
    # the same pairs in 20 clusters of 30 identical outcomes: far less evidence, a wider interval
    clustered = np.repeat(rng.random(20) < 0.7, 30)
    clo, chi = cluster_bootstrap_ci(clustered, np.repeat(np.arange(20), 30))
    assert chi - clo > 2 * (hi - lo)
    assert np.isnan(cluster_bootstrap_ci(np.zeros(0, bool), np.zeros(0))).all()


def test_balanced_interval_averages_the_classes_of_each_draw():
    # 90 negatives all right, 10 positives all wrong: plain accuracy 0.9, balanced exactly 0.5 in every draw
    correct = np.r_[np.ones(90, bool), np.zeros(10, bool)]
    truth = np.r_[np.zeros(90, bool), np.ones(10, bool)]
    assert cluster_bootstrap_ci(correct, np.arange(100), classes=truth) == (0.5, 0.5)
    lo, hi = cluster_bootstrap_ci(correct, np.arange(100))
    assert 0.8 < lo < 0.9 < hi
    # both classes 70% right: the balanced interval covers 0.7
    rng = np.random.default_rng(1)
    truth = rng.random(400) < 0.3
    correct = rng.random(400) < 0.7
    lo, hi = cluster_bootstrap_ci(correct, np.arange(400), classes=truth)
    bal = 0.5 * (correct[truth].mean() + correct[~truth].mean())
    assert lo < bal < hi and hi - lo < 0.2


class _FlipReader(torch.nn.Module):
    """A 'method' whose sync head sees only whether the pair is flipped (the leak a flip shortcut opens)."""

    def batch_labels(self, stage):
        return []

    def pair_logits(self, batch):
        flip = batch["flip"].bool()
        z = torch.where(flip, 5.0, -5.0)
        return {"sync": z, "flip": z}, {}


def test_sync_score_without_flipped_pairs_exposes_a_flip_cue(tmp_path):
    from selfpose.data.store import Dataset
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize

    ds = Dataset.open(synthesize(SynthConfig(scenario="lab", height=32, width=32, max_sequences=2, max_seconds=4,
                                             fps=10, batch_size=8, num_sequences=2), tmp_path / "d", progress=False))
    s = pretext_scores(_FlipReader(), ds, num_pairs=400, seed=0,
                       sampler_kwargs={"min_offset_s": 0.1, "max_offset_s": 1.5})
    # the flip head is perfect; the sync head looks far better than chance (flipped pairs are always synchronised) …
    assert s["flip"]["accuracy"] == 1.0
    assert s["sync"]["accuracy"] > 0.7
    # … but on unflipped pairs, balanced over the two classes, it is exactly at chance
    u = s["sync_unflipped"]
    assert u["balanced"] and u["accuracy"] == pytest.approx(0.5)
    assert u["scored"] == int((~s["flip_truth"]).sum())
    assert u["ci95"][0] <= 0.5 <= u["ci95"][1]


def test_a_runs_sampler_settings_become_the_pair_samplers_arguments_and_scores_read_as_text():
    import inspect

    from selfpose.data.samplers import SyncPairSampler
    from selfpose.methods.sync_eval import format_accuracy, run_sampler_kwargs
    from selfpose.methods.temporal import SamplerConfig

    s = SamplerConfig(sync_min_offset_s=0.1, sync_max_offset_s=1.5, still_fraction=0.3, single_view=True)
    kw = run_sampler_kwargs(s)
    assert kw["min_offset_s"] == 0.1 and kw["max_offset_s"] == 1.5 and kw["still_fraction"] == 0.3
    assert kw["single_view"] is True and kw["flip_unsync"] == s.flip_unsync
    assert set(kw) <= set(inspect.signature(SyncPairSampler).parameters)   # every key is one the sampler takes
    assert format_accuracy({"accuracy": 0.615, "ci95": (0.586, 0.643)}) == "61.5% [58.6, 64.3]"
    assert format_accuracy(None) == "—"
