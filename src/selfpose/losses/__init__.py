"""Loss functions of the self-supervised methods — pure functions of tensors.

Equation numbers are those of Honari et al., "Temporal Representation Learning
on Monocular Videos for 3D Human Pose Estimation", TPAMI 2022; the published
text lost its formulas, docs/design.md §1.1 gives the reading implemented here.
Every loss returns a scalar (mean reduction, documented per function); bad
inputs raise :class:`LossInputError` (a ``ValueError``) saying what to fix.

==========================  ==========  =======================================  ==================================
loss                        equation    what it does                             where used
==========================  ==========  =======================================  ==================================
``reconstruction_loss``     Eq. 2       λ_rgb pixel MSE + λ_feat Σ_l MSE of      temporal method, AE-STN-Dec, the
  (``pixel_loss``,                      frozen-ResNet18 stages 1–3 (or           DSL/CSS-STN-Dec ablations
  ``feature_loss``)                     EfficientNet-Lite0 blocks 2, 4, 10)
``ssim_loss``,              — (not in   1 − SSIM (Gaussian window); L1/L2 of     temporal method, optional extra
  ``gradient_loss``,        the paper)  finite-difference gradients; L1 of a     reconstruction terms (``loss.w_ssim``,
  ``laplacian_loss``                    Laplacian pyramid; no learned weights    ``w_grad``, ``w_lap``; 0 = off)
``info_nce_loss``           Eq. 3       InfoNCE on cosine similarity, τ = 0.1    CSS baseline, CSS-STN-Dec-Split
``triplet_loss``            Eq. 4       max(0, ‖a−p‖² − ‖a−n‖² + α)              MV-CSS / time-contrastive networks
``dsl_loss``                Eqs. 5–6    (cos(v_j, v_k) − g(Δ_jk))² over all       temporal method (on ``v`` only),
  (``dsl_target``)                      pairs of (ref, near, mid, far) frames    DSL ablations
``gravity_loss``            Eqs. 7–9    third finite difference of the box       temporal method on dives
                                        centre's height → 0 (free fall)          (stage 1, with reconstruction)
``order_loss``              Eq. 10      box keeps falling ≥ ε per step           idem
``scale_loss``              Eq. 11      box keeps its size                       idem
``tracking_loss``           Eq. 12      L_T = L_G + L_O + L_S from θ (N, 4, 4)   idem
``weak2d_loss``             Eq. 13      confidence-weighted MSE of frame-        temporal method when 2D poses
  (``normalise_2d``)                    normalised 2D joints, NaN = missing      exist (λ_2D = 10)
``detector_prior``          —           batch-mean box size ≈ 0.5, centre ≈ 0    every method with the STN detector
                                        (lab data)
``box_target_loss``,        — (not in   detector → box of |I − B| > τ; decoded   temporal method at the CPU profile
``mask_target_loss``        the paper)  mask → those pixels (label-free          (``loss.w_fg_box``, ``w_fg_mask``)
  (``foreground_mask``,                 curriculum from the estimated
  ``foreground_box``)                   background)
==========================  ==========  =======================================  ==================================

The total of the temporal method is Eq. 14:
``L = L_R + λ_DSL L_DSL + λ_T L_T + λ_2D L_2D + λ_prior L_prior`` (+ the foreground terms at the CPU profile)
(assembled in :mod:`selfpose.methods`, not here).

Frames and units: images are ``(B, 3, H, W)`` floats in ``[0, 1]``; latents
``(N, D)`` or ``(N, K, D)``; temporal distances in frames of the item's video;
boxes ``θ = (s_x, s_y, t_x, t_y)`` with scales as fractions of the frame and
centres in normalised coordinates ``[-1, 1]`` (y down); 2D joints normalised to
the frame (pixels / image size).
"""

from selfpose.losses._checks import LossInputError
from selfpose.losses.contrastive import (
    dsl_loss,
    dsl_target,
    info_nce_loss,
    pairwise_cosine,
    triplet_loss,
)
from selfpose.losses.foreground import box_target_loss, foreground_box, foreground_mask, mask_target_loss
from selfpose.losses.gravity import gravity_loss, order_loss, scale_loss, tracking_loss
from selfpose.losses.priors import detector_prior
from selfpose.losses.reconstruction import (
    PerceptualNet,
    feature_loss,
    feature_terms,
    pixel_loss,
    reconstruction_loss,
)
from selfpose.losses.structural import gradient_loss, laplacian_loss, laplacian_pyramid, ssim_loss, ssim_map
from selfpose.losses.weak2d import normalise_2d, weak2d_loss

__all__ = (
    "LossInputError",
    "pixel_loss", "PerceptualNet", "feature_terms", "feature_loss", "reconstruction_loss",
    "ssim_map", "ssim_loss", "gradient_loss", "laplacian_pyramid", "laplacian_loss",
    "dsl_target", "pairwise_cosine", "dsl_loss", "info_nce_loss", "triplet_loss",
    "gravity_loss", "order_loss", "scale_loss", "tracking_loss",
    "detector_prior",
    "foreground_mask", "foreground_box", "box_target_loss", "mask_target_loss",
    "normalise_2d", "weak2d_loss",
)
