"""Does the decoder draw *this* person's silhouette, or the mean one? (issue 14's probe of the blob decoder).

The full method can only put pose into ``v`` if reconstructing the frame needs it. When the decoder draws
the same average silhouette for every frame, the reconstruction is satisfied without pose and ``v`` need
not carry any. :func:`mask_r2` measures that directly: the share of the silhouettes' variation across
frames that the decoded masks explain, against the best constant mask (the per-pixel mean target).
:func:`decoded_silhouettes` makes the masks and their label-free targets the way training does
(the decoded crop mask against the foreground ``|frame − background| > threshold`` cut by the same box).
"""

from __future__ import annotations

import torch

from selfpose.losses._checks import check_same, check_tensor


def mask_r2(mask: torch.Tensor, target: torch.Tensor, constant: torch.Tensor | None = None) -> float:
    """``1 − Σ(mask − target)² / Σ(c − target)²``, ``c`` the best constant mask (per-pixel mean of ``target``).

    Args:
        mask: ``(B, 1, h, w)`` decoded masks in ``[0, 1]``.
        target: ``(B, 1, h, w)`` silhouettes (0/1 or soft) in the same crops.
        constant: ``(1, 1, h, w)`` the constant to compare with (default: ``target``'s mean over ``B``;
            pass the training set's mean to score held-out frames against it).
    Returns:
        R² (unitless): 1 = every silhouette drawn exactly; 0 = no better than one mean silhouette for all
        frames; < 0 = worse than it. NaN when every target is the constant.
    """
    check_tensor(mask, "mask", ("B", 1, "H", "W"))
    check_tensor(target, "target", ("B", 1, "H", "W"))
    check_same(mask, target, "mask", "target")
    m, t = mask.detach().double(), target.detach().double()
    c = t.mean(0, keepdim=True) if constant is None else constant.detach().double()
    base = ((c - t) ** 2).sum()
    return float("nan") if base == 0 else float(1.0 - ((m - t) ** 2).sum() / base)


@torch.no_grad()
def decoded_silhouettes(model, frames: torch.Tensor, background: torch.Tensor, threshold: float = 0.1,
                        shuffle_i: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A temporal model's decoded crop masks and their foreground targets, as its training sees them.

    Args:
        model: a :class:`~selfpose.models.temporal.TemporalModel` with a decoder.
        frames, background: ``(B, 3, H, W)`` in ``[0, 1]`` (any size; resized by ``model.prepare``).
        threshold: foreground threshold (``loss.fg_threshold``).
        shuffle_i: decode each frame's ``v`` with another frame's ``i`` (a cyclic shift of the batch), as
            training does within a tuple: what the mask keeps then comes from ``v``.
    Returns:
        ``(mask, target)``, both ``(B, 1, c, c)`` float32 in ``[0, 1]``, ``c`` the crop size (the target is the
        0/1 foreground resampled into the crop, soft at its edges, as in training).
    """
    from selfpose.losses.foreground import foreground_mask

    f, b = model.prepare(frames), model.prepare(background)
    ct = model.crop_theta(model.detect(f), f.shape[-2:])
    v, i = model.encode_crop(model.crop(f, ct))
    if shuffle_i and i is not None:
        i = i.roll(1, 0)
    _, mask = model.decode(v, i)
    target = model.crop(foreground_mask(f, b, threshold), ct)
    return mask.float(), target.float()


__all__ = ("mask_r2", "decoded_silhouettes")
