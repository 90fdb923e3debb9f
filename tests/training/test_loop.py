"""The training loop: outputs, loss going down, exact resume, interruption, stages, precision."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from selfpose.config import load
from selfpose.errors import OutputError
from selfpose.training.checkpoint import MODEL_FILE, list_checkpoints, load_weights
from selfpose.training.config import RunConfig
from selfpose.training.logs import read_metrics
from selfpose.training.loop import TrainingError, TrainingInterrupted, lr_at, prepare_out_dir, train
from selfpose.training.toy import ToyAutoencoder, toy_sampler


class Interrupting(ToyAutoencoder):
    """Sends itself SIGINT during step ``at`` (as Ctrl-C would)."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def training_step(self, batch, step):
        if step == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().training_step(batch, step)


class Recording(ToyAutoencoder):
    """Logs its stage and whether the batch came from the gravity sampler."""

    def __init__(self):
        super().__init__(kinds=("dsl", "gravity"))

    def training_step(self, batch, step):
        loss, logs = super().training_step(batch, step)
        return loss, {**logs, "stage": float(self.stage), "gravity": float("step" in batch)}


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_weights(run)


def test_trains_and_writes_everything(blobs, tmp_path, run_config):
    cfg = run_config(steps=16, picture_every=8)
    r = train(ToyAutoencoder, blobs, toy_sampler, cfg, tmp_path / "run", progress=False)
    assert r.step == 16 and not r.interrupted and r.resumed_from is None
    rows = read_metrics(tmp_path / "run")
    assert [int(x["step"]) for x in rows] == list(range(1, 17))
    assert {"time", "lr", "loss", "mse", "sec_per_step", "data_sec"} <= set(rows[0])
    first, last = np.mean([x["loss"] for x in rows[:3]]), np.mean([x["loss"] for x in rows[-3:]])
    assert last < 0.7 * first, (first, last)
    # lr follows warm-up then cosine to 0 at the last step.
    assert rows[0]["lr"] == pytest.approx(1.5e-3) and rows[-1]["lr"] == pytest.approx(0.0, abs=1e-9)
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "pictures").iterdir()) == [
        "step_000008_reconstruction.png", "step_000016_reconstruction.png"]
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert [s for s, _ in list_checkpoints(run)] == [8, 12, 16]  # keep_checkpoints=3 pruned step 4
    assert (run / "checkpoints" / "latest").read_text().strip() == "ckpt-0000016"
    again = load(RunConfig, run / "config.yaml")  # the saved config loads back strictly
    assert again == cfg
    env = yaml.safe_load((run / "environment.yaml").read_text())
    assert env[0]["torch"] == torch.__version__ and env[0]["precision"] == "fp32" and env[0]["command"]
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert "finished at step 16/16" in (run / "log.txt").read_text()
    m = ToyAutoencoder()
    m.load_state_dict(weights(run))  # inference weights load into a fresh model


def test_existing_run_needs_resume_or_overwrite(blobs, tmp_path, run_config):
    cfg = run_config(steps=2)
    train(ToyAutoencoder, blobs, toy_sampler, cfg, tmp_path / "run", progress=False)
    with pytest.raises(TrainingError, match="finished run.*--resume.*--overwrite"):
        train(ToyAutoencoder, blobs, toy_sampler, cfg, tmp_path / "run", progress=False)
    with pytest.raises(TrainingError, match="either"):
        prepare_out_dir(tmp_path / "run", resume=True, overwrite=True)
    # Resuming a finished run does nothing; overwriting starts over.
    r = train(ToyAutoencoder, blobs, toy_sampler, cfg, tmp_path / "run", resume=True, progress=False)
    assert r.step == 2 and r.resumed_from == 2
    # A file selfpose did not write: --overwrite refuses (issue 11) and deletes nothing.
    (tmp_path / "run" / "keep.txt").write_text("not a run file")
    with pytest.raises(OutputError, match="keep.txt"):
        train(ToyAutoencoder, blobs, toy_sampler, cfg, tmp_path / "run", overwrite=True, progress=False)
    assert (tmp_path / "run" / "keep.txt").exists() and (tmp_path / "run" / "checkpoints").is_dir()
    (tmp_path / "run" / "keep.txt").unlink()
    r = train(ToyAutoencoder, blobs, toy_sampler, cfg, tmp_path / "run", overwrite=True, progress=False)
    assert r.resumed_from is None
    assert len(read_metrics(tmp_path / "run")) == 2


def test_checkpoint_picture_and_log_intervals_leave_the_weights_alone(blobs, tmp_path, run_config):
    """What a run writes beside its weights, and how often, does not change them: the benchmark reuses a run
    pretrained with other checkpoint / picture / log intervals as its own cell (``bench.run._SPEED_KEYS``)."""
    a = train(ToyAutoencoder, blobs, toy_sampler, run_config(checkpoint_every=4, picture_every=0, log_every=1),
              tmp_path / "a", progress=False)
    b = train(ToyAutoencoder, blobs, toy_sampler,
              run_config(checkpoint_every=5, keep_checkpoints=1, picture_every=3, log_every=4),
              tmp_path / "b", progress=False)
    assert a.weights_digest == b.weights_digest
    assert len(list((tmp_path / "b" / "checkpoints").glob("ckpt-*"))) == 1   # the intervals did act
    # pictures every 3 steps, and at the end as always, against the end only
    assert len(list((tmp_path / "b").rglob("*.png"))) > len(list((tmp_path / "a").rglob("*.png"))) > 0


@pytest.mark.parametrize("workers", [0, 1])
def test_exact_resume_after_interrupt(blobs, tmp_path, run_config, workers):
    cfg = run_config(steps=12, checkpoint_every=4, picture_every=5, num_workers=workers)
    straight = train(ToyAutoencoder, blobs, toy_sampler, cfg, tmp_path / "a", progress=False)
    with pytest.raises(TrainingInterrupted) as info:
        train(lambda: Interrupting(at=5), blobs, toy_sampler, cfg, tmp_path / "b", progress=False)
    assert info.value.step == 6 and info.value.checkpoint.name == "ckpt-0000006"
    assert json.loads((tmp_path / "b" / "run.json").read_text())["status"] == "interrupted"
    resumed = train(ToyAutoencoder, blobs, toy_sampler, cfg, tmp_path / "b", resume=True, progress=False)
    assert resumed.resumed_from == 6 and resumed.step == 12
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert straight.weights_digest == resumed.weights_digest
    la = [r["loss"] for r in read_metrics(tmp_path / "a")]
    lb = [r["loss"] for r in read_metrics(tmp_path / "b")]
    assert la == lb  # the CSV continues seamlessly: same losses, no duplicated steps


def test_resume_drops_logs_after_checkpoint_and_falls_back(blobs, tmp_path, run_config, caplog):
    cfg = run_config(steps=10, checkpoint_every=4)
    run = tmp_path / "run"
    train(ToyAutoencoder, blobs, toy_sampler, cfg, run, progress=False)
    # Corrupt the final checkpoint: resume must fall back to step 8 and redo steps 9-10.
    model = run / "checkpoints" / "ckpt-0000010" / MODEL_FILE
    data = bytearray(model.read_bytes())
    data[-5] ^= 0xFF
    model.write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        r = train(ToyAutoencoder, blobs, toy_sampler, cfg, run, resume=True, progress=False)
    assert r.resumed_from == 8 and r.step == 10
    assert any("corrupt" in m and "falling back" in m for m in caplog.messages)
    assert [int(x["step"]) for x in read_metrics(run)] == list(range(1, 11))


def test_two_stages_switch_sampler(blobs, tmp_path, run_config):
    cfg = run_config(steps=8, stage2_step=5)
    train(Recording, blobs, toy_sampler, cfg, tmp_path / "run", progress=False)
    rows = read_metrics(tmp_path / "run")
    assert [r["stage"] for r in rows] == [1] * 5 + [2] * 3
    assert [r["gravity"] for r in rows] == [0] * 5 + [1] * 3
    # Resuming inside stage 2 restarts with the stage-2 sampler at the right position.
    with pytest.raises(TrainingInterrupted):
        train(lambda: Interrupting(at=3), blobs, toy_sampler, cfg, tmp_path / "b", progress=False)
    r = train(Recording, blobs, toy_sampler, cfg, tmp_path / "b", resume=True, progress=False)
    assert r.step == 8
    state = json.loads((tmp_path / "b" / "checkpoints" / "ckpt-0000008" / "state.json").read_text())
    assert state["sampler"]["stage"] == 2 and state["sampler"]["kind"] == "gravity"
    assert state["sampler"]["position"] == 3


def test_bf16_channels_last(blobs, tmp_path, run_config):
    cfg = run_config(steps=3, precision="bf16", channels_last=True)
    seen = {}

    class Probe(ToyAutoencoder):
        def training_step(self, batch, step):
            seen["autocast"] = torch.is_autocast_enabled("cpu")
            seen["layout"] = self.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
            return super().training_step(batch, step)

    r = train(Probe, blobs, toy_sampler, cfg, tmp_path / "run", progress=False)
    assert r.precision == "bf16" and seen == {"autocast": True, "layout": True}
    w = weights(tmp_path / "run")
    assert all(v.dtype in (torch.float32, torch.int64) for v in w.values())  # weights stay fp32
    assert np.isfinite(r.metrics["loss"])


def test_non_finite_loss_is_an_error(blobs, tmp_path, run_config):
    class Exploding(ToyAutoencoder):
        def training_step(self, batch, step):
            loss, logs = super().training_step(batch, step)
            return loss * float("nan"), logs

    with pytest.raises(TrainingError, match="loss is nan at step 0"):
        train(Exploding, blobs, toy_sampler, run_config(steps=2), tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


def test_lr_schedule():
    from selfpose.training.config import OptimConfig

    o = OptimConfig(lr=1.0, warmup_steps=4, schedule="cosine", min_lr_ratio=0.1)
    f = [lr_at(s, o, 20) for s in range(20)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert f[4] == pytest.approx(1.0) and f[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(f[3:], f[4:]))  # non-increasing after warm-up
    assert lr_at(7, OptimConfig(schedule="constant"), 20) == 1.0


_KILLED_RUN = """
import sys, time
from selfpose.training.loop import train
from selfpose.training.toy import ToyAutoencoder, toy_sampler
from selfpose.training.config import OptimConfig, RunConfig, TrainConfig

class Slow(ToyAutoencoder):
    def training_step(self, batch, step):
        time.sleep(0.05)
        return super().training_step(batch, step)

cfg = RunConfig(OptimConfig(lr=3e-3), TrainConfig(steps=60, batch_size=4, threads=1, log_every=1,
                checkpoint_every=5, picture_every=0, precision="fp32"))
train(Slow, sys.argv[1], toy_sampler, cfg, sys.argv[2], progress=False)
"""


def test_sigkill_then_resume(blobs, tmp_path):
    """The done-criterion: kill -9 a real training process after its first checkpoint, resume, finish."""
    run = tmp_path / "run"
    env = {**os.environ, "SELFPOSE_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(blobs.root), str(run)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while not (run / "checkpoints" / "latest").exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.time() < deadline, "no checkpoint after 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = list_checkpoints(run)[-1][0]
    assert 0 < killed_at < 60
    from selfpose.training.config import OptimConfig, TrainConfig

    cfg = RunConfig(OptimConfig(lr=3e-3), TrainConfig(steps=60, batch_size=4, threads=1, log_every=1,
                                                      checkpoint_every=5, picture_every=0, precision="fp32"))
    r = train(ToyAutoencoder, blobs, toy_sampler, cfg, run, resume=True, progress=False)
    assert r.step == 60 and r.resumed_from is not None and r.resumed_from >= killed_at
    assert [int(x["step"]) for x in read_metrics(run)] == list(range(1, 61))
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_loader_resumes_mid_epoch(blobs):
    """The batch sampler positioned at ``start`` yields exactly the rest of the epoch."""
    from selfpose.data.loader import make_loader

    loader = make_loader(blobs, toy_sampler("dsl", blobs), batch_size=3, seed=5, num_batches=6, labels=[])
    loader.sampler.set_epoch(1)
    full = [b["index"] for b in loader]
    loader.sampler.set_epoch(1, start=4)
    tail = [b["index"] for b in loader]
    assert len(tail) == 2 and all(torch.equal(a, b) for a, b in zip(full[4:], tail))
    assert not torch.equal(full[0], next(iter(loader))["index"])  # the next iter is epoch 2 from its start


def test_toy_method_interface():
    m = ToyAutoencoder(kinds=("gravity", "dsl"))
    assert m.sampler_kind(1) == "gravity" and m.sampler_kind(2) == "dsl"
    feats = m.eval().pose_features(torch.rand(5, 3, 48, 48))
    assert feats.shape == (5, 16)
    pics = m.pictures({"frames": torch.randint(0, 255, (3, 4, 3, 32, 32), dtype=torch.uint8)})
    assert pics["reconstruction"].shape == (64, 96, 3) and pics["reconstruction"].dtype == np.uint8


def test_device_auto_trains_where_torch_computes_and_records_it(blobs, tmp_path, run_config, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run = tmp_path / "run"
    r = train(ToyAutoencoder, blobs, toy_sampler, run_config(steps=4, device="auto"), run, progress=False)
    assert r.step == 4
    env = yaml.safe_load((run / "environment.yaml").read_text())
    assert env[0]["device"] == "cpu" and "gpu" not in env[0]


def test_a_missing_gpu_is_a_one_line_error_before_the_run_folder(blobs, tmp_path, run_config, monkeypatch):
    from selfpose.config import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"train.device=cuda but this torch .* sees no CUDA GPU; use train.device=cpu"):
        train(ToyAutoencoder, blobs, toy_sampler, run_config(device="cuda"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_auto_on_a_gpu_machine_with_several_processes_is_refused_in_one_line(blobs, tmp_path, run_config, monkeypatch):
    from selfpose.config import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ConfigError, match="train.device=auto is a GPU here: train it with processes: 1"):
        train(ToyAutoencoder, blobs, toy_sampler, run_config(device="auto", processes=2), tmp_path / "run",
              progress=False)
    assert not (tmp_path / "run").exists()
