"""Probe: where does pose_machine's transformer lose precision against the single-frame martinez baseline?

Usage::

    python benchmarks/pose_machine_probe.py --data H VARIANT [--steps 1500]

``H`` is a ``selfpose prepare mocap`` dataset of the real Human3.6M motion. Each
variant trains the transformer stage alone (no projector, no joint stage) for
the same number of steps at the CPU width (512), one thread, and prints the
validation N-MPJPE on held-out takes of the training subjects (never the test
subject) every 300 steps. Variants:

* ``seed`` — the seed's layout: one FC per frame, the 3D read from the LSTMs alone
  (``pose_machine.skip=false pose_machine.frame_blocks=0``);
* ``frame`` — the per-frame path alone, the LSTMs bypassed (what time adds);
* ``skip`` — the LSTMs' output plus each frame's own features (``skip=true``);
* ``skip_block`` — and one residual block after the FC, dropout 0.25;
* ``skip_block_0.1`` — the same with dropout 0.1 (today's default).

Measured 2026-12-01 (2-core machine shared by two or three such runs): seed 59.9,
frame 52.2, skip 48.5, skip_block 47.8, skip_block_0.1 45.9 mm at step 1500.
"""

from __future__ import annotations

import argparse
import json
import time

VARIANTS = {
    "seed": ["pose_machine.skip=false", "pose_machine.frame_blocks=0"],
    "frame": ["pose_machine.skip=false", "pose_machine.frame_blocks=0"],
    "skip": ["pose_machine.skip=true", "pose_machine.frame_blocks=0"],
    "skip_block": ["pose_machine.skip=true", "pose_machine.frame_blocks=1", "pose_machine.frame_dropout=0.25"],
    "skip_block_0.1": ["pose_machine.skip=true", "pose_machine.frame_blocks=1", "pose_machine.frame_dropout=0.1"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", choices=sorted(VARIANTS))
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    args = ap.parse_args()

    import torch

    from selfpose.lifting import pose_machine as pm
    from selfpose.lifting.config import load_lifter_config
    from selfpose.lifting.data import load_arrays
    from selfpose.lifting.train import fit_lifter, split_train_val

    torch.set_num_threads(1)
    if args.variant == "frame":   # bypass the LSTMs: the per-frame features go straight to the output layer
        def frame_only(self, x):
            b, t, d = x.shape
            J = self.num_joints
            g = torch.cat([x[..., :2 * J].reshape(b * t, J, 2), x[..., 2 * J + 2:].reshape(b * t, J, 1)], -1)
            g = g.transpose(1, 2)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                g = torch.nn.functional.max_pool1d(torch.relu(self.conv1(g)), 2, ceil_mode=True)
                g = torch.nn.functional.max_pool1d(torch.relu(self.conv2(g)), 2, ceil_mode=True)
                f = self.frame_blocks(torch.relu(self.fc_in(torch.cat([g.flatten(1), x.reshape(b * t, d)], 1))))
            return self.fc_out(f.float()).view(b, t, -1)

        pm.Transformer2Dto3D.forward = frame_only
    cfg = load_lifter_config(None, ["method=pose_machine", f"steps={args.steps}", "pose_machine.joint_fraction=0",
                                    "pose_machine.projector_steps=0", "max_seconds=null", "threads=1",
                                    "eval_every=300", "checkpoint_every=0", *VARIANTS[args.variant]])
    train, val = split_train_val(load_arrays(args.data, cfg.train_subjects), cfg)
    t0 = time.time()
    lifter = fit_lifter(train, cfg, val, progress=False)
    print(json.dumps({"variant": args.variant, "steps": args.steps, "seconds": round(time.time() - t0),
                      "val_n_mpjpe": [(r["step"], round(r["val_n_mpjpe"], 1)) for r in lifter.info["curve"]]}))


if __name__ == "__main__":
    main()
