"""How many sequences of a synthetic lab dataset have a wrong estimated background, before and after pooling.

    python benchmarks/bench_background_pool.py DATA

Compares each sequence's stored ``background`` and its camera's pooled one
(:func:`selfpose.data.backgrounds.pool_backgrounds`, computed here, nothing is
written) with the rendered ``true_background``. A pixel is wrong when it is
off by more than 25/255 in any channel. Needs a synthetic dataset (it has the truth).
"""

from __future__ import annotations

import argparse

import numpy as np

from selfpose.data.backgrounds import POOL_TOLERANCE, pool_backgrounds
from selfpose.data.store import Dataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", help="synthetic dataset folder with background and true_background arrays")
    p.add_argument("--bad-share", type=float, default=0.01, help="a sequence counts as bad above this share")
    a = p.parse_args()
    ds = Dataset.open(a.data)
    groups: dict[str, list] = {}
    for s in ds.sequences:
        if s.has("background") and s.has("true_background"):
            groups.setdefault(s.meta.view, []).append(s)
    own_bad, pooled_bad = [], []
    for seqs in groups.values():
        own = np.stack([np.asarray(s["background"]) for s in seqs])
        pooled, _ = pool_backgrounds(own) if len(seqs) >= 3 else (None, None)
        for k, s in enumerate(seqs):
            true = np.asarray(s["true_background"]).astype(np.int16)
            wrong = lambda b: float((np.abs(b.astype(np.int16) - true).max(-1) > POOL_TOLERANCE).mean())
            own_bad.append(wrong(own[k]))
            pooled_bad.append(wrong(pooled) if pooled is not None else own_bad[-1])
    o, q = np.array(own_bad), np.array(pooled_bad)
    print(f"{len(o)} sequences in {len(groups)} view(s)")
    print(f"own median:      wrong pixels mean {100 * o.mean():.2f}%  max {100 * o.max():.2f}%  "
          f"sequences above {100 * a.bad_share:g}%: {(o > a.bad_share).sum()}")
    print(f"pooled per view: wrong pixels mean {100 * q.mean():.2f}%  max {100 * q.max():.2f}%  "
          f"sequences above {100 * a.bad_share:g}%: {(q > a.bad_share).sum()}")


if __name__ == "__main__":
    main()
