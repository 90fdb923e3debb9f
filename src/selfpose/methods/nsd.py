"""NSD baseline (Rhodin et al., CVPR 2019, "neural scene decomposition") on the temporal method's model.

Multi-view: a pair of synchronised views of one instant. Each view's
detector box is cropped and encoded into an appearance code ``i`` and a
geometry code ``v`` read as a 3D point cloud (``v_dim // 3`` points; a
remainder of ``v_dim % 3`` numbers rides along unrotated). To redraw view
``b`` the decoder gets view ``a``'s point cloud turned by the relative
camera rotation ``R_b R_aᵀ`` and view ``a``'s appearance; the result is
pasted into view ``b``'s box over view ``b``'s background and compared with
view ``b`` (and the other way round). Only a code that holds 3D geometry
can be turned into another view, so ``v`` learns it. No contrastive term.
Needs takes seen by ≥ 2 cameras with known extrinsics (``camera_R``).
"""

from __future__ import annotations

import torch

from selfpose.config import ConfigError
from selfpose.methods.temporal import TemporalConfig, TemporalMethod


def rotate_point_codes(v: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Turn the point clouds held in codes ``v`` by rotations ``R``.

    Args:
        v: ``(B, D)`` codes; the first ``3·(D // 3)`` numbers are ``D // 3``
            points (x, y, z); the rest pass through.
        R: ``(B, 3, 3)`` rotations (column-vector convention: ``p' = R p``).

    Returns:
        ``(B, D)``.
    """
    if v.ndim != 2 or R.shape != (v.shape[0], 3, 3):
        raise ValueError(f"need v (B, D) and R (B, 3, 3), got {tuple(v.shape)} and {tuple(R.shape)}")
    m = v.shape[1] // 3
    pts = v[:, :3 * m].reshape(-1, m, 3) @ R.transpose(1, 2).to(v.dtype)
    return torch.cat([pts.reshape(-1, 3 * m), v[:, 3 * m:]], dim=1)


class NSDMethod(TemporalMethod):
    """NSD: cross-view re-synthesis through a rotated point-cloud code."""

    name = "nsd"

    def __init__(self, cfg: TemporalConfig, two_stage: bool = False):
        if not cfg.model.split or not cfg.model.decoder:
            raise ConfigError("NSD needs the appearance/geometry split and the decoder (model.split, model.decoder)")
        if cfg.model.v_dim < 3:
            raise ConfigError(f"NSD reads v as 3D points: model.v_dim must be >= 3, got {cfg.model.v_dim}")
        super().__init__(cfg, two_stage=two_stage)

    def sampler_kind(self, stage: int) -> str:
        """Synchronised pairs of views (:class:`~selfpose.data.samplers.MultiViewSyncSampler`, always in sync)."""
        return "views"

    def decoder_codes(self, v, i, batch, n, k):
        """Frame ``j`` of a pair is decoded from its partner's geometry, rotated into ``j``'s camera, and appearance."""
        if k != 2 or "camera_R" not in batch:
            raise ConfigError("NSD trains on synchronised view pairs with camera rotations (camera_R); "
                              "the data need takes seen by >= 2 calibrated cameras")
        R = batch["camera_R"].to(v.device).float().reshape(n, 2, 3, 3)
        partner = lambda x: x.reshape(n, 2, -1).flip(1).reshape(n * 2, -1)  # noqa: E731  (a↔b in each pair)
        R_from = R.flip(1).reshape(-1, 3, 3)                 # the partner's world→camera rotation
        R_rel = R.reshape(-1, 3, 3) @ R_from.transpose(1, 2)  # partner camera → this camera
        return rotate_point_codes(partner(v).float(), R_rel).to(v.dtype), partner(i)


__all__ = ("NSDMethod", "rotate_point_codes")
