"""Shared by the benchmark scripts: the median wall time of whole training steps of a pretraining method."""

from __future__ import annotations

import time

import numpy as np
import torch


def median_step_ms(method, batches: list, precision: str, warmup: int) -> float:
    """Median ms of ``training_step`` + backward + AdamW over ``batches[warmup:]`` (the first ``warmup`` steps
    warm caches and allocators and are not timed)."""
    from selfpose.training.precision import autocast

    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for i, b in enumerate(batches):
        t0 = time.perf_counter()
        with autocast(precision):
            loss, _ = method.training_step(b, i)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def step_flops(method, batch: dict, precision: str) -> int:
    """FLOPs of one training step (forward + backward; the optimiser's element-wise work is not counted), by
    :class:`torch.utils.flop_counter.FlopCounterMode` (matmuls and convolutions, the work that matters here)."""
    from torch.utils.flop_counter import FlopCounterMode

    from selfpose.training.precision import autocast

    counter = FlopCounterMode(display=False)
    with counter:
        with autocast(precision):
            loss, _ = method.training_step(batch, 0)
        loss.backward()
    method.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """This CPU's dense matmul rate (GFLOP/s) at ``dtype`` on the current threads: the ceiling a step is
    compared with (best of ``repeats`` ``n``×``n`` products after one warm-up)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9
