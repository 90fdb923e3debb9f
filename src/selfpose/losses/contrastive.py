"""Contrastive losses on latent vectors: DSL, CSS/InfoNCE and triplet.

Honari et al., TPAMI 2022 (our reading of the lost formulas: docs/design.md §1.1):

* :func:`dsl_loss` — the distance-based similarity loss (Eq. 5) applied to every
  pair of a sampled tuple (Eq. 6). It is the main method's contrastive term and
  acts on the time-variant code ``v`` only.
* :func:`info_nce_loss` — the CSS baseline (Eq. 3), InfoNCE on cosine similarity.
* :func:`triplet_loss` — the MV-CSS / time-contrastive-network baseline (Eq. 4).

All functions return a float32 scalar (mean reduction) that backpropagates
into the latent vectors. Latents may be any float dtype; they are cast to
float32 first, because under bf16 autocast a cosine divided by τ = 0.1 or a
small squared residual would lose most of its digits (the cast is cheap: these
are (N, K, D) vectors, not images).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfpose.losses._checks import (
    LossInputError,
    check_axis,
    check_nonempty,
    check_same,
    check_tensor,
)

# Normalising a zero vector would divide by zero; F.normalize clamps the norm
# at this value so a collapsed latent gives similarity 0, not NaN.
_NORM_EPS = 1e-8


def _per_item(x, delta: torch.Tensor, name: str) -> torch.Tensor:
    """A scalar or a per-item ``(N,)`` distance, shaped to broadcast against ``delta`` ``(N, ...)``."""
    x = torch.as_tensor(x, device=delta.device)
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    if x.ndim == 0:
        return x
    if x.ndim == 1 and delta.ndim >= 1 and x.shape[0] == delta.shape[0]:
        return x.reshape(x.shape[0], *([1] * (delta.ndim - 1)))
    try:
        torch.broadcast_shapes(x.shape, delta.shape)
    except RuntimeError:
        raise LossInputError(f"{name} must be a scalar, a per-item (N,) tensor with N = delta.shape[0] = "
                             f"{delta.shape[0] if delta.ndim else '-'}, or broadcastable to delta "
                             f"{tuple(delta.shape)}; got shape {tuple(x.shape)}") from None
    return x


def dsl_target(delta, d_pos, d_neg) -> torch.Tensor:
    """Target similarity ``g(Δ)`` of the distance-based similarity loss (Eq. 5).

    ``g(Δ) = 1`` for ``Δ ≤ d_pos``, ``0`` for ``Δ ≥ d_neg`` and linear in
    between: ``g(Δ) = (d_neg − Δ) / (d_neg − d_pos)``.

    Args:
        delta: temporal distances ``|t − t'|`` in **frames**, any shape
            (typically ``(N, K, K)`` from the DSL sampler); int or float.
        d_pos, d_neg: in frames of the same video as ``delta``; scalars, or
            per-item ``(N,)`` tensors (one value per leading index of
            ``delta``, since items come from videos of different fps), or any
            shape broadcastable to ``delta``. Need ``d_pos < d_neg``.

    Returns:
        float tensor of ``delta``'s shape, values in ``[0, 1]``.
    """
    delta = torch.as_tensor(delta)
    delta = delta.to(torch.promote_types(delta.dtype, torch.float32))
    d_pos = _per_item(d_pos, delta, "d_pos")
    d_neg = _per_item(d_neg, delta, "d_neg")
    if bool((d_neg <= d_pos).any()):
        raise LossInputError(f"need d_pos < d_neg (frames) for every item, got d_pos={d_pos.flatten().tolist()[:8]}, "
                             f"d_neg={d_neg.flatten().tolist()[:8]}")
    return ((d_neg - delta) / (d_neg - d_pos)).clamp(0.0, 1.0)


def pairwise_cosine(v: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every pair of vectors in each tuple: ``(N, K, D)`` → ``(N, K, K)``."""
    u = F.normalize(v, dim=-1, eps=_NORM_EPS)
    return u @ u.transpose(-1, -2)


def dsl_loss(v: torch.Tensor, delta, d_pos, d_neg) -> torch.Tensor:
    """Distance-based similarity loss over every pair of each tuple (Eqs. 5–6).

    ``L_DSL = mean_{n, j<k} (cos(v_nj, v_nk) − g(Δ_njk))²`` with ``g`` from
    :func:`dsl_target`. For the paper's tuples (K = 4: reference, near,
    intermediate, far) that is 6 pairs per item, so near frames are pulled
    together, far ones pushed to zero similarity (not to −1) and intermediate
    ones held in between.

    Args:
        v: ``(N, K, D)`` time-variant codes of K frames of one video per item.
        delta: ``(N, K, K)`` temporal distances in frames (only ``j < k`` is read).
        d_pos, d_neg: ``(N,)`` (or scalars) distances in that item's frames.

    Returns:
        scalar tensor, mean over the ``N·K(K−1)/2`` pairs; in ``[0, 4]``.
    """
    check_tensor(v, "v", ("N", "K", "D"))
    check_nonempty(v, "v")
    if v.shape[1] < 2:
        raise LossInputError(f"v must hold at least two frames per item (K ≥ 2), got {tuple(v.shape)}")
    delta = torch.as_tensor(delta, device=v.device)
    n, k = v.shape[:2]
    if tuple(delta.shape) != (n, k, k):
        raise LossInputError(f"delta must have shape (N, K, K) = ({n}, {k}, {k}) to match v {tuple(v.shape)}, "
                             f"got {tuple(delta.shape)}")
    target = dsl_target(delta, d_pos, d_neg).float()
    j, i = torch.triu_indices(k, k, offset=1, device=v.device)
    sim = pairwise_cosine(v.float())
    return ((sim[:, j, i] - target[:, j, i]) ** 2).mean()


def info_nce_loss(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor | None = None,
                  temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE on cosine similarity — the CSS baseline (Eq. 3).

    For each item ``n``: ``−log( exp(s(a_n, p_n)/τ) / Σ_{c ∈ {p_n} ∪ neg_n} exp(s(a_n, c)/τ) )``
    with ``s`` the cosine similarity; the positive is part of the denominator
    (standard InfoNCE / NT-Xent), so the loss is ≥ 0 and equals
    ``log(1 + #negatives)`` when all similarities are equal.

    Args:
        anchor: ``(N, D)`` latents of the reference frames.
        positive: ``(N, D)`` latents of their positives.
        negatives: ``(N, M, D)`` explicit negatives per item, or None: the
            other items of the batch are the negatives (SimCLR-style: for item
            n, every ``positive_m`` and ``anchor_m`` with ``m ≠ n``, i.e.
            ``2(N−1)`` negatives; needs N ≥ 2). With in-batch negatives the
            sampler must draw the items from different videos or far apart.
        temperature: ``τ > 0``; 0.1 by default (SimCLR/CSS practice). Lower is sharper.

    Returns:
        scalar tensor, mean over the N items.
    """
    check_tensor(anchor, "anchor", ("N", "D"))
    check_tensor(positive, "positive", ("N", "D"))
    check_same(anchor, positive, "anchor", "positive")
    check_nonempty(anchor, "anchor")
    if not temperature > 0:
        raise LossInputError(f"temperature must be > 0, got {temperature}")
    a = F.normalize(anchor.float(), dim=-1, eps=_NORM_EPS)
    p = F.normalize(positive.float(), dim=-1, eps=_NORM_EPS)
    if negatives is not None:
        check_tensor(negatives, "negatives", ("N", "M", "D"))
        check_axis(negatives, anchor, "negatives", "anchor", 0, 0, "the batch size N")
        check_axis(negatives, anchor, "negatives", "anchor", 2, 1, "the latent size D")
        if negatives.shape[1] == 0:
            raise LossInputError("negatives has M = 0 negatives per item; pass None to use the batch instead")
        neg = F.normalize(negatives.float(), dim=-1, eps=_NORM_EPS)
        logits = torch.cat([(a * p).sum(-1, keepdim=True), torch.einsum("nd,nmd->nm", a, neg)], dim=1)
        labels = torch.zeros(a.shape[0], dtype=torch.long, device=a.device)
    else:
        n = a.shape[0]
        if n < 2:
            raise LossInputError("info_nce_loss with in-batch negatives needs a batch of at least 2 items, "
                                 f"got N = {n}; pass explicit negatives (N, M, D) instead")
        ap = a @ p.T                                   # (N, N): column n is the positive of row n
        aa = a @ a.T
        # An anchor is not its own negative: mask the diagonal of anchor·anchor.
        aa = aa.masked_fill(torch.eye(n, dtype=torch.bool, device=a.device), float("-inf"))
        logits = torch.cat([ap, aa], dim=1)
        labels = torch.arange(n, device=a.device)
    return F.cross_entropy(logits / temperature, labels)


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 0.2,
                 normalize: bool = True) -> torch.Tensor:
    """Triplet margin loss on squared distances (Eq. 4; MV-CSS / time-contrastive networks).

    ``mean max(0, ‖a − p‖² − ‖a − n‖² + α)``.

    Margin: with ``normalize=True`` (the default, as in time-contrastive
    networks) the latents are L2-normalised first, squared distances lie in
    ``[0, 4]`` and ``α = 0.2`` is the usual margin. For raw, unnormalised
    latents (``normalize=False``) the margin must match the latent scale;
    ``α = 1.0`` is the common choice there.

    Args:
        anchor, positive: ``(N, D)``.
        negative: ``(N, D)``, or ``(N, M, D)`` for M negatives per anchor
            (every (anchor, positive, negative_m) triplet counts).
        margin: ``α ≥ 0``, in squared-distance units.
        normalize: L2-normalise all latents before the distances.

    Returns:
        scalar tensor, mean over the ``N`` (or ``N·M``) triplets.
    """
    check_tensor(anchor, "anchor", ("N", "D"))
    check_tensor(positive, "positive", ("N", "D"))
    check_same(anchor, positive, "anchor", "positive")
    check_nonempty(anchor, "anchor")
    if isinstance(negative, torch.Tensor) and negative.ndim == 2:
        check_tensor(negative, "negative", ("N", "D"))
        check_same(anchor, negative, "anchor", "negative")
        negative = negative[:, None]
    else:
        check_tensor(negative, "negative", ("N", "M", "D"))
        check_axis(negative, anchor, "negative", "anchor", 0, 0, "the batch size N")
        check_axis(negative, anchor, "negative", "anchor", 2, 1, "the latent size D")
    if margin < 0:
        raise LossInputError(f"margin must be ≥ 0, got {margin}")
    anchor, positive, negative = anchor.float(), positive.float(), negative.float()
    if normalize:
        anchor, positive, negative = (F.normalize(x, dim=-1, eps=_NORM_EPS) for x in (anchor, positive, negative))
    d_pos = ((anchor - positive) ** 2).sum(-1)                 # (N,)
    d_neg = ((anchor[:, None] - negative) ** 2).sum(-1)        # (N, M)
    return F.relu(d_pos[:, None] - d_neg + margin).mean()


__all__ = ("dsl_target", "pairwise_cosine", "dsl_loss", "info_nce_loss", "triplet_loss")
