"""Does the full method's decoder draw each frame's silhouette, or one mean silhouette? (issue 14, item 5)

For each pretraining run, decodes the crop masks of evenly spaced frames of a dataset (the test people) and
scores them against the label-free foreground the training loss uses (``|frame − background| > 0.1`` cut by
the same box): the masks' binary cross-entropy (the ``fg_mask`` term), and R² against the best constant mask
(:func:`selfpose.evaluation.silhouette.mask_r2`: 0 = one mean silhouette for every frame). ``R² (i shuffled)``
decodes each frame's ``v`` with another frame's ``i``: what survives comes from ``v``, the pose code.

    python benchmarks/probe_silhouette.py --data out/quick/data/test \\
        --run base_1000=out/quick/runs/temporal_s0 --run base_3000=out/long3k/runs/temporal_s0

About 10 s a run on 2 cores (512 frames).
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def frames_of(data: str, n: int):
    """``n`` frames spread evenly over every sequence of ``data``, with their backgrounds: (n, 3, H, W) in [0, 1].

    Backgrounds as the training loader reads them (:data:`selfpose.data.loader.IMAGE_LABELS`): the per-frame
    array where a sequence has one (moving cameras), else its static background.
    """
    import torch

    from selfpose.data.loader import IMAGE_LABELS
    from selfpose.data.store import Dataset

    per_frame, static = IMAGE_LABELS["background"]
    seqs = Dataset.open(data).sequences
    per = max(1, -(-n // len(seqs)))
    frames, backs = [], []
    for s in seqs:
        idx = np.linspace(0, len(s) - 1, per).round().astype(int)
        frames.append(np.asarray(s["frames"][idx]))
        if s.has(per_frame):
            backs.append(np.asarray(s[per_frame][idx]))
        elif s.has(static):
            bg = np.asarray(s[static])
            backs.append(np.broadcast_to(bg, (len(idx), *bg.shape)))
        else:
            raise SystemExit(f"{s.id} has no background; the probe needs data prepared with backgrounds")
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(np.concatenate(a)[:n])).permute(0, 3, 1, 2) / 255.0  # noqa: E731
    return as_tensor(frames).float(), as_tensor(backs).float()


def probe(run_dir: str, frames, background, batch: int = 64) -> dict:
    import torch

    from selfpose.evaluation.silhouette import decoded_silhouettes, mask_r2
    from selfpose.losses.foreground import mask_target_loss
    from selfpose.pretrain import load_run

    run = load_run(run_dir)
    model = run.method.model.eval()
    thr = run.config.loss.fg_threshold

    def decode_all(shuffle_i: bool):
        parts = [decoded_silhouettes(model, frames[k:k + batch], background[k:k + batch], thr, shuffle_i=shuffle_i)
                 for k in range(0, len(frames), batch)]
        return torch.cat([m for m, _ in parts]), torch.cat([t for _, t in parts])

    m, t = decode_all(False)
    ms, _ = decode_all(True)   # same crops, so the same targets
    return {"step": run.step, "frames": len(frames), "fg_mask_bce": float(mask_target_loss(m, t)),
            "r2": mask_r2(m, t), "r2_i_shuffled": mask_r2(ms, t), "target_cover": float(t.mean()),
            "mask_cover": float(m.mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a dataset with backgrounds (e.g. the benchmark's test data)")
    ap.add_argument("--run", action="append", required=True, metavar="NAME=RUN_DIR", help="repeat for each run")
    ap.add_argument("--frames", type=int, default=512)
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    frames, background = frames_of(a.data, a.frames)
    rows = {}
    print("| run | step | fg_mask BCE | R² | R² (i shuffled) | target cover | mask cover |\n|---|---:|---:|---:|---:|---:|---:|")
    for spec in a.run:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--run wants NAME=RUN_DIR, got {spec!r}")
        r = rows[name] = probe(path, frames, background)
        print(f"| {name} | {r['step']} | {r['fg_mask_bce']:.4f} | {r['r2']:.3f} | {r['r2_i_shuffled']:.3f} | "
              f"{r['target_cover']:.3f} | {r['mask_cover']:.3f} |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
