"""Data hot paths: rendering, loading, and memory while writing a large dataset.

Usage::

    python benchmarks/bench_data.py                 # render + loader (about a minute)
    python benchmarks/bench_data.py --memory 100000 # + peak RSS of `selfpose synth` writing 100k frames

Reports:
  * render: synthetic frames/s at 128×128 (real H36M motion when ../shared/data
    is present, else the shipped CMU motion), best of 3;
  * loader: random DSL tuples (4 frames each) per second read from a store with
    2 data-loader workers, reported as frames/s, with boxes/joints/backgrounds;
  * memory: peak resident memory of a `selfpose synth` subprocess that renders
    and writes N frames (streamed to disk), and of `selfpose info --check` on it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def bench_render(frames: int, size: int) -> float:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_render import MOCAP  # the same motion choice as bench_render.py

    from selfpose.data.synthetic.render import benchmark_render

    motion = None
    if MOCAP.exists():
        with np.load(MOCAP) as npz:
            motion = npz["S1/walking_1"]
    return max(benchmark_render(frames, size, motion=motion) for _ in range(3))


def _synth(out: Path, extra: list[str]) -> dict:
    """Run `selfpose synth` in a child process; return seconds and peak RSS (MiB)."""
    cmd = [sys.executable, "-m", "selfpose", "synth", "lab", "--out", str(out), "--overwrite", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "SELFPOSE_PROGRESS": "0"}, stdout=subprocess.DEVNULL)
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
    return {"seconds": secs, "peak_rss_mib_so_far": rss}


def bench_loader(root: Path, workers: int, batches: int, batch_size: int) -> dict:
    from selfpose.data.loader import make_loader
    from selfpose.data.samplers import DSLSampler
    from selfpose.data.store import Dataset

    ds = Dataset.open(root)
    sampler = DSLSampler(ds, d_pos_s=0.2, d_neg_s=2.0)
    loader = make_loader(ds, sampler, batch_size=batch_size, num_workers=workers, num_batches=batches, seed=0)
    it = iter(loader)
    first = next(it)  # worker start-up is not throughput
    n = 0
    t0 = time.perf_counter()
    for batch in it:
        n += batch["frames"].shape[0] * batch["frames"].shape[1]
    secs = time.perf_counter() - t0
    return {"frames_per_s": n / secs, "tuples_per_s": n / secs / first["frames"].shape[1],
            "labels": sorted(k for k in first if k != "frames"), "workers": workers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--render-frames", type=int, default=512)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory", type=int, default=0, metavar="FRAMES",
                    help="also measure peak RSS while synthesising about this many frames")
    ap.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = ap.parse_args()
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}

    fps = bench_render(args.render_frames, args.size)
    results["render_frames_per_s"] = fps
    print(f"render: {fps:,.0f} frames/s at {args.size}x{args.size}")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lab"
        # 8 takes × 4 views × 20 s at 10 fps = 6,400 frames of the shipped motion.
        s = _synth(root, ["max_sequences=8"])
        results["synth_small"] = s
        res = bench_loader(root, args.workers, batches=60, batch_size=32)
        results["loader"] = res
        print(f"loader: {res['frames_per_s']:,.0f} frames/s ({res['tuples_per_s']:,.0f} DSL tuples/s, "
              f"{res['workers']} workers, labels {', '.join(res['labels'])})")

        if args.memory:
            big = Path(tmp) / "big"
            from bench_render import MOCAP

            if MOCAP.exists():
                # Real H36M motion, 4 views at 10 fps, whole takes: S1+S5 give ~104k frames.
                subjects = "S1,S5" if args.memory > 60_000 else "S1"
                extra = ["--motion", str(MOCAP), "--subjects", subjects, "max_seconds=null"]
            else:
                # Procedural takes of 20 s at 25 fps, 4 views, until ~N frames.
                extra = ["fps=25", "max_seconds=20", "motion=procedural", f"num_sequences={max(1, args.memory // 2000)}"]
            m = _synth(big, extra)
            from selfpose.data.store import Dataset

            n = Dataset.open(big).num_frames
            results["memory"] = {"frames": n, "synth_seconds": m["seconds"], "synth_peak_rss_mib": m["peak_rss_mib_so_far"],
                                 "synth_frames_per_s": n / m["seconds"]}
            print(f"memory: synth wrote {n:,} frames in {m['seconds']:.0f} s ({n / m['seconds']:,.0f} frames/s), "
                  f"peak RSS {m['peak_rss_mib_so_far']:,.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
