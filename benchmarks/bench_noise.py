"""2D detector noise cost: microseconds per batch of :func:`selfpose.lifting.noise.corrupt`.

Usage::

    python benchmarks/bench_noise.py            # default NoiseConfig, image 1000×1000, 1 torch thread
    python benchmarks/bench_noise.py --repeat 200

Shapes timed (float32 joints inside the image, fresh ``sample_rng`` per call as a
training loop would draw):

  * ``frames``: (256, 1, 17, 2) — a single-frame lifter's batch, each frame a one-frame clip
    (what ``selfpose.lifting.data.noisy_2d`` passes);
  * ``clips``:  (64, 32, 17, 2) — a batch of 32-frame clips (temporal dropouts act along T).

Prints, per shape, the median and the best over ``--repeat`` calls in µs per batch,
and a cProfile of the clip shape with ``--profile``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np

SHAPES = {"frames": (256, 1, 17, 2), "clips": (64, 32, 17, 2)}


def poses(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Finite float32 joints ``shape`` px inside a 1000×1000 image."""
    rng = np.random.default_rng(seed)
    return rng.uniform(100, 900, shape).astype(np.float32)


def time_corrupt(shape: tuple[int, ...], repeat: int) -> tuple[float, float]:
    """(median µs, best µs) per call of corrupt on a batch of ``shape``."""
    from selfpose.lifting.noise import NoiseConfig, corrupt, sample_rng

    x, cfg = poses(shape), NoiseConfig()
    for i in range(5):  # warm-up: imports, allocator
        corrupt(x, cfg, sample_rng(0, 0, i), image_size=(1000, 1000))
    times = []
    for i in range(repeat):
        rng = sample_rng(0, 1, i)
        t0 = time.perf_counter()
        corrupt(x, cfg, rng, image_size=(1000, 1000))
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e6), float(np.min(times) * 1e6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--profile", action="store_true", help="cProfile corrupt on the clip shape")
    args = ap.parse_args()
    import torch  # the training process has torch loaded; pin its threads as the lead's measurements do

    torch.set_num_threads(1)
    for name, shape in SHAPES.items():
        med, best = time_corrupt(shape, args.repeat)
        print(f"{name:7s} {shape!s:18s} median {med:9.1f} µs/batch   best {best:9.1f} µs/batch")
    if args.profile:
        from selfpose.lifting.noise import NoiseConfig, corrupt, sample_rng

        for name, shape in SHAPES.items():
            x, cfg = poses(shape), NoiseConfig()
            prof = cProfile.Profile()
            prof.enable()
            for i in range(100):
                corrupt(x, cfg, sample_rng(0, 2, i), image_size=(1000, 1000))
            prof.disable()
            print(f"\n--- cProfile, 100 calls, {name} {shape}")
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
