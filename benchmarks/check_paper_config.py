"""Check the paper-scale benchmark config without a GPU: build every method from it and take one step.

Catches a config or shape error at full size (ResNet50, 256-px frames,
128-px crops) in a minute on CPU, before anyone books hours on a GPU.
Prints, per method, the loss of one training step on a fixed batch (the
test suite's, resized), the pose-feature shape and the seconds it took.

    python benchmarks/check_paper_config.py [--config configs/benchmark_paper_gpu.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "benchmark_paper_gpu.yaml"))
    a = ap.parse_args()

    from selfpose.bench.config import BenchmarkConfig
    from selfpose.bench.run import pretrain_config
    from selfpose.config import load
    from selfpose.methods.registry import build

    sys.path.insert(0, str(ROOT / "tests" / "methods"))   # the fixed batches the variant tests train on
    from test_variants import batch_for

    cfg = load(BenchmarkConfig, a.config)
    for m in cfg.methods:
        pc = pretrain_config(cfg, m, 0)
        method = build(m, pc)
        batch = batch_for(method.sampler_kind(1))
        size = pc.model.image_size
        for k in ("frames", "background"):
            x = batch[k]
            n, t = x.shape[:2]
            batch[k] = F.interpolate(x.flatten(0, 1).float(), size=(size, size)).to(torch.uint8).view(
                n, t, 3, size, size)
        t0 = time.perf_counter()
        loss, _ = method.training_step(batch, 0)
        loss.backward()
        with torch.no_grad():
            f = method.pose_features(batch["frames"][0].float() / 255)
        ok = torch.isfinite(loss).item()
        print(f"{m:18s} {pc.model.encoder_arch} frames {size} crops {pc.model.crop_size}: loss {loss.item():.4f}"
              f"{'' if ok else ' (NOT FINITE)'}, features {tuple(f.shape)}, {time.perf_counter() - t0:.1f} s",
              flush=True)
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
