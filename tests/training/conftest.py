"""Fixtures of the training tests: a tiny store (moving blobs over static backgrounds) and a small config."""

from __future__ import annotations

import numpy as np
import pytest

from selfpose.data.sequence import SequenceMeta
from selfpose.data.store import Dataset, DatasetWriter

SIZE = 32


def write_blobs(path, sequences: int = 3, frames: int = 40, fps: float = 10.0) -> Dataset:
    """``sequences`` videos of a coloured rectangle sliding over a random static background (uint8 RGB)."""
    rng = np.random.default_rng(0)
    with DatasetWriter(path) as w:
        for s in range(sequences):
            bg = (rng.random((SIZE, SIZE, 3)) * 80 + 60).astype(np.uint8)
            video = np.repeat(bg[None], frames, 0)
            t = np.arange(frames)
            x0 = (4 + (t * 0.5 + 5 * s) % (SIZE - 12)).astype(int)
            for i in range(frames):
                video[i, 10 + 3 * s:20 + 3 * s, x0[i]:x0[i] + 8] = (200, 40 + 50 * s, 40)
            meta = SequenceMeta(f"s{s}", f"S{s}", "walk", f"take{s}", "c0", fps, frames, SIZE, SIZE)
            w.write_sequence(meta, frames=video, background=bg)
    return Dataset.open(path)


@pytest.fixture(scope="session")
def blobs(tmp_path_factory) -> Dataset:
    return write_blobs(tmp_path_factory.mktemp("blobs") / "ds")


def run_config(**train):
    """A RunConfig for quick tests: 1 thread, batch 4, log every step, no automatic pictures."""
    from selfpose.training.config import OptimConfig, RunConfig, TrainConfig

    base = dict(steps=12, batch_size=4, threads=1, log_every=1, checkpoint_every=4, picture_every=0,
                precision="fp32", pictures=2)
    base.update(train)
    return RunConfig(OptimConfig(lr=3e-3, warmup_steps=2), TrainConfig(**base))


@pytest.fixture(name="run_config")
def run_config_fixture():
    """:func:`run_config` as a fixture (conftest cannot be imported under --import-mode=importlib)."""
    return run_config
