"""Numeric precision and memory layout for training (CPU first; CUDA where a run asks for it).

bf16 here means *autocast*: matmuls and convolutions run in bfloat16 while
weights, gradients and optimiser state stay float32 — no loss scaling is
needed (bf16 has float32's exponent range). On CPUs with native bf16
instructions (AVX512-BF16, AMX) it is markedly faster: measured on this
project's 2-core AMD EPYC (AVX512-BF16), one TemporalMethod step (8 DSL
tuples × 4 frames at 128², CPU profile) 0.66 s fp32 → 0.43 s bf16, and
0.55 → 0.36 s with channels-last; a 512² matmul 1.4 → 0.7 ms. Without those
instructions bf16 is emulated and slower, hence ``auto`` checks the CPU.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path

import torch

from selfpose.errors import SelfposeError

#: CPU flags (Linux ``/proc/cpuinfo``) meaning native bf16 arithmetic.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


class PrecisionError(SelfposeError, ValueError):
    """An unknown precision name."""


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where ``/proc/cpuinfo`` does not exist."""
    p = Path("/proc/cpuinfo")
    if not p.is_file():
        return frozenset()
    for line in p.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_name() -> str:
    """The CPU's model name (best effort)."""
    p = Path("/proc/cpuinfo")
    if p.is_file():
        for line in p.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def bf16_supported(device_type: str = "cpu") -> bool:
    """True when the device computes bf16 natively: on CPU the AVX512-BF16 or AMX flags, on CUDA
    ``torch.cuda.is_bf16_supported()`` (Ampere and newer).

    We read the CPU flags rather than timing a matmul at start-up: timing is
    noisy on shared machines and costs a second; the flags are what oneDNN
    itself dispatches on. Non-Linux systems report False (fp32 is always safe).
    """
    if device_type == "cuda":   # native only: older GPUs emulate bf16 (slower than fp32)
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))
    if device_type != "cpu":
        return False
    return any(f in cpu_flags() for f in BF16_CPU_FLAGS)


def resolve_precision(precision: str, device_type: str = "cpu") -> str:
    """``fp32`` | ``bf16`` | ``auto`` → ``fp32`` or ``bf16`` (auto: bf16 iff :func:`bf16_supported` on ``device_type``)."""
    if precision == "auto":
        return "bf16" if bf16_supported(device_type) else "fp32"
    if precision not in ("fp32", "bf16"):
        raise PrecisionError(f"precision must be fp32, bf16 or auto, got {precision!r}")
    return precision


def bf16_enabled(flag: bool | str, device_type: str = "cpu") -> bool:
    """An ``autocast``/``bf16`` config value (``True``, ``False`` or ``"auto"``) → whether to run bf16.

    ``"auto"``: only where the CPU computes bf16 natively (:func:`bf16_supported`).
    Elsewhere bf16 is emulated: on an AVX2-only AMD EPYC, convolutions under
    bf16 autocast ran 10-30× slower than float32 and a 1024-wide LSTM about
    70× slower, so ``auto`` is the safe default on machines one does not know.
    """
    if flag == "auto":
        return bf16_supported(device_type)
    if isinstance(flag, bool):
        return flag
    raise PrecisionError(f"a bf16/autocast setting must be true, false or auto, got {flag!r}")


def bf16_autocast(flag: bool | str, device_type: str = "cpu") -> torch.autocast:
    """bf16 autocast on ``device_type``, enabled as :func:`bf16_enabled` says for ``flag`` (true, false, auto)."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16_enabled(flag, device_type))


def autocast(precision: str, device_type: str = "cpu") -> contextlib.AbstractContextManager:
    """Context for the forward pass: bf16 autocast on ``device_type``, or nothing for fp32.

    Call ``.backward()`` outside it (autocast only concerns the forward).
    """
    p = resolve_precision(precision, device_type)
    if p == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def full_precision(device_type: str) -> contextlib.AbstractContextManager:
    """A region that runs in float32 even inside :func:`autocast` on ``device_type``.

    Disabling autocast must name the tensors' own device: ``torch.autocast("cpu", enabled=False)``
    leaves CUDA autocast on. Devices without autocast (``meta``, used to audit device placement on
    machines without a GPU) get a plain context.
    """
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def to_channels_last(x):
    """A module or a 4-D tensor in channels-last (NHWC) memory layout; other tensors unchanged.

    Converting the module is enough for convolutions: oneDNN picks NHWC when
    the weight is NHWC, and activations stay NHWC through the network.
    """
    if isinstance(x, torch.nn.Module):
        return x.to(memory_format=torch.channels_last)
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x
