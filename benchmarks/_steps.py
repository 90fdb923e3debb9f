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
