"""Re-projection through the real camera: a pelvis-centred 3D pose placed where it best explains its 2D.

The lifters predict 3D relative to the pelvis, so to compare a prediction with
the 2D it came from, it must first be put back in front of the camera. For a
pinhole camera and 2D in focal-normalised coordinates ``u = (p − c) / f``
(what :func:`selfpose.lifting.data.encode_2d` feeds, ``rel + where``), the
translation ``t`` that places the pose ``P`` (mm, camera axes) satisfies, for
every visible joint ``j``, ``(P_j + t)_x = u_jx (P_j + t)_z`` and the same in
``y``: two equations linear in ``t``. :func:`root_translation` solves them in
the least-squares sense, per frame (3 unknowns, ``2J`` equations; the
algebraic error, which weighs a joint by its depth — within a few percent
for a body 3–6 m away). :func:`camera_reprojection_error` then projects ``P +
t`` and compares it with ``u`` in the units of the pose machine's learnt
re-projection (:func:`selfpose.lifting.pose_machine.normalise_2d`: up to
translation and scale), so the two are interchangeable in a loss.

Why it exists (issue 12; ``python benchmarks/pose_machine_projector_probe.py
RUN CKPT --data H`` on a checkpoint taken after the projector stage of an
S1-only run, its held-out S1 takes, 236 windows of 32 frames, 2026-12-02):
the learnt projector Ψ_P∘Ψ_C re-projects the ground-truth 3D with an error
(0.0070) no lower than the transformer's 32.7-mm 3D (0.0072), so its gradient
is mostly its own error; through the camera the ground truth re-projects at
0.00002 (lens distortion, ignored here, is all that is left) and the
transformer's 3D at 0.0009 — a signal 50 times its floor, and better
rank-correlated with the 3D error over windows (Spearman 0.46 vs 0.32).
"""

from __future__ import annotations

import torch


def root_translation(pose_mm: torch.Tensor, u: torch.Tensor, vis: torch.Tensor, ridge: float = 1e-9) -> torch.Tensor:
    """Least-squares camera-frame translation ``(..., 3)`` mm that puts ``pose_mm`` onto ``u``.

    Args:
        pose_mm: ``(..., J, 3)`` pelvis-centred pose, mm, camera axes (x right, y down, z forward).
        u: ``(..., J, 2)`` focal-normalised image coordinates (dimensionless); any finite value where missing.
        vis: ``(..., J)`` 0/1; a frame needs 2 visible joints (fewer: its answer is meaningless but finite).
        ridge: added to the normal equations' diagonal (relative to their trace) so a degenerate frame stays finite.
    """
    w = vis[..., None].to(pose_mm.dtype)                       # (..., J, 1)
    ux, uy = u[..., 0:1], u[..., 1:2]
    one, zero = torch.ones_like(ux), torch.zeros_like(ux)
    # rows of A (per joint, two equations) and of b
    ax = torch.cat([one, zero, -ux], -1)                       # (..., J, 3)
    ay = torch.cat([zero, one, -uy], -1)
    bx = ux[..., 0] * pose_mm[..., 2] - pose_mm[..., 0]        # (..., J)
    by = uy[..., 0] * pose_mm[..., 2] - pose_mm[..., 1]
    ata = (w * ax).transpose(-1, -2) @ ax + (w * ay).transpose(-1, -2) @ ay          # (..., 3, 3)
    atb = ((w * ax) * bx[..., None]).sum(-2) + ((w * ay) * by[..., None]).sum(-2)  # (..., 3)
    eye = torch.eye(3, dtype=ata.dtype, device=ata.device)
    ata = ata + ridge * ata.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None].clamp(min=1e-12) * eye
    return torch.linalg.solve(ata, atb[..., None])[..., 0]


def project(pose_mm: torch.Tensor, t: torch.Tensor, min_depth_mm: float = 1.0) -> torch.Tensor:
    """Pinhole projection ``(..., J, 2)`` (focal-normalised) of ``pose_mm + t`` (``(..., J, 3)`` + ``(..., 3)``)."""
    q = pose_mm + t[..., None, :]
    return q[..., :2] / q[..., 2:3].clamp(min=min_depth_mm)


def camera_reprojection_error(pose_mm: torch.Tensor, u: torch.Tensor, vis: torch.Tensor,
                              per_clip: bool = False) -> torch.Tensor:
    """Mean squared 2D distance between ``pose_mm`` placed and projected by the camera, and ``u``.

    Args:
        pose_mm: ``(B, T, J, 3)`` pelvis-centred 3D, mm, camera axes.
        u: ``(B, T, J, 2)`` focal-normalised 2D of the same frames.
        vis: ``(B, T, J)`` 0/1; frames with fewer than 2 visible joints are left out.
        per_clip: ``(B,)`` one mean per clip instead of one scalar.

    Units: :func:`selfpose.lifting.pose_machine.normalise_2d`'s (both sides centred on their visible
    joints and divided by their RMS radius), the same as the learnt re-projection error.
    """
    from selfpose.lifting.pose_machine import normalise_2d

    vis = vis * (vis.sum(-1, keepdim=True) >= 2)
    u = torch.where(vis[..., None] > 0, u, torch.zeros_like(u))
    t = root_translation(pose_mm.float(), u.float(), vis.float())
    a = normalise_2d(project(pose_mm.float(), t), vis)
    b = normalise_2d(u.float(), vis)
    sq = vis * ((a - b) ** 2).sum(-1)
    if per_clip:
        return sq.flatten(1).sum(1) / vis.flatten(1).sum(1).clamp(min=1)
    return sq.sum() / vis.sum().clamp(min=1)
