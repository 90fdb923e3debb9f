"""Lifting throughput on CPU: training steps and prediction (with and without test-time correction).

Usage::

    python benchmarks/bench_lifting.py --data /path/to/H          # a `selfpose prepare mocap` dataset
    python benchmarks/bench_lifting.py --data H --methods pose_machine --subjects S8 --threads 2

For each registered lifter method at its reported defaults (``load_lifter_config``):

* training: ms per optimiser step of its first stage and target frames per second
  (a step = ``batch_size`` windows × the method's clip of target frames; median of
  the timed steps after warm-up; ground-truth 2D);
* prediction: frames per second of :meth:`selfpose.lifting.model.Lifter.predict`
  over the chosen subjects' sequences (untrained weights: the cost does not depend
  on them), with the correction off and — for methods that have one — on.

Numbers depend on what else runs on the machine; run it alone.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="keypoint dataset (selfpose prepare mocap)")
    ap.add_argument("--methods", nargs="*", default=None, help="default: every registered method")
    ap.add_argument("--subjects", default="S8", help="comma-separated subjects to predict")
    ap.add_argument("--train-subjects", default="S1", help="frames the training steps draw from")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps (after 3 warm-up steps)")
    ap.add_argument("--max-frames", type=int, default=20000, help="predict at most this many frames (whole sequences)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from selfpose.lifting.config import load_lifter_config
    from selfpose.lifting.data import encode, load_arrays
    from selfpose.lifting.lifters import LIFTERS
    from selfpose.lifting.loop import _Sampler, Batch, default_stages
    from selfpose.lifting.train import build_lifter

    test = load_arrays(args.data, args.subjects.split(","))
    keep = np.unique(test.sequences)
    sizes = np.array([(test.sequences == q).sum() for q in keep])
    keep = keep[: max(1, int(np.searchsorted(np.cumsum(sizes), args.max_frames)))]
    test = test.subset(np.isin(test.sequences, keep))
    train = load_arrays(args.data, args.train_subjects.split(","))
    print(f"threads {args.threads}; predicting {len(test)} frames of {len(keep)} sequences")
    print(f"{'method':<15} {'ms/step':>8} {'train frames/s':>15} {'predict fps':>12} {'+correction fps':>16}")
    for name in args.methods or list(LIFTERS):
        cfg = load_lifter_config(None, [f"method={name}", "val_fraction=0"])
        lifter = build_lifter(train, cfg)
        method = LIFTERS[name]
        stage = (method.stages or default_stages)(lifter, cfg)[0]
        clip = int(method.clip(cfg))
        sampler = _Sampler(train, True, clip, lifter.context)
        xn = lifter.normalise(torch.from_numpy(encode(train, None, cfg.input_norm)))
        yn = (torch.from_numpy(train.joints3d.reshape(len(train), -1)) - lifter.out_mean) / lifter.out_std
        opt = torch.optim.Adam([p for p in stage.params(lifter.net) if p.requires_grad], lr=1e-4)
        times = []
        for i in range(args.steps + 3):
            inp, tgt = sampler.draw(np.random.default_rng(i), cfg.batch_size)
            batch = Batch(xn[torch.from_numpy(inp)], yn[torch.from_numpy(tgt)],
                          torch.from_numpy(train.has3d[tgt].all(1)), lifter.context)
            (stage.train_mode or (lambda m: m.train()))(lifter.net)
            t = time.perf_counter()
            loss, _ = stage.loss(lifter, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 3:
                times.append(time.perf_counter() - t)
        ms = 1000 * float(np.median(times))
        fps_train = cfg.batch_size * clip / (ms / 1000)
        lifter.net.eval()
        rates = []
        for corr in ([False, True] if method.correct is not None else [False]):
            t = time.perf_counter()
            lifter.predict(test, correction=corr)
            rates.append(len(test) / (time.perf_counter() - t))
        corr_text = f"{rates[1]:>16.0f}" if len(rates) > 1 else f"{'–':>16}"
        print(f"{name:<15} {ms:>8.1f} {fps_train:>15.0f} {rates[0]:>12.0f} {corr_text}")


if __name__ == "__main__":
    main()
