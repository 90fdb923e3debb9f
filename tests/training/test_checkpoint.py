"""Checkpoints: safetensors + JSON round trips, validation, fallback, pruning, no pickle."""

from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pytest
import torch

from selfpose.training import checkpoint as C
from selfpose.training.config import OptimConfig
from selfpose.training.toy import ToyAutoencoder


def trained(steps: int = 3, tied: bool = False):
    torch.manual_seed(0)
    m = ToyAutoencoder()
    if tied:  # a second name for the same tensor (tied weights)
        m.register_buffer("alias", m.encoder[0].weight.data)
    opt = m.configure_optimizer(OptimConfig(lr=1e-2))
    for _ in range(steps):
        loss, _ = m.training_step({"frames": torch.randint(0, 255, (2, 2, 3, 32, 32), dtype=torch.uint8)}, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m, opt


def save(run, step, m, opt, keep=0):
    return C.save_checkpoint(run, step, m.state_dict(), opt.state_dict(), {"rng": [C.rng_state()]}, keep=keep)


def test_round_trip_is_exact(tmp_path):
    m, opt = trained()
    path = save(tmp_path, 3, m, opt)
    assert path.name == "ckpt-0000003" and (tmp_path / "checkpoints" / "latest").read_text().strip() == path.name
    model_sd, opt_sd, ck = C.load_checkpoint(path)
    assert ck.step == 3
    for k, v in m.state_dict().items():
        assert torch.equal(model_sd[k], v), k
    m2 = ToyAutoencoder()
    opt2 = m2.configure_optimizer(OptimConfig(lr=1e-2))
    m2.load_state_dict(model_sd)
    opt2.load_state_dict(opt_sd)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]  # tuples (betas) come back as tuples
    for pid in a["state"]:
        for name, v in a["state"][pid].items():
            assert torch.equal(v, b["state"][pid][name]), (pid, name)


def test_tied_tensors_are_saved(tmp_path):
    m, opt = trained(tied=True)
    w = C.load_weights(save(tmp_path, 1, m, opt))
    assert torch.equal(w["alias"], w["encoder.0.weight"])


def test_rng_round_trip():
    state = C.rng_state()
    json.dumps(state)  # JSON-able
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    C.set_rng_state(json.loads(json.dumps(state)))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "no_state", "bad_json"])
def test_damaged_checkpoint_is_a_clear_error(tmp_path, damage):
    m, opt = trained(1)
    path = save(tmp_path, 1, m, opt)
    f = path / C.MODEL_FILE
    if damage == "flip":
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 1
        f.write_bytes(bytes(data))
    elif damage == "truncate":
        f.write_bytes(f.read_bytes()[:100])
    elif damage == "delete":
        f.unlink()
    elif damage == "no_state":
        (path / C.STATE_FILE).unlink()
    else:
        (path / C.STATE_FILE).write_text("{not json")
    with pytest.raises(C.CheckpointError) as e:
        C.load_checkpoint(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "delete it or resume from an earlier one" in msg


def test_latest_falls_back_with_warning(tmp_path, caplog):
    m, opt = trained(1)
    for s in (2, 4, 6):
        save(tmp_path, s, m, opt)
    (tmp_path / "checkpoints" / "ckpt-0000006" / C.OPTIMIZER_FILE).write_bytes(b"garbage")
    with caplog.at_level("WARNING"):
        ck = C.latest_checkpoint(tmp_path)
    assert ck.step == 4
    assert any("ckpt-0000006" in r and "falling back" in r for r in caplog.messages)
    for s in (2, 4):
        (tmp_path / "checkpoints" / f"ckpt-{s:07d}" / C.STATE_FILE).unlink()
    with pytest.raises(C.CheckpointError, match="no valid checkpoint.*--overwrite"):
        C.latest_checkpoint(tmp_path)
    assert C.latest_checkpoint(tmp_path / "elsewhere") is None


def test_keep_prunes_and_stale_tmp_is_cleaned(tmp_path):
    m, opt = trained(1)
    (tmp_path / "checkpoints" / ".tmp-ckpt-0000099-1").mkdir(parents=True)  # a killed save
    for s in range(1, 6):
        save(tmp_path, s, m, opt, keep=2)
    assert [s for s, _ in C.list_checkpoints(tmp_path)] == [4, 5]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    save(tmp_path, 5, m, opt, keep=2)  # saving the same step again replaces it
    assert C.validate_checkpoint(tmp_path / "checkpoints" / "ckpt-0000005").step == 5


def test_load_weights_paths(tmp_path):
    m, opt = trained(1)
    path = save(tmp_path, 7, m, opt)
    for where in (tmp_path, path, path / C.MODEL_FILE):
        w = C.load_weights(where)
        assert torch.equal(w["encoder.0.weight"], m.encoder[0].weight)
    with pytest.raises(C.CheckpointError, match="neither a run folder"):
        C.load_weights(tmp_path / "nothing")
    with pytest.raises(C.CheckpointError, match="not found"):
        C.load_weights(tmp_path / "missing.safetensors")


def test_weights_only_reads_a_checkpoint_without_its_optimiser_state(tmp_path, caplog):
    """Copied without optimizer.safetensors (e.g. back from a GPU machine): the weights read, resuming does not."""
    m, opt = trained(1)
    save(tmp_path, 2, m, opt)
    path = save(tmp_path, 4, m, opt)
    (path / C.OPTIMIZER_FILE).unlink()
    with pytest.raises(C.CheckpointError, match="optimizer.safetensors is missing"):
        C.validate_checkpoint(path)
    assert C.validate_checkpoint(path, weights_only=True).step == 4
    assert C.resolve_checkpoint(tmp_path, weights_only=True).step == 4
    assert torch.equal(C.load_weights(tmp_path)["encoder.0.weight"], m.encoder[0].weight)
    with caplog.at_level("WARNING"):
        assert C.latest_checkpoint(tmp_path).step == 2   # resuming needs the optimiser: the earlier one
    # an optimiser file that is there is still checked, and the model's file is never optional
    (path / C.OPTIMIZER_FILE).write_bytes(b"garbage")
    with pytest.raises(C.CheckpointError, match="optimizer.safetensors has 7 bytes"):
        C.validate_checkpoint(path, weights_only=True)
    (path / C.OPTIMIZER_FILE).unlink()
    (path / C.MODEL_FILE).unlink()
    with pytest.raises(C.CheckpointError, match="model.safetensors is missing"):
        C.validate_checkpoint(path, weights_only=True)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    m, opt = trained(1)
    path = save(tmp_path, 1, m, opt)

    def forbidden(*a, **k):
        raise AssertionError("pickle used while loading a checkpoint")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    C.load_checkpoint(path)
    C.load_weights(tmp_path)
    assert sorted(p.name for p in path.iterdir()) == [C.MODEL_FILE, C.OPTIMIZER_FILE, C.STATE_FILE]
