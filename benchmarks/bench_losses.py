"""Cost of each reconstruction term per training step at the CPU profile (forward + backward).

Usage::

    python benchmarks/bench_losses.py                       # structural terms, random-Φ perceptual term
    python benchmarks/bench_losses.py --lite0 PATH          # + EfficientNet-Lite0 Φ (the wheel's .pth)
    python benchmarks/bench_losses.py --threads 2 --reps 20
    python benchmarks/bench_losses.py --steps 8             # + whole training steps with each term on

The batch is what the temporal method's reconstruction term sees at
``configs/temporal_cpu.yaml``: 8 DSL tuples × 4 frames = 32 recomposed frames
of 128 × 128 (``(32, 3, 128, 128)`` in [0, 1]) against 32 real ones, with the
RGB term's pixel weights ``1 + fg_weight·fg`` (fg_weight 20, a quarter of the
pixels foreground). Each term is timed as ``loss(pred, target).backward()``
(the gradient reaches ``pred``, as it reaches the composite in training), in
fp32 and under bf16 autocast (the profile's ``precision: auto`` on a CPU with
bf16); median of ``--reps`` runs after 3 warm-up runs.

``--steps N`` also times whole training steps of the temporal method at the
CPU profile's defaults (``TemporalConfig()``: detector, encoder ×2, decoder,
composite, foreground terms, DSL, backward, AdamW; bf16 autocast where the CPU
has it, channels_last) on DSL batches of a small rendered lab dataset, once as
shipped and once with each term switched on: the median of N steps after 3
warm-up steps, so the difference is the term's cost inside a real step.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32, help="frames per step (8 tuples × 4 at the CPU profile)")
    ap.add_argument("--size", type=int, default=128, help="frame size in px (model.image_size)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lite0", default=None, help="EfficientNet-Lite0 .pth (the wheel's file) to time as Φ")
    ap.add_argument("--steps", type=int, default=0, help="also time this many whole training steps per setting")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    terms(args)
    if args.steps:
        steps(args)


def terms(args) -> None:

    from selfpose.losses.reconstruction import PerceptualNet, feature_loss, pixel_loss
    from selfpose.losses.structural import gradient_loss, laplacian_loss, ssim_loss

    g = torch.Generator().manual_seed(0)
    b, s = args.batch, args.size
    target = torch.nn.functional.interpolate(torch.rand(b, 3, s // 8, s // 8, generator=g), size=s, mode="bilinear",
                                             align_corners=False)
    pred0 = (target + 0.05 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    mask = 1.0 + 20.0 * (torch.rand(b, 1, s, s, generator=g) < 0.25).float()

    terms = {
        "pixel MSE (w_rgb, reference)": lambda p: pixel_loss(p, target, mask),
        "1 - SSIM, 11-px window (w_ssim)": lambda p: ssim_loss(p, target, mask),
        "image gradients L1 (w_grad)": lambda p: gradient_loss(p, target, mask, norm="l1"),
        "image gradients L2 (w_grad, grad_distance=l2)": lambda p: gradient_loss(p, target, mask, norm="l2"),
        "Laplacian pyramid L1, 4 levels (w_lap)": lambda p: laplacian_loss(p, target, mask, levels=4),
    }
    rand32 = PerceptualNet(width=32)
    terms["perceptual, random ResNet18 width 32 (w_feat, CPU default Φ)"] = lambda p: feature_loss(rand32, p, target)
    if args.lite0:
        lite = PerceptualNet(weights=args.lite0)
        terms["perceptual, EfficientNet-Lite0 (w_feat, perceptual_weights)"] = lambda p: feature_loss(lite, p, target)

    print(f"batch ({b}, 3, {s}, {s}), {args.threads} thread(s), median of {args.reps} runs, forward + backward")
    print(f"{'term':64s} {'fp32 ms':>8s} {'bf16 ms':>8s}")
    for name, fn in terms.items():
        row = []
        for bf16 in (False, True):
            times = []
            for i in range(args.reps + 3):
                pred = pred0.clone().requires_grad_()
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = fn(pred)
                loss.float().backward()
                if i >= 3:
                    times.append(time.perf_counter() - t0)
            row.append(1000 * float(np.median(times)))
        print(f"{name:64s} {row[0]:8.1f} {row[1]:8.1f}")


def steps(args) -> None:
    import tempfile
    from pathlib import Path

    from selfpose.data.loader import make_loader
    from selfpose.data.samplers import DSLSampler
    from selfpose.data.store import Dataset
    from selfpose.data.synthetic.synthesize import SynthConfig, synthesize
    from selfpose.methods.temporal import TemporalConfig, TemporalMethod
    from _steps import median_step_ms

    from selfpose.training.precision import resolve_precision, to_channels_last

    settings = {"as shipped (CPU profile)": {}, "+ w_ssim=1": {"w_ssim": 1.0}, "+ w_grad=1 (l1)": {"w_grad": 1.0},
                "+ w_lap=1 (4 levels)": {"w_lap": 1.0}, "+ w_feat=2, random Φ width 32": {"w_feat": 2.0}}
    if args.lite0:
        settings["+ w_feat=2, EfficientNet-Lite0 Φ"] = {"w_feat": 2.0, "perceptual_weights": args.lite0}
    precision = resolve_precision("auto")
    with tempfile.TemporaryDirectory() as tmp:
        root = synthesize(SynthConfig(scenario="lab", max_sequences=4, max_seconds=10), Path(tmp) / "lab",
                          progress=False)
        ds = Dataset.open(root)
        loader = make_loader(ds, DSLSampler(ds, d_pos_s=0.2, d_neg_s=1.5), batch_size=8,
                             num_batches=args.steps + 3, seed=0, labels=["background"])
        batches = list(loader)
        print(f"\nwhole training steps ({tuple(batches[0]['frames'].shape)} uint8 frames; {precision} + "
              f"channels_last, {args.threads} thread(s)), median of {args.steps} steps")
        for name, over in settings.items():
            torch.manual_seed(0)
            cfg = TemporalConfig()
            for k, v in over.items():
                setattr(cfg.loss, k, v)
            method = TemporalMethod(cfg)
            to_channels_last(method)
            print(f"  {name:40s} {median_step_ms(method, batches, precision, warmup=3):7.0f} ms/step")


if __name__ == "__main__":
    main()
