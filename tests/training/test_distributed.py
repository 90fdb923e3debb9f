"""Two-process data-parallel training on CPU (gloo over 127.0.0.1)."""

from __future__ import annotations

from functools import partial

import pytest

from selfpose.training import distributed as D
from selfpose.training.checkpoint import list_checkpoints
from selfpose.training.logs import read_metrics
from selfpose.training.loop import _run, prepare_out_dir, train
from selfpose.training.toy import ToyAutoencoder, toy_sampler


def test_helpers_without_process_group():
    assert not D.is_distributed() and D.rank() == 0 and D.world_size() == 1
    assert D.any_true(True) and not D.any_true(False)
    assert D.gather_objects({"a": 1}) == [{"a": 1}]
    assert D.mean_dicts([{"a": 1.0, "b": 2.0}, {"a": 3.0}]) == {"a": 2.0, "b": 2.0}
    assert 0 < D.free_port() < 65536
    m = ToyAutoencoder()
    assert D.wrap_ddp(m) is m
    before = D.params_digest(m)
    assert before == D.params_digest(m) != D.params_digest(ToyAutoencoder(latent=8))
    m.encoder[1].running_mean += 1  # buffers (rank 0's are broadcast by DDP) do not count
    assert D.params_digest(m) == before


def test_two_processes(blobs, tmp_path, run_config):
    cfg = run_config(steps=16, processes=2, checkpoint_every=8)
    out = prepare_out_dir(tmp_path / "ddp", resume=False, overwrite=False)
    results = D.launch(_run, 2, (ToyAutoencoder, blobs, toy_sampler, cfg, out, False, False))
    assert [r.step for r in results] == [16, 16]
    assert results[0].weights_digest == results[1].weights_digest  # replicas stayed identical
    rows = read_metrics(out)
    assert [int(r["step"]) for r in rows] == list(range(1, 17))  # only rank 0 logs
    first, last = sum(r["loss"] for r in rows[:3]), sum(r["loss"] for r in rows[-3:])
    assert last < 0.8 * first, (first, last)
    assert [s for s, _ in list_checkpoints(out)] == [8, 16]
    # The ranks drew different tuples: one process with the same per-process batch ends elsewhere.
    single = train(ToyAutoencoder, blobs, toy_sampler, run_config(steps=16, checkpoint_every=8), tmp_path / "one",
                   progress=False)
    assert single.weights_digest != results[0].weights_digest


def test_rank_failure_is_reported(blobs, tmp_path, run_config):
    cfg = run_config(steps=2, processes=2)
    with pytest.raises(D.DistributedError, match="(?s)a training process failed.*size must be a multiple of 4"):
        train(partial(ToyAutoencoder, size=30), blobs.root, toy_sampler, cfg, tmp_path / "run", progress=False)
