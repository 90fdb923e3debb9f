"""Choose a temporal lifter's prediction window on its validation takes (never the test subject).

Loads a lifter run, rebuilds its own training/validation split (held-out takes
of the training subjects, or its ``val_subjects``) and prints the validation
MPJPE (mm, correction off) at several ``pose_machine.predict_clip`` values::

    PYTHONPATH=src python benchmarks/lifting_predict_clip.py RUN --data H [--clips 32 64 128 256 512]
"""

from __future__ import annotations

import argparse
import dataclasses
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--data", required=True, help="the keypoint dataset the run was trained on")
    ap.add_argument("--clips", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    args = ap.parse_args()
    import torch

    from selfpose.evaluation.metrics import mpjpe
    from selfpose.lifting.model import Lifter
    from selfpose.lifting.train import load_split, split_train_val

    torch.set_num_threads(1)
    lifter = Lifter.load(args.run)
    cfg = lifter.cfg
    if cfg.method != "pose_machine":
        raise SystemExit(f"{args.run} is a {cfg.method} run; only pose_machine has a prediction window to choose")
    arrays, people = load_split(args.data, cfg)
    _, val = split_train_val(arrays, cfg, people)
    if val is None:
        raise SystemExit(f"{args.run} was trained without validation (val_fraction=0): nothing to choose on")
    print(f"validation: {len(val)} frames, {len(set(val.takes))} takes")
    for clip in args.clips:
        lifter.cfg = dataclasses.replace(cfg, pose_machine=dataclasses.replace(cfg.pose_machine, predict_clip=clip))
        t0 = time.perf_counter()
        pred = lifter.predict(val, correction=False)
        print(f"predict_clip {clip:4d}: MPJPE {float(mpjpe(pred, val.joints3d)):.2f} mm "
              f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
