"""Every method's training step keeps its tensors on the batch's device — checked without a GPU.

A training step that makes a tensor on the CPU (``torch.zeros(n)`` without ``device=``) works on a
CPU-only machine and fails on the first CUDA run. PyTorch's ``meta`` device has no values but the
same placement rules as CUDA: an op mixing a meta tensor with a CPU tensor of one or more
dimensions raises "not on the expected device". So the step is run with the model and the batch on
``meta``: it passes only if nothing it makes lands on the CPU. Reading a value (``.item()``,
``float()``, ``if tensor:``) has no answer on meta; inside the check those read as 0 / False — the
method's input checks then take their "input is fine" branch, and the logged numbers are meaningless
(only their presence is checked).

Kornia's colour jitter validates its factors by value, so it runs with ``jitter: false`` here (it is
device-agnostic third-party code).
"""

from __future__ import annotations

import pytest
import torch

from selfpose.methods.registry import build
from selfpose.methods.variants import VARIANTS

from .test_variants import batch_for, config


@pytest.fixture
def values_read_as_zero_on_meta(monkeypatch):
    item, as_float, as_bool = torch.Tensor.item, torch.Tensor.__float__, torch.Tensor.__bool__
    monkeypatch.setattr(torch.Tensor, "item", lambda t: 0.0 if t.device.type == "meta" else item(t))
    monkeypatch.setattr(torch.Tensor, "__float__", lambda t: 0.0 if t.device.type == "meta" else as_float(t))
    monkeypatch.setattr(torch.Tensor, "__bool__", lambda t: False if t.device.type == "meta" else as_bool(t))


def test_meta_catches_a_tensor_left_on_the_cpu(values_read_as_zero_on_meta):
    """The check itself: a CPU tensor meeting a meta one fails, a CPU scalar does not (as on CUDA)."""
    x = torch.ones(2, 3, device="meta")
    with pytest.raises(RuntimeError, match="device"):
        _ = x + torch.ones(2, 3)
    assert (x * torch.tensor(2.0)).device.type == "meta"


def _step_on_meta(name: str, **loss):
    torch.manual_seed(0)
    m = build(name, config(name, loss=loss)).to("meta")
    batch = {k: v.to("meta") for k, v in batch_for(m.sampler_kind(1)).items()}
    total, logs = m.training_step(batch, 0)
    total.backward()
    return m, total, logs


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_method_steps_on_the_batchs_device(name, values_read_as_zero_on_meta):
    m, total, logs = _step_on_meta(name)
    assert total.device.type == "meta" and logs
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads and all(g.device.type == "meta" for g in grads)


def test_full_method_with_every_lever_steps_on_the_batchs_device(values_read_as_zero_on_meta):
    """The optional terms (perceptual, SSIM, gradients, Laplacian pyramid, background swap) too."""
    _, total, logs = _step_on_meta("temporal", w_feat=2.0, w_ssim=1.0, w_grad=1.0, w_lap=1.0, bg_swap=0.5)
    assert total.device.type == "meta"
    assert {"feat", "ssim", "img_grad", "lap", "dsl", "fg_mask"} <= set(logs)
