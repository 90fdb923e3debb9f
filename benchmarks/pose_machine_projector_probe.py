"""Probe (issue 12): can the pose machine's learnt projector Ψ_P tell a good 3D pose from a worse one?

Usage::

    python benchmarks/pose_machine_projector_probe.py RUN CHECKPOINT --data H

``RUN`` a pose_machine ``fit-lifter`` run, ``CHECKPOINT`` one of its checkpoints saved after the projector stage
(``RUN/checkpoints/ckpt-…``), ``H`` its dataset.
On the run's validation takes (held-out takes of its training people), GT 2D, 32-frame windows, reports the
re-projection error (normalise_2d units, squared) of: the ground-truth 3D through Ψ_P∘Ψ_C and Ψ_P alone; the
transformer's 3D through Ψ_P∘Ψ_C; the ground-truth 3D projected orthographically (no learnt part: the floor that
ignoring perspective costs); the transformer's 3D orthographically; and the rank correlation, over windows, between
the transformer's 3D error (MPJPE) and its re-projection error (learnt and orthographic).
"""
import argparse
import json

import numpy as np
import torch
from scipy.stats import spearmanr

from selfpose.lifting.config import load_lifter_config
from selfpose.lifting.perspective import camera_reprojection_error
from selfpose.lifting.pose_machine import (
    focal_2d,
    reprojection_error,
    reprojection_target,
)
from selfpose.lifting.train import build_lifter, load_split, split_train_val
from selfpose.lifting.windows import sequence_bounds
from selfpose.training.checkpoint import load_checkpoint

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("run")
ap.add_argument("checkpoint")
ap.add_argument("--data", required=True)
args = ap.parse_args()
run, ck = args.run, args.checkpoint
torch.set_num_threads(1)
cfg = load_lifter_config(f"{run}/config.yaml")
arrays, people = load_split(args.data, cfg)
train, val = split_train_val(arrays, cfg, people)
lifter = build_lifter(train, cfg)
tensors, _, _ = load_checkpoint(ck)
lifter.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
net = lifter.net.eval()
T = 32
starts, ends = sequence_bounds(val.sequences)
firsts = np.array([f for s in np.unique(starts) for f in range(s, ends[s] - T + 1, T)])
idx = firsts[:, None] + np.arange(T)[None]
x = lifter.normalise(torch.from_numpy(lifter.encode_sequences(val, None, 0)))[torch.from_numpy(idx)]
y_mm = torch.from_numpy(val.joints3d[idx])                               # (B, T, J, 3) pelvis-centred mm
J = lifter.num_joints
yz = ((y_mm.reshape(*idx.shape, 3 * J) - lifter.out_mean) / lifter.out_std).float()
target, vis = reprojection_target(lifter, x)
with torch.inference_mode():
    p3 = net(x).float()
    p3_mm = lifter.to_mm(p3)


def ortho(mm):   # X/Y of the camera frame, i.e. projection without perspective (normalise_2d removes scale)
    return mm[..., :2].reshape(*mm.shape[:-2], 2 * J)


with torch.inference_mode():
    res = {
        "gt_through_projector_and_corrector": float(reprojection_error(net.projector(net.corrector(yz)), target, vis)),
        "gt_through_projector": float(reprojection_error(net.projector(yz), target, vis)),
        "transformer_through_projector_and_corrector": float(reprojection_error(net.projector(net.corrector(p3)), target, vis)),
        "gt_orthographic": float(reprojection_error(ortho(y_mm.float()), target, vis)),
        "transformer_orthographic": float(reprojection_error(ortho(p3_mm), target, vis)),
        "gt_camera": float(camera_reprojection_error(y_mm.float(), focal_2d(lifter, x), vis)),
        "transformer_camera": float(camera_reprojection_error(p3_mm, focal_2d(lifter, x), vis)),
    }
    r_cam = camera_reprojection_error(p3_mm, focal_2d(lifter, x), vis, per_clip=True).numpy()
    e3 = torch.linalg.norm(p3_mm - y_mm, dim=-1).mean((1, 2)).numpy()
    r_learnt = reprojection_error(net.projector(net.corrector(p3)), target, vis, per_clip=True).numpy()
    r_ortho = reprojection_error(ortho(p3_mm), target, vis, per_clip=True).numpy()
res.update({"windows": len(idx), "transformer_mpjpe": float(e3.mean()),
            "spearman_mpjpe_vs_learnt_reproj": float(spearmanr(e3, r_learnt)[0]),
            "spearman_mpjpe_vs_ortho_reproj": float(spearmanr(e3, r_ortho)[0]),
            "spearman_mpjpe_vs_camera_reproj": float(spearmanr(e3, r_cam)[0])})
print(json.dumps(res, indent=1))
