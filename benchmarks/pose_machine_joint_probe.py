"""Probe (issue 12): the pose machine's joint stage alone, from a checkpoint saved at the end of its projector stage.

Usage::

    [VARIANT=l3d|detach|lcdetach] python benchmarks/pose_machine_joint_probe.py RUN CHECKPOINT STEPS --data H \
        [key=value ...]

(keys: LifterConfig overrides, e.g. pose_machine.reproj_weight=0 or pose_machine.reproj_path=camera; VARIANT
replaces the joint stage's loss; CURVE=test puts the S8 frames where the validation takes were, to read the
test curve step by step — a diagnostic only: the step "kept" is then chosen on the test set and means nothing: ``l3d`` the transformer's 3D MSE alone, ``detach`` nothing but that MSE reaches
the transformer, ``lcdetach`` Ψ_C's 3D term does not reach it but the learnt re-projection does.) Prints the validation curve of the joint stage and S8 MPJPE (no smoking takes, GT 2D, no correction) of the step
the loop keeps, and of the checkpoint itself (step 0).
"""
import argparse
import dataclasses
import json
import os
import time

import numpy as np
import torch

from selfpose.config import parse_overrides
from selfpose.lifting.config import load_lifter_config
from selfpose.lifting.data import load_arrays
from selfpose.lifting.loop import train_stages
from selfpose.lifting.pose_machine import pose_machine_stages
from selfpose.lifting.train import build_lifter, load_split, split_train_val
from selfpose.training.checkpoint import load_checkpoint

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("run")
ap.add_argument("checkpoint")
ap.add_argument("steps", type=int)
ap.add_argument("--data", required=True)
ap.add_argument("over", nargs="*")
args = ap.parse_intermixed_args()
run, ck, steps, over = args.run, args.checkpoint, args.steps, args.over
torch.set_num_threads(1)
cfg = load_lifter_config(f"{run}/config.yaml", parse_overrides(over) if over else {})
cfg = dataclasses.replace(cfg, eval_every=100, checkpoint_every=0, max_seconds=None, threads=1)
H = args.data
arrays, people = load_split(H, cfg)
train, val = split_train_val(arrays, cfg, people)
lifter = build_lifter(train, cfg)
tensors, _, _ = load_checkpoint(ck)
lifter.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
test = load_arrays(H, ["S8"])
test = test.subset(~np.isin(test.takes, ["S8__smoking_1", "S8__smoking_2"]))


def s8():
    p = lifter.predict(test, correction=False)
    return float(np.linalg.norm(p - test.joints3d, axis=-1).mean())


base = s8()
joint = [s for s in pose_machine_stages(lifter, cfg) if s.name == "joint"][0]
joint = dataclasses.replace(joint, steps=int(steps), max_seconds=None)
VARIANT = os.environ.get("VARIANT", "")
if VARIANT == "l3d":        # the transformer's 3D MSE only (no corrector term, no re-projection)
    from selfpose.lifting.loop import mse_3d
    joint = dataclasses.replace(joint, loss=lambda lifter, batch: mse_3d(lifter, batch))
elif VARIANT == "detach":   # Ψ_C's 3D term and the re-projection see p3 detached: only l3d moves the transformer
    from selfpose.lifting import pose_machine as PM

    def loss(lifter, batch):
        p = lifter.cfg.pose_machine
        net = lifter.net
        p3 = net.transformer(batch.x)
        c = net.corrector(p3.detach())
        target, vis = PM.reprojection_target(lifter, batch.targets_x)
        l2d = PM.reprojection_error(net.projector(c), target, vis)
        return (PM._mse_labelled(p3, batch.y, batch.has3d) + PM._mse_labelled(c, batch.y, batch.has3d)
                + p.reproj_weight * l2d), {}
    joint = dataclasses.replace(joint, loss=loss)
elif VARIANT == "lcdetach":   # Ψ_C's 3D term trains Ψ_C only; the re-projection still reaches the transformer
    from selfpose.lifting import pose_machine as PM

    def loss(lifter, batch):
        p = lifter.cfg.pose_machine
        net = lifter.net
        p3 = net.transformer(batch.x)
        target, vis = PM.reprojection_target(lifter, batch.targets_x)
        l2d = PM.reprojection_error(net.projector(net.corrector(p3)), target, vis)
        lc = PM._mse_labelled(net.corrector(p3.detach()), batch.y, batch.has3d)
        return PM._mse_labelled(p3, batch.y, batch.has3d) + lc + p.reproj_weight * l2d, {}
    joint = dataclasses.replace(joint, loss=loss)
t0 = time.time()
if os.environ.get("CURVE") == "test":   # a diagnostic of the test curve (S8 N-MPJPE per step); never a selection
    val = test
info = train_stages(lifter, train, val, cfg, [joint], progress=False)
out = {"variant": VARIANT, "over": over, "s8_ckpt": base, "s8_kept": s8(), "best_step": info["best_step"], "seconds": time.time() - t0,
       "curve": [(r["step"], round(r["val_n_mpjpe"], 2), round(r["train_loss"], 4)) for r in info["curve"]]}
print(json.dumps(out))
