"""``pose_machine``: the 3D human pose machine with self-supervised correction (Wang, Lin et al., TPAMI 2019).

Keypoint input (no image): the seed's 2D pose sub-network is replaced by the
dataset's 2D keypoints (ground truth or through the detector-noise model).

**The network** (:class:`PoseMachineNet`; its ``forward`` is the transformer's
3D, so it honours the lifter contract with context ``(0, 0)``):

* ``transformer`` (2D → 3D, per clip): per frame, the joints' z-scored
  ``(x, y, visibility)`` as 3 channels over the joint axis → Conv1d(k=3) → ReLU
  → max-pool(2) → Conv1d(k=3) → ReLU → max-pool(2); the flattened features
  *and the frame's whole encoded input* → FC ``hidden`` → ReLU → (``frame_blocks``
  residual blocks) → LSTM ``hidden`` → a second LSTM ``hidden`` over the reversed
  sequence → (+ the per-frame features, ``skip``) → FC → 3J.
  Why a 1D convolution over the joint axis: with keypoints instead of an image
  there is no pixel grid; the H36M joint order runs along kinematic chains
  (legs, spine, arms), so neighbouring indices are mostly neighbouring joints
  and a width-3 kernel sees a joint with its parent and child, and pooling
  gives coarser, limb-level features. Pooling discards exact positions, which
  is why the raw input also reaches the FC layer (a 40-mm lifter needs them).
* **Why the skip** (``skip``, ``frame_blocks``: deviations from the seed's
  layout). As first built — the seed's layout, one FC per frame, every frame's
  3D read from the second LSTM's output alone — the transformer reached 55.4 mm
  on S8, 10 mm worse than the single-frame ``martinez`` baseline. A probe
  (``benchmarks/pose_machine_probe.py``: the transformer stage alone, 1500
  steps, width 512, one thread; validation N-MPJPE on held-out takes of the
  training subjects, never S8) separated the causes: the seed's
  layout 59.9 mm; the per-frame path alone, without LSTMs, 52.2; LSTMs plus a
  skip that adds each frame's own features to their output 48.5; the same with
  one Martinez residual block (BN, ReLU, dropout 0.25) after the FC 47.8, with
  dropout 0.1 45.9. So the LSTMs help only as a correction on top of a per-frame
  pose (forcing the pose through two LSTMs loses precision), and the single FC
  is a weaker per-frame lifter than a residual block. ``skip=false
  frame_blocks=0`` restores the seed's layout.
* **Why clips of 4 frames** (``clip``; the seed does not say). Scored with
  its test frames in order, shuffled and each alone
  (``benchmarks/lifting_time_probe.py``), the transformer trained on clips of 32
  (32 per batch) gained only 1.3 mm from its context on ground-truth 2D and lost
  to ``martinez`` in its per-frame path (57.3 mm each frame alone against 50.1,
  lifting-benchmark budget). Cutting the same 1,024 frames a step into more,
  shorter clips shows its per-frame path more distinct instants: 49.1 mm at
  that budget with 128 clips of 8, 46.1 with 256 clips of 4. Given 30 minutes
  (12,000 steps) clips of 4 beat clips of 8 on the held-out validation takes
  of the training subjects (best validation MPJPE 27.6 against 29.8 mm), which chose them, and
  again on a held-out person (train S1, S5, S6, validate on S7: 42.0 against 43.7); S8 is
  below. With detector noise the longer context is worth more than the
  instants (S8, noisy 2D: clips of 8 better by 4 mm), which is why the
  detector-input lifter (``configs/lifter_video.yaml``) sets its own clips.
* ``corrector`` Ψ_C: 3J → ``hidden`` → 3J, residual (output = input +
  correction), its last layer initialised at zero: Ψ_C starts as the identity.
* ``projector`` Ψ_P: 3J → four FC ``hidden`` layers (ReLU; an identity skip
  around the second and third) → 2J.

**The 2D space of the re-projection** (:func:`normalise_2d`): the lifter's 3D
is pelvis-centred and carries neither the distance to the camera nor the
person's place in the image, so a projection of it is defined only up to
translation and scale. Ψ_P's output and the target ``p_2D`` (the input's own
root-centred 2D / focal, de-z-scored) are both centred on the mean of the
frame's visible joints and divided by their RMS radius about it; the loss is
the mean over visible joints of the squared distance (missing joints —
visibility 0 — are excluded). Units: the 2D pose's own radius (about 0.5 m of
body for 1.0).

**Stages** (:func:`pose_machine_stages`, each resumable by the lead's loop):

1. ``transformer``: 3D MSE on 3D-labelled windows (``steps × (1 − joint_fraction)`` steps, ``lr``);
2. ``projector``: Ψ_P∘Ψ_C learns 3D → 2D from the labelled windows' ground-truth 3D
   with each joint dropped (zeroed: the z-score mean) at ``drop_joints``; Ψ_C is also
   asked to restore the dropped joints (3D MSE), which keeps it a corrector *in 3D*
   (without it Ψ_C's output need not be a pose at all);
3. ``joint``: everything, on all windows: 3D MSE of the transformer and of Ψ_C's
   output on the labelled windows + ``reproj_weight × ‖p_2D − Ψ_P(Ψ_C(p_3D))‖²``
   on every window, 2D-only ones included (they contribute that term only).

**Test-time correction** (:func:`correct`): per clip, a fresh copy of Ψ_C's
weights takes up to ``steps`` Adam steps on the clip's re-projection error
(Ψ_P and the transformer fixed); the corrected 3D is Ψ_C'(p_3D). The clips'
copies are independent (one batched weight tensor per clip, so a clip's
gradient never reaches another's weights), and the network's own weights are
never modified, so nothing leaks from one clip to the next.

**Measured** (2026-12-04, the 2-core Xeon with AMX, one thread, a ``martinez``
run given the same 30 minutes on the other core; real Human3.6M motion through
the real cameras, trained on S1, S5, S6, S7 at the CPU defaults — clips of 4
frames, 256 per batch, 12,000 steps — tested on S8 without its two smoking
takes, which repeat S5's motion exactly; easier than the published protocol,
see issue 12; two seeds, each pair side by side)::

    selfpose prepare mocap h36m17_train_S1-S8_25fps.npz --cameras cameras.pkl --out D
    selfpose fit-lifter --data D --out RUN method=pose_machine threads=1 [seed=1]   # 12500 steps in 1638-1711 s
    selfpose evaluate RUN --data D --subjects S8 --exclude-takes S8__smoking_1,S8__smoking_2 \
        [--correction|--no-correction] [--noise|--no-noise] --json

=================  ==========================  ==========================
S8, mm (seed 0/1)  no correction               correction
=================  ==========================  ==========================
GT 2D              38.1 / 38.7 (P 29.0, 29.1)  38.3 / 38.8 (P 29.0, 29.0)
noisy 2D           78.9 / 79.2                 78.0 / 78.3
=================  ==========================  ==========================

(MPJPE; P: P-MPJPE.) ``martinez`` given the same 30 minutes
(``steps=30000 max_seconds=1800 lr_clock=budget threads=1 [seed=1]``; 25,081 /
22,420 steps): 42.9 / 43.2 (GT 2D) and 102.3 / 105.3 (noisy 2D). So with the
correction on (the default) the pose machine is 10.6% / 10.2% below
``martinez`` per seed, 10.4% on the means (38.6 against 43.1). Its context is
worth 0.3 mm here (each S8 frame lifted alone: 38.5 / 39.0 against 38.2 / 38.7
in order), so the margin is the per-frame path's. Of 29,256 clips the correction stopped early (< 5 mm)
on 28,649 / 28,700 (GT) and 28,611 / 28,575 (noisy) and was discarded
(> 20 mm) on 10 / 11 and 44 / 57: it costs 0.2 mm with ground-truth 2D and
gains 0.9 mm with noisy 2D. Clips of 8 given the same 12,500 steps: 39.3 (GT),
73.8 with noisy 2D and the correction — 4 mm better than clips of 4 there.
Lifting alone about 40,000 frames/s; with the correction about 6,200 (GT) /
4,800 (noisy) frames/s (idle machine; twice as many clips to correct as
with clips of 8). Earlier defaults: clips of 8, 128 a batch, 10,000 steps:
40.5 (GT), 73.6 (noisy, correction); clips of 32, 32 a batch, 9000 steps: 44.1
and 74.7 (2026-12-02).
With
plain SGD at the same learning rate the correction barely moves the joints
(every clip stops after one step); Adam's first step moves every weight by
about ``lr``, which is what makes a 2-step, 1.5e-4 correction do anything.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from selfpose.training.precision import bf16_enabled


def robust_joints(num_joints: int) -> tuple[int, ...]:
    """Indices of the pelvis, hips and shoulders in the house skeleton with ``num_joints`` joints.

    17 → :data:`selfpose.geometry.skeleton.H36M_ROBUST` ``(0, 1, 4, 11, 14)``;
    15 → HumanEva's. Another count: every joint (no skeleton to name them).
    """
    from selfpose.geometry.skeleton import H36M_ROBUST, SKELETONS

    if num_joints == 17:
        return tuple(H36M_ROBUST)
    names = ("pelvis", "left_hip", "right_hip", "left_shoulder", "right_shoulder")
    for sk in SKELETONS.values():
        if sk.num_joints == num_joints and all(n in sk.joint_names for n in names):
            return tuple(sorted(sk.joint_names.index(n) for n in names))
    return tuple(range(num_joints))


# ---------------------------------------------------------------------------------------------- network


def corrector_apply(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor,
                    y: torch.Tensor) -> torch.Tensor:
    """Ψ_C with explicit weights: ``y + W2 relu(W1 y + b1) + b2``.

    Shared weights (``w1 (H, D)``) act on ``y (..., D)``; per-clip weights
    (``w1 (C, H, D)``, ``b1 (C, H)``, ``w2 (C, D, H)``, ``b2 (C, D)``) act on
    ``y (C, T, D)``, clip ``c`` with its own weights.
    """
    if w1.dim() == 2:
        return y + F.linear(torch.relu(F.linear(y, w1, b1)), w2, b2)
    h = torch.relu(torch.baddbmm(b1[:, None], y, w1.transpose(1, 2)))
    return y + torch.baddbmm(b2[:, None], h, w2.transpose(1, 2))


class Corrector(nn.Module):
    """Ψ_C: ``(..., 3J)`` → ``(..., 3J)``, residual, starting as the identity (last layer zero)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def weights(self) -> tuple[torch.Tensor, ...]:
        return self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return corrector_apply(*self.weights(), y)


class Projector(nn.Module):
    """Ψ_P: ``(..., 3J)`` → ``(..., 2J)``; four FC ``hidden`` layers, an identity skip around the middle two."""

    def __init__(self, dim: int, out_dim: int, hidden: int):
        super().__init__()
        self.fc_in = nn.Linear(dim, hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc_in(y))
        h = h + torch.relu(self.fc2(torch.relu(self.fc1(h))))
        return self.out(torch.relu(self.fc3(h)))


class Transformer2Dto3D(nn.Module):
    """The 2D-to-3D transformer: ``(B, T, 3J + 2)`` encoded, z-scored 2D → ``(B, T, 3J)`` z-scored 3D.

    See the module docstring for the layers and why the convolutions run over the joint axis.
    """

    def __init__(self, in_dim: int, out_dim: int, num_joints: int, hidden: int = 1024,
                 conv_channels: tuple[int, int] = (64, 128), bf16: bool = False, skip: bool = False,
                 frame_blocks: int = 0, frame_dropout: float = 0.0):
        super().__init__()
        from selfpose.models.heads import ResidualBlock

        J = int(num_joints)
        if in_dim < 3 * J + 2:
            raise ValueError(f"pose_machine expects the lifter encoding (3J + 2 = {3 * J + 2} inputs, then "
                             f"optional image features), got {in_dim}")
        self.num_joints, self.bf16 = J, bool(bf16)
        c1, c2 = conv_channels
        self.conv1 = nn.Conv1d(3, c1, 3, padding=1)
        self.conv2 = nn.Conv1d(c1, c2, 3, padding=1)
        pooled = math.ceil(math.ceil(J / 2) / 2)
        self.fc_in = nn.Linear(c2 * pooled + in_dim, hidden)
        self.skip = bool(skip)
        self.frame_blocks = nn.Sequential(*[ResidualBlock(hidden, frame_dropout) for _ in range(frame_blocks)])
        self.lstm_fwd = nn.LSTM(hidden, hidden, batch_first=True)
        self.lstm_bwd = nn.LSTM(hidden, hidden, batch_first=True)
        self.fc_out = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        J = self.num_joints
        coords = x[..., :2 * J].reshape(b * t, J, 2)
        vis = x[..., 2 * J + 2:3 * J + 2].reshape(b * t, J, 1)   # image features (if any) follow
        g = torch.cat([coords, vis], dim=-1).transpose(1, 2)               # (BT, 3, J)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            g = F.max_pool1d(torch.relu(self.conv1(g)), 2, ceil_mode=True)
            g = F.max_pool1d(torch.relu(self.conv2(g)), 2, ceil_mode=True)
            f = self.frame_blocks(torch.relu(self.fc_in(torch.cat([g.flatten(1), x.reshape(b * t, d)], dim=1))))
            f = f.view(b, t, -1)
            h, _ = self.lstm_fwd(f)
            h, _ = self.lstm_bwd(h.flip(1))   # the second LSTM reads the sequence backwards
            h = h.flip(1)
            if self.skip:   # the frame's own features around the LSTMs (see PoseMachineConfig.skip)
                h = h + f
        # float32 output layer: bf16's 8-bit mantissa would cost about a millimetre on the 3D
        return self.fc_out(h.float())


class PoseMachineNet(nn.Module):
    """``transformer`` + ``corrector`` (Ψ_C) + ``projector`` (Ψ_P); ``forward`` = the transformer's 3D."""

    context = (0, 0)

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 1024, conv_channels: tuple[int, int] = (64, 128),
                 bf16: bool = False, skip: bool = False, frame_blocks: int = 0, frame_dropout: float = 0.0):
        super().__init__()
        J = out_dim // 3
        self.transformer = Transformer2Dto3D(in_dim, out_dim, J, hidden, conv_channels, bf16, skip, frame_blocks,
                                             frame_dropout)
        self.corrector = Corrector(out_dim, hidden)
        self.projector = Projector(out_dim, 2 * J, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transformer(x)


def build_pose_machine(in_dim: int, out_dim: int, cfg) -> nn.Module:
    """:class:`PoseMachineNet` of ``cfg.pose_machine``."""
    p = cfg.pose_machine
    return PoseMachineNet(in_dim, out_dim, hidden=p.hidden, conv_channels=tuple(p.conv_channels),
                          bf16=bf16_enabled(p.bf16), skip=p.skip, frame_blocks=p.frame_blocks,
                          frame_dropout=p.frame_dropout)


# ---------------------------------------------------------------------------------------------- 2D loss


def normalise_2d(p: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
    """2D poses up to translation and scale: centred on the visible joints' mean, divided by their RMS radius.

    Args:
        p: ``(..., J, 2)`` any 2D units (missing joints: any finite value).
        vis: ``(..., J)`` 0/1.

    Returns:
        ``(..., J, 2)`` dimensionless (the visible joints' RMS distance from their mean is 1).
    """
    w = vis[..., None]
    n = vis.sum(-1)[..., None, None].clamp(min=1)
    centred = p - (w * p).sum(-2, keepdim=True) / n
    # clamp before the square root: sqrt's gradient at 0 is infinite (a frame whose joints are all missing)
    radius = ((w * centred ** 2).sum((-2, -1), keepdim=True) / n).clamp(min=1e-12).sqrt()
    return centred / radius


def reprojection_target(lifter, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(p_2D (..., J, 2), visible (..., J))`` of z-scored encoded frames ``x (..., 3J + 2 [+ F features])``.

    ``p_2D``: the frame's root-centred 2D / focal (de-z-scored), through :func:`normalise_2d`.
    """
    J = lifter.num_joints
    mean, std = lifter.in_mean[:2 * J].to(x.device), lifter.in_std[:2 * J].to(x.device)
    raw = (x[..., :2 * J] * std + mean).reshape(*x.shape[:-1], J, 2)
    vis = x[..., 2 * J + 2:3 * J + 2]
    return normalise_2d(raw, vis), vis


def reprojection_error(pred_2d: torch.Tensor, target: torch.Tensor, vis: torch.Tensor,
                       per_clip: bool = False) -> torch.Tensor:
    """Mean squared 2D distance over the visible joints, in :func:`normalise_2d` units.

    Args:
        pred_2d: ``(B, T, 2J)`` Ψ_P's output (normalised here with ``vis``).
        target: ``(B, T, J, 2)`` from :func:`reprojection_target`.
        vis: ``(B, T, J)`` 0/1; frames with fewer than 2 visible joints are left out.
        per_clip: ``(B,)`` one mean per clip instead of the batch's mean.
    """
    J = vis.shape[-1]
    vis = vis * (vis.sum(-1, keepdim=True) >= 2)     # a frame with fewer than 2 visible joints has no scale
    p = normalise_2d(pred_2d.float().reshape(*pred_2d.shape[:-1], J, 2), vis)
    sq = vis * ((p - target) ** 2).sum(-1)
    if per_clip:
        return sq.flatten(1).sum(1) / vis.flatten(1).sum(1).clamp(min=1)
    return sq.sum() / vis.sum().clamp(min=1)


# ---------------------------------------------------------------------------------------------- stages


def _mse_labelled(pred: torch.Tensor, y: torch.Tensor, has3d: torch.Tensor) -> torch.Tensor:
    """3D MSE (z-scores) over the windows with 3D labels; 0 (with a gradient path) when there are none."""
    if not bool(has3d.any()):
        return pred.sum() * 0.0
    return torch.mean((pred[has3d] - y[has3d]) ** 2)


def transformer_loss(lifter, batch) -> tuple[torch.Tensor, dict]:
    """Stage 1: the transformer's 3D MSE on labelled windows (z-scores of mm)."""
    from selfpose.lifting.loop import mse_3d

    return mse_3d(lifter, batch)


def projector_loss(lifter, batch) -> tuple[torch.Tensor, dict]:
    """Stage 2: ``λ ‖p_2D − Ψ_P(Ψ_C(drop(y)))‖² + ‖Ψ_C(drop(y)) − y‖²`` on the ground-truth 3D ``y``.

    ``drop`` zeroes each joint's three z-scored coordinates with probability
    ``drop_joints`` (torch's global generator: seeded at build, restored on resume).
    """
    p = lifter.cfg.pose_machine
    net = lifter.net
    has = batch.has3d
    y = batch.y[has]
    target, vis = reprojection_target(lifter, batch.targets_x[has])
    J = lifter.num_joints
    keep = (torch.rand(*y.shape[:-1], J, 1) >= p.drop_joints).to(y.dtype)
    dropped = (y.view(*y.shape[:-1], J, 3) * keep).view_as(y)
    c = net.corrector(dropped)
    l2d = reprojection_error(net.projector(c), target, vis)
    l3d = torch.mean((c - y) ** 2)
    return l3d + p.reproj_weight * l2d, {"reproj": l2d, "corrector_mse": l3d}


def focal_2d(lifter, x: torch.Tensor) -> torch.Tensor:
    """``(..., J, 2)`` focal-normalised image coordinates ``(p − c) / f`` of z-scored encoded frames ``x``.

    The encoding's root-relative offsets plus the root's offset from the principal point
    (:func:`selfpose.lifting.data.encode_2d`, ``input_norm=focal``), de-z-scored.
    """
    J = lifter.num_joints
    mean, std = lifter.in_mean[:2 * J + 2].to(x.device), lifter.in_std[:2 * J + 2].to(x.device)
    raw = x[..., :2 * J + 2] * std + mean
    return raw[..., :2 * J].reshape(*x.shape[:-1], J, 2) + raw[..., None, 2 * J:2 * J + 2]


def joint_loss(lifter, batch) -> tuple[torch.Tensor, dict]:
    """Stage 3: 3D MSE of ``p_3D`` and of ``Ψ_C(p_3D)`` on labelled windows + ``λ ‖p_2D − Ψ_P(Ψ_C(p_3D))‖²`` on all.

    ``bone_weight`` adds :func:`selfpose.lifting.bones.bone_length_error` of ``p_3D``
    against the batch's labelled windows' mean bone lengths, on every window.

    With ``reproj_path=camera`` the transformer's 2D term is instead the camera's
    re-projection of ``p_3D`` (:mod:`selfpose.lifting.perspective`, weight
    ``camera_reproj_weight``), and Ψ_C, Ψ_P go on learning from ``p_3D`` detached
    (their terms as above, so the test-time correction keeps working) without
    their errors reaching the transformer.
    """
    p = lifter.cfg.pose_machine
    net = lifter.net
    p3 = net.transformer(batch.x)
    camera = p.reproj_path == "camera"
    c = net.corrector(p3.detach() if camera else p3)
    target, vis = reprojection_target(lifter, batch.targets_x)
    l2d = reprojection_error(net.projector(c), target, vis)
    l3d = _mse_labelled(p3, batch.y, batch.has3d)
    lc = _mse_labelled(c, batch.y, batch.has3d)
    loss, terms = l3d + lc + p.reproj_weight * l2d, {"mse": l3d, "corrector_mse": lc, "reproj": l2d}
    p3_mm = lifter.to_mm(p3) if camera or p.bone_weight > 0 else None
    if camera:
        from selfpose.lifting.perspective import camera_reprojection_error

        lcam = camera_reprojection_error(p3_mm, focal_2d(lifter, batch.targets_x), vis)
        loss, terms["camera_reproj"] = loss + p.camera_reproj_weight * lcam, lcam
    if p.bone_weight > 0 and bool(batch.has3d.any()):
        from selfpose.lifting.bones import bone_length_error, bone_lengths, house_bones

        bones = house_bones(lifter.num_joints)
        ref = bone_lengths(lifter.to_mm(batch.y[batch.has3d]), bones).flatten(0, -2).mean(0)   # labelled windows
        lb = bone_length_error(p3_mm, ref, bones)
        loss, terms["bones"] = loss + p.bone_weight * lb, lb
    return loss, terms


def pose_machine_stages(lifter, cfg) -> list:
    """transformer → projector → joint (see the module docstring); stages with 0 steps are left out.

    ``cfg.steps`` is shared by the two stages that run the LSTMs
    (``joint_fraction`` of it for the joint stage); the projector stage has its own ``projector_steps``.
    With ``cfg.max_seconds`` each stage also ends when its share of that time is spent (see the code).
    """
    from selfpose.lifting.loop import Stage

    p = cfg.pose_machine
    joint = int(round(cfg.steps * p.joint_fraction))
    # With a time limit, each stage gets its own share of it, so a slow (shared) machine shortens every stage
    # instead of never reaching the projector and joint stages: a step of the joint stage costs about 1.4 of the
    # transformer's (measured: 0.39 vs 0.27 s at the CPU setting) and the projector's about 0.3.
    share = {"transformer": None, "projector": None}
    if cfg.max_seconds is not None:
        lstm = (1 - p.joint_fraction) + 1.4 * p.joint_fraction
        share = {"transformer": 0.95 * cfg.max_seconds * (1 - p.joint_fraction) / lstm,
                 "projector": 0.05 * cfg.max_seconds}
    stages = [
        # not selectable: a model from this stage has no trained projector (its correction would be noise)
        Stage("transformer", cfg.steps - joint, transformer_loss, lambda net: net.transformer.parameters(),
              max_seconds=share["transformer"], selectable=False),
        Stage("projector", p.projector_steps, projector_loss,
              lambda net: [*net.corrector.parameters(), *net.projector.parameters()], lr=p.projector_lr,
              max_seconds=share["projector"]),
        Stage("joint", joint, joint_loss, sample="all", lr=p.joint_lr,
              params=(lambda net: net.parameters()) if p.joint_params == "all"
              else (lambda net: net.transformer.parameters())),
    ]
    return [s for s in stages if s.steps > 0]


# ---------------------------------------------------------------------------------------------- correction


def robust_move(a_mm: torch.Tensor, b_mm: torch.Tensor, joints: tuple[int, ...]) -> torch.Tensor:
    """``(C,)`` mean distance (mm) between ``a`` and ``b`` ``(C, T, J, 3)`` over the frames and ``joints``."""
    idx = list(joints)
    return (a_mm[:, :, idx] - b_mm[:, :, idx]).norm(dim=-1).flatten(1).mean(1)


def correct_clips(lifter, y: torch.Tensor, target: torch.Tensor, vis: torch.Tensor, cc) -> tuple[torch.Tensor, dict]:
    """The correction of ``C`` clips, each with its own copy of Ψ_C (see :func:`correct`).

    Args:
        y: ``(C, T, 3J)`` the transformer's z-scored 3D (``p_3D``).
        target, vis: ``(C, T, J, 2)``, ``(C, T, J)`` from :func:`reprojection_target`.
        cc: :class:`~selfpose.lifting.config.CorrectionConfig`.

    Returns:
        ``(y' (C, T, 3J), counts)``.
    """
    net = lifter.net
    C = len(y)
    joints = robust_joints(lifter.num_joints)
    ws = [w.detach()[None].repeat(C, *([1] * w.dim())).requires_grad_(True) for w in net.corrector.weights()]
    m = [torch.zeros_like(w) for w in ws]
    v = [torch.zeros_like(w) for w in ws]
    y = y.detach().float()
    with torch.no_grad():
        y0_mm = lifter.to_mm(y)
    prev = y0_mm
    out = y.clone()
    active = torch.ones(C, dtype=torch.bool)
    stopped = torch.zeros(C, dtype=torch.bool)
    discarded = torch.zeros(C, dtype=torch.bool)
    steps_taken = torch.zeros(C, dtype=torch.long)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for k in range(1, cc.steps + 1):
        if not bool(active.any()):
            break
        with torch.enable_grad():
            err = reprojection_error(net.projector(corrector_apply(*ws, y)), target, vis, per_clip=True)
            grads = torch.autograd.grad(err.sum(), ws)   # clip c's loss depends on clip c's weights only
        with torch.no_grad():
            for w, g, mi, vi in zip(ws, grads, m, v):
                mask = active.view(C, *([1] * (w.dim() - 1))).to(w.dtype)
                if cc.optimizer == "sgd":
                    w.sub_(cc.lr * g * mask)
                    continue
                mi.mul_(b1).add_((1 - b1) * g)
                vi.mul_(b2).add_((1 - b2) * g * g)
                step = (mi / (1 - b1 ** k)) / ((vi / (1 - b2 ** k)).sqrt() + eps)
                w.sub_(cc.lr * step * mask)
            steps_taken += active.long()
            c = corrector_apply(*ws, y)
            mm = lifter.to_mm(c)
            moved = robust_move(mm, prev, joints)
            total = robust_move(mm, y0_mm, joints)
            # a non-finite correction (should not happen; a guard) is discarded like one that moved too far
            drop = active & ((total > cc.discard_mm) | ~torch.isfinite(c).flatten(1).all(1))
            stop = active & ~drop & (moved < cc.stop_mm)
            keep = active & ~drop
            out[keep] = c[keep]
            out[drop] = y[drop]
            discarded |= drop
            stopped |= stop
            active &= ~(drop | stop)
            prev = mm
    counts = {"clips": C, "stopped_small": int(stopped.sum()), "discarded": int(discarded.sum()),
              "applied": C - int(discarded.sum()), "steps_taken": int(steps_taken.sum())}
    return out, counts


def correct(lifter, x: torch.Tensor, y: torch.Tensor, cfg) -> tuple[torch.Tensor, dict]:
    """Test-time self-supervised correction of prediction windows (the :class:`LifterMethod` hook).

    Per clip (window): up to ``steps`` steps of Adam (fresh state per clip;
    ``lr``) on the clip's own copy of Ψ_C, minimising the clip's mean
    re-projection error ``‖p_2D − Ψ_P(Ψ_C(p_3D))‖²`` (Ψ_P, the transformer
    and the network's own Ψ_C unchanged). After each step the robust joints'
    movement (pelvis, hips, shoulders; mean over the clip's frames, mm,
    pelvis-centred — so the pelvis itself never moves) decides:

    * moved more than ``discard_mm`` from the uncorrected ``p_3D``: the
      correction is discarded (``p_3D`` kept) and the clip stops;
    * the step moved them less than ``stop_mm``: the clip stops, keeping Ψ_C'(p_3D);
    * otherwise it goes on; after the last step Ψ_C'(p_3D) is kept ("applied").

    Args:
        x: ``(B, T, 3J + 2)`` z-scored encoded 2D of the windows (context (0, 0): the targets' own frames).
        y: ``(B, T, 3J)`` z-scored ``p_3D``.
        cfg: the lifter's config (``cfg.pose_machine.correction``).

    Returns:
        ``(y' (B, T, 3J), {"clips", "stopped_small", "discarded", "applied", "steps_taken"})``;
        ``applied`` counts the clips whose corrected 3D was kept (``stopped_small`` among them).
    """
    cc = cfg.pose_machine.correction
    x = x.detach().clone().float()
    y = y.detach().clone().float()
    target, vis = reprojection_target(lifter, x)
    parts, counts = [], {}
    for s in range(0, len(y), cc.clips_per_batch):
        sl = slice(s, s + cc.clips_per_batch)
        out, c = correct_clips(lifter, y[sl], target[sl], vis[sl], cc)
        parts.append(out)
        for k, n in c.items():
            counts[k] = counts.get(k, 0) + n
    return (torch.cat(parts) if parts else y), counts
