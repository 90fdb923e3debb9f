"""DSL, InfoNCE (CSS) and triplet losses: hand-computed values, input checks, optimisation."""

import math

import pytest
import torch

from selfpose.losses import (
    LossInputError,
    dsl_loss,
    dsl_target,
    info_nce_loss,
    pairwise_cosine,
    triplet_loss,
)


# ---------------------------------------------------------------- dsl_target
def test_dsl_target_piecewise_linear():
    g = dsl_target(torch.tensor([0, 5, 10, 15, 20, 300]), 10, 20)
    assert torch.allclose(g, torch.tensor([1.0, 1.0, 1.0, 0.5, 0.0, 0.0]))
    assert g.dtype == torch.float32


def test_dsl_target_per_item_distances():
    # Two items from videos of different fps: same Δ in frames, different targets.
    delta = torch.full((2, 3, 3), 15)
    g = dsl_target(delta, torch.tensor([10, 5]), torch.tensor([20, 55]))
    assert torch.allclose(g[0], torch.full((3, 3), 0.5))
    assert torch.allclose(g[1], torch.full((3, 3), 0.8))


def test_dsl_target_rejects_bad_distances():
    with pytest.raises(LossInputError, match="d_pos < d_neg"):
        dsl_target(torch.zeros(2, 4, 4), torch.tensor([10, 30]), torch.tensor([20, 20]))
    with pytest.raises(LossInputError, match="per-item"):
        dsl_target(torch.zeros(2, 4, 4), torch.tensor([1, 2, 3]), 20)


# ---------------------------------------------------------------- dsl_loss
def test_dsl_loss_hand_computed():
    # v0 = v1 (cos 1, Δ=0 → g=1: 0); v0 ⊥ v2 (cos 0, Δ=100 → g=0: 0);
    # v1 ⊥ v2 (cos 0, Δ=15 → g=0.5: 0.25). Mean over the 3 pairs.
    v = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]])
    delta = torch.tensor([[[0, 0, 100], [0, 0, 15], [100, 15, 0]]])
    loss = dsl_loss(v, delta, torch.tensor([10]), torch.tensor([20]))
    assert loss.item() == pytest.approx(0.25 / 3)


def test_dsl_loss_reads_upper_triangle_only():
    v = torch.randn(3, 4, 8)
    delta = torch.randint(0, 50, (3, 4, 4))
    lower = torch.tril(torch.randint(0, 50, (3, 4, 4)), -1)
    base = dsl_loss(v, torch.triu(delta, 1), 5, 20)
    assert dsl_loss(v, torch.triu(delta, 1) + lower, 5, 20).item() == pytest.approx(base.item())


def test_dsl_loss_is_scale_invariant_and_zero_latent_is_finite():
    v = torch.randn(2, 4, 16)
    delta = torch.randint(0, 50, (2, 4, 4))
    assert dsl_loss(v, delta, 5, 20).item() == pytest.approx(dsl_loss(7 * v, delta, 5, 20).item(), rel=1e-5)
    z = torch.zeros(2, 4, 16, requires_grad=True)
    loss = dsl_loss(z, delta, 5, 20)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_dsl_loss_shape_errors():
    with pytest.raises(LossInputError, match=r"\(N, K, K\)"):
        dsl_loss(torch.randn(2, 4, 8), torch.zeros(2, 3, 3), 5, 20)
    with pytest.raises(LossInputError, match="3 dims"):
        dsl_loss(torch.randn(4, 8), torch.zeros(4, 4), 5, 20)
    with pytest.raises(LossInputError, match="K ≥ 2"):
        dsl_loss(torch.randn(2, 1, 8), torch.zeros(2, 1, 1), 5, 20)


def test_dsl_loss_goes_down():
    torch.manual_seed(0)
    # A sampler-like batch: reference, near, intermediate, far frames.
    frames = torch.tensor([[100, 103, 160, 400], [50, 45, 10, 300], [500, 508, 600, 100], [0, 2, 30, 250]])
    delta = (frames[:, :, None] - frames[:, None, :]).abs()
    v = torch.randn(4, 4, 16, requires_grad=True)
    opt = torch.optim.Adam([v], lr=0.05)
    first = dsl_loss(v, delta, 10, 200).item()
    for _ in range(150):
        opt.zero_grad()
        loss = dsl_loss(v, delta, 10, 200)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    sim = pairwise_cosine(v.detach())
    assert (sim[:, 0, 1] > 0.9).all() and (sim[:, 0, 3].abs() < 0.2).all()   # near pulled in, far pushed to 0


# ---------------------------------------------------------------- info_nce_loss
def test_info_nce_explicit_negatives_hand_computed():
    a = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[2.0, 0.0]])
    n = torch.tensor([[[0.0, 5.0]]])
    # τ = 1: logits (1, 0) → −log(e / (e + 1)).
    assert info_nce_loss(a, p, n, temperature=1.0).item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    # τ = 0.5: logits (2, 0).
    assert info_nce_loss(a, p, n, temperature=0.5).item() == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)


def test_info_nce_in_batch_hand_computed():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # item 0: positives (p0: 1, p1: 0), other anchor a1: 0 → −log(e / (e + 1 + 1)).
    expected = math.log(math.e + 2) - 1
    assert info_nce_loss(a, a.clone(), None, temperature=1.0).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_equal_similarities_give_log_count():
    a = torch.ones(3, 4)
    n = torch.ones(3, 5, 4)
    assert info_nce_loss(a, a, n).item() == pytest.approx(math.log(6), rel=1e-5)


def test_info_nce_input_errors():
    with pytest.raises(LossInputError, match="at least 2"):
        info_nce_loss(torch.randn(1, 4), torch.randn(1, 4))
    with pytest.raises(LossInputError, match="same shape"):
        info_nce_loss(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(LossInputError, match="latent size"):
        info_nce_loss(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 2, 5))
    with pytest.raises(LossInputError, match="temperature"):
        info_nce_loss(torch.randn(3, 4), torch.randn(3, 4), temperature=0.0)


@pytest.mark.parametrize("explicit", [False, True])
def test_info_nce_goes_down(explicit):
    torch.manual_seed(0)
    # A tiny encoder: positives are noisy copies of the anchors' inputs.
    x = torch.randn(16, 10)
    model = torch.nn.Linear(10, 16)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)

    def loss_fn():
        a, p = model(x), model(x + 0.1 * torch.randn_like(x))
        negs = model(x.roll(1, 0) + 0.1 * torch.randn_like(x))[:, None] if explicit else None
        return info_nce_loss(a, p, negs)

    first = loss_fn().item()
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


# ---------------------------------------------------------------- triplet_loss
def test_triplet_hand_computed_raw():
    a = torch.zeros(2, 2)
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    n = torch.tensor([[0.0, 0.5], [2.0, 0.0]])
    # item 0: 1 − 0.25 + 1 = 1.75; item 1: 1 − 4 + 1 < 0 → 0.
    assert triplet_loss(a, p, n, margin=1.0, normalize=False).item() == pytest.approx(1.75 / 2)


def test_triplet_hand_computed_normalised_and_many_negatives():
    a = torch.tensor([[2.0, 0.0]])
    p = torch.tensor([[0.0, 3.0]])                       # ‖â − p̂‖² = 2
    n = torch.tensor([[[-1.0, 0.0], [5.0, 0.0]]])        # ‖â − n̂‖² = 4 and 0
    # (max(0, 2 − 4 + .2) + max(0, 2 − 0 + .2)) / 2
    assert triplet_loss(a, p, n).item() == pytest.approx(1.1, rel=1e-6)


def test_triplet_input_errors():
    with pytest.raises(LossInputError, match="same shape"):
        triplet_loss(torch.randn(3, 4), torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(LossInputError, match="batch size"):
        triplet_loss(torch.randn(3, 4), torch.randn(3, 4), torch.randn(2, 5, 4))
    with pytest.raises(LossInputError, match="margin"):
        triplet_loss(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4), margin=-1)


def test_triplet_goes_down():
    torch.manual_seed(0)
    a, p, n = (torch.randn(8, 6, requires_grad=True) for _ in range(3))
    opt = torch.optim.SGD([a, p, n], lr=0.5)
    first = triplet_loss(a, p, n).item()
    for _ in range(100):
        opt.zero_grad()
        loss = triplet_loss(a, p, n)
        loss.backward()
        opt.step()
    assert first > 0.1 and loss.item() < 0.1 * first


def test_low_precision_latents_give_float32_losses_and_gradients():
    v = torch.randn(2, 4, 8, dtype=torch.bfloat16, requires_grad=True)
    delta = torch.randint(0, 50, (2, 4, 4))
    losses = [dsl_loss(v, delta, 5, 20), info_nce_loss(v[:, 0], v[:, 1]), triplet_loss(v[:, 0], v[:, 1], v[:, 2])]
    assert all(l.dtype == torch.float32 for l in losses)
    sum(losses).backward()
    assert v.grad.dtype == torch.bfloat16 and torch.isfinite(v.grad.float()).all()
