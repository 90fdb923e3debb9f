"""Pretraining and inference throughput of the temporal method at the CPU profile.

Usage::

    python benchmarks/bench_train.py            # fp32 vs bf16 (+ channels_last), inference
    python benchmarks/bench_train.py --steps 30 --batch 8

Reports, on a small synthetic lab dataset rendered on the fly:
  * pretraining: ms/step and frames/s (a step = ``batch`` DSL tuples × 4
    frames through detector, encoder ×2 (jittered v, clean i), decoder,
    composite, foreground terms, backward, AdamW — plus the perceptual loss
    with ``--perceptual``, off at the CPU profile), fp32 vs bf16 autocast,
    each with channels_last — median of the timed steps after warm-up;
  * inference: frames/s of ``encode`` (detector + crop + encoder) in batches of 64;
  * the FLOPs of a step (forward + backward, FlopCounterMode) and their rate as a share of this CPU's dense
    matmul rate at the same precision (measured here, 2048² products);
  * peak resident memory of this process (pretraining included).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per setting (after 5 warm-up steps)")
    ap.add_argument("--batch", type=int, default=8, help="DSL tuples per step (×4 frames)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--perceptual", action="store_true", help="add the (random-Φ) perceptual term, loss.w_feat=2")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from selfpose.data.loader import make_loader
    from selfpose.data.samplers import DSLSampler
    from selfpose.data.store import Dataset
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize
    from selfpose.methods.temporal import TemporalConfig, TemporalMethod
    from _steps import matmul_gflops, median_step_ms, step_flops

    from selfpose.training.precision import autocast, to_channels_last

    with tempfile.TemporaryDirectory() as tmp:
        root = synthesize(SynthConfig(scenario="lab", max_sequences=4, max_seconds=10), Path(tmp) / "lab",
                          progress=False)
        ds = Dataset.open(root)
        sampler = DSLSampler(ds, d_pos_s=0.2, d_neg_s=1.5)
        loader = make_loader(ds, sampler, batch_size=args.batch, num_batches=args.steps + 5, seed=0,
                             labels=["background"])
        batches = list(loader)
        frames_per_step = args.batch * batches[0]["frames"].shape[1]
        ceiling = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
        print(f"matmul ceiling on {args.threads} thread(s): fp32 {ceiling['fp32']:.0f} GFLOP/s, "
              f"bf16 {ceiling['bf16']:.0f} GFLOP/s")
        for precision, channels_last in (("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)):
            torch.manual_seed(0)
            cfg = TemporalConfig()
            if args.perceptual:
                cfg.loss.w_feat = 2.0
            method = TemporalMethod(cfg)
            if channels_last:
                to_channels_last(method)
            ms = median_step_ms(method, batches, precision, warmup=5)
            gflop = step_flops(method, batches[0], precision) / 1e9
            rate = gflop / ms * 1000
            print(f"pretrain {precision}{' + channels_last' if channels_last else ''}: {ms:.0f} ms/step, "
                  f"{frames_per_step / ms * 1000:.0f} frames/s ({frames_per_step} frames/step); "
                  f"{gflop:.1f} GFLOP/step = {rate:.0f} GFLOP/s, at least {100 * rate / ceiling[precision]:.0f}% "
                  f"of this CPU's {precision} matmul rate (convolutions and matmuls counted)")

        method.eval()
        frames = torch.from_numpy(np.asarray(ds.sequences[0]["frames"][:64])).permute(0, 3, 1, 2)
        for precision in ("fp32", "bf16"):
            with torch.inference_mode(), autocast(precision):
                method.encode_for_pose(frames)
                t0 = time.perf_counter()
                for _ in range(5):
                    method.encode_for_pose(frames)
            print(f"inference {precision}: {5 * 64 / (time.perf_counter() - t0):.0f} frames/s (encode, batch 64)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
