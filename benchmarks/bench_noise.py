"""2D detector noise cost: microseconds per batch of :func:`selfpose.lifting.noise.corrupt`.

Usage::

    PYTHONPATH=src python benchmarks/bench_noise.py                      # this checkout's corrupt
    PYTHONPATH=src python benchmarks/bench_noise.py --before d8ab0b0     # ... against noise.py at a git revision
    PYTHONPATH=src python benchmarks/bench_noise.py --encode --profile   # + train.py's per-batch encode, cProfile

Shapes timed (float32 joints inside the image, default :class:`NoiseConfig`,
``image_size=(1000, 1000)``, a fresh ``sample_rng`` per call as a training loop
draws, one torch thread):

  * ``frames``: (256, 1, 17, 2) — a single-frame lifter's batch, each frame a one-frame
    clip (what ``selfpose.lifting.data.noisy_2d`` passes);
  * ``clips``:  (64, 32, 17, 2) — a batch of 32-frame clips (temporal dropouts act along T).

Prints the median and the best over ``--repeat`` calls, µs per batch. With
``--before REV`` the old and the new ``corrupt`` are called alternately, so a
machine shared with other jobs slows both alike. ``--encode`` also times
``selfpose.lifting.data.encode`` of 256 random frames through the noise (the
whole per-step 2D cost of ``train_noise=true`` in ``selfpose.lifting.train``;
with clean 2D that input is encoded once before training).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

SHAPES = {"frames": (256, 1, 17, 2), "clips": (64, 32, 17, 2)}
IMAGE = (1000, 1000)


def poses(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Finite float32 joints ``shape`` px inside a 1000×1000 image."""
    rng = np.random.default_rng(seed)
    return rng.uniform(100, 900, shape).astype(np.float32)


def module_at(rev: str):
    """``selfpose/lifting/noise.py`` as of git revision ``rev``, imported as a separate module."""
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:src/selfpose/lifting/noise.py"],
                         check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "noise_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("noise_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["noise_before"] = mod   # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


def stats(times: list[float]) -> str:
    return f"median {np.median(times) * 1e6:9.1f} µs/batch   best {np.min(times) * 1e6:9.1f} µs/batch"


def time_calls(fns: dict, repeat: int) -> dict[str, list[float]]:
    """Seconds per call of each ``fn(rng)``, called alternately (after 5 warm-up rounds).

    ``rng`` is ``sample_rng(0, 1, i)`` for call i, made outside the timed region.
    """
    from selfpose.lifting.noise import sample_rng

    times = {k: [] for k in fns}
    for i in range(repeat + 5):
        for k, fn in fns.items():
            rng = sample_rng(0, 1, i)
            t0 = time.perf_counter()
            fn(rng)
            if i >= 5:
                times[k].append(time.perf_counter() - t0)
    return times


def synthetic_arrays(n: int, seed: int = 0):
    """A :class:`LiftingArrays` of ``n`` H36M-sized frames (random 2D inside 1000×1000, camera intrinsics)."""
    from selfpose.lifting.data import LiftingArrays

    rng = np.random.default_rng(seed)
    col = lambda v: np.full((n, 2), v, np.float32)
    text = np.array(["S1"] * n)
    return LiftingArrays(joints2d=poses((n, 17, 2), seed), joints3d=rng.normal(0, 300, (n, 17, 3)).astype(np.float32),
                         visible=np.ones((n, 17), np.float32), image_hw=col(1000.0), focal=col(1145.0),
                         principal=col(500.0), subjects=text, actions=text, takes=text, sequences=text,
                         frame_ids=np.arange(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--before", metavar="REV", help="also time noise.py at this git revision, alternately")
    ap.add_argument("--encode", action="store_true", help="also time data.encode of 256 frames through the noise")
    ap.add_argument("--profile", action="store_true", help="cProfile 100 calls of corrupt per shape")
    args = ap.parse_args()
    import torch  # the training process has torch loaded; pin its threads as the lead's measurements do

    torch.set_num_threads(1)
    from selfpose.lifting import noise

    mods = {"after": noise}
    if args.before:
        mods = {"before": module_at(args.before), "after": noise}
    cfgs = {k: m.NoiseConfig() for k, m in mods.items()}   # each module's own default config
    for name, shape in SHAPES.items():
        x = poses(shape)
        fns = {k: (lambda rng, m=m, x=x, cfg=cfgs[k]: m.corrupt(x, cfg, rng, image_size=IMAGE))
               for k, m in mods.items()}
        for k, ts in time_calls(fns, args.repeat).items():
            print(f"corrupt {name:6s} {shape!s:16s} {k:6s} {stats(ts)}")
    if args.encode:
        from selfpose.lifting.data import encode

        arrays = synthetic_arrays(20000)
        idx = np.random.default_rng(1).integers(0, len(arrays), 256)

        def run(rng, m, cfg):
            with mock.patch.object(noise, "corrupt", m.corrupt):   # data.noisy_2d imports it at call time
                encode(arrays, idx, "focal", cfg, rng)

        fns = {k: (lambda rng, m=m, cfg=cfgs[k]: run(rng, m, cfg)) for k, m in mods.items()}
        fns["clean"] = lambda rng: encode(arrays, idx, "focal")
        for k, ts in time_calls(fns, args.repeat).items():
            print(f"encode  256 frames {'through noise' if k != 'clean' else 'clean 2D':14s} {k:6s} {stats(ts)}")
    if args.profile:
        for name, shape in SHAPES.items():
            x, cfg = poses(shape), noise.NoiseConfig()
            prof = cProfile.Profile()
            prof.enable()
            for i in range(100):
                noise.corrupt(x, cfg, noise.sample_rng(0, 2, i), image_size=IMAGE)
            prof.disable()
            print(f"\n--- cProfile, 100 calls, {name} {shape}")
            pstats.Stats(prof).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
