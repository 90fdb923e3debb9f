"""One training toolkit: the optimiser, the learning-rate schedule and the optimiser step of every loop.

Three loops train something in selfpose — pretraining
(:func:`selfpose.training.loop.train`), the pose head
(:func:`selfpose.pose.fit.fit_pose`) and the supervised baseline
(:func:`selfpose.pose.supervised.train_supervised`). They differ in what a
batch is, what they validate and how they resume; what they share lives here,
so that a fix or a new safety check reaches all three:

* :func:`build_optimizer` — AdamW (or Adam) with weight decay on weight
  matrices and kernels only (``ndim ≥ 2``), never on biases and normalisation
  scales; every parameter group records its ``base_lr``.
* :func:`lr_at` — the schedule: linear warm-up, then cosine (down to
  ``min_lr_ratio``) or constant. A pure function of the step, so a resumed run
  needs no scheduler state (pretraining's exact resume relies on it).
* :class:`Stepper` — one optimiser step: set the step's learning rate, check
  that it and the loss are finite, backward, clip the gradient norm, step.
  A non-finite value is a :class:`TrainingError` naming the step and the loss
  terms that went non-finite, raised *before* the optimiser touches the
  weights, so the last checkpoint (and, for pretraining, every saved one)
  stays good.
* :func:`progress_text` — the progress bar's line, ``"<name> loss 0.123 0.04 s/step"``.

Steps are counted as pretraining does: ``step`` is the number of completed
optimiser steps before the one being taken (0-based).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import torch

from selfpose.errors import SelfposeError


class TrainingError(SelfposeError, RuntimeError):
    """The run cannot start or continue; the message says what to do."""


def check_lr(optim, lr_key: str = "optim.lr") -> None:
    """Raise :class:`TrainingError` unless ``optim.lr`` is a finite number > 0.

    (``nan <= 0`` is False, so a plain range check lets NaN through.)
    """
    lr = optim.lr
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise TrainingError(f"the learning rate {lr_key} is {lr!r}; set it to a finite number > 0 (e.g. 1e-3)")


def param_groups(params: Iterable[torch.nn.Parameter], weight_decay: float) -> list[dict]:
    """Trainable ``params`` split into a decayed group (``ndim ≥ 2``) and an undecayed one (empty groups dropped).

    Decaying biases and normalisation scales only hurts (the usual practice, e.g. nanoGPT).
    """
    decay, no_decay = [], []
    for p in params:
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [g for g in ({"params": decay, "weight_decay": weight_decay},
                        {"params": no_decay, "weight_decay": 0.0}) if g["params"]]


def build_optimizer(params: Iterable[torch.nn.Parameter] | torch.nn.Module, optim, *, fused: bool = False,
                    lr_key: str = "optim.lr", scaled: tuple[torch.nn.Module, float] | None = None
                    ) -> torch.optim.Optimizer:
    """The optimiser ``optim`` (an :class:`~selfpose.training.config.OptimConfig`) asks for.

    Args:
        params: a module or its parameters; those without ``requires_grad`` are left out.
        optim: ``optimizer`` (``adamw``/``adam``), ``lr``, ``weight_decay``, ``betas``.
        fused: one kernel for all parameters (worth it when the optimiser
            dominates a step, e.g. a small pose head); CPU and CUDA only.
        lr_key: the config key of the learning rate, for error messages.
        scaled: ``(module, factor)``: the parameters of ``module`` (among ``params``) learn at
            ``optim.lr × factor`` in groups of their own (e.g. pretrained layers under a fresh head).

    Each group gets ``base_lr = optim.lr`` (× ``factor`` for ``scaled``), which :meth:`Stepper.set_lr` scales.

    Raises:
        TrainingError: no trainable parameter, an unknown optimiser, a non-finite learning rate.
    """
    check_lr(optim, lr_key)
    if isinstance(params, torch.nn.Module):
        params = params.parameters()
    slow = {id(p) for p in scaled[0].parameters()} if scaled is not None else set()
    params = list(params)
    groups = [{**g, "base_lr": optim.lr} for g in param_groups([p for p in params if id(p) not in slow],
                                                                 optim.weight_decay)]
    if scaled is not None:
        groups += [{**g, "base_lr": optim.lr * scaled[1], "lr": optim.lr * scaled[1]}
                   for g in param_groups([p for p in params if id(p) in slow], optim.weight_decay)]
    if not groups:
        raise TrainingError("the model has no trainable parameter; nothing to optimise")
    kind = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
    if optim.optimizer not in kind:
        raise TrainingError(f"unknown optimizer {optim.optimizer!r}; choose one of {', '.join(kind)}")
    extra = {"fused": True} if fused else {}
    return kind[optim.optimizer](groups, lr=optim.lr, betas=tuple(optim.betas), **extra)


def lr_at(step: int, optim, total_steps: int) -> float:
    """Learning-rate multiplier (of each group's ``base_lr``) for 0-based ``step``.

    Linear warm-up over ``warmup_steps`` (``(step + 1) / warmup_steps``), then
    constant or cosine from 1 down to ``min_lr_ratio`` at the last step
    (``total_steps − 1``). Pure, so a resumed run needs no scheduler state.
    """
    w = optim.warmup_steps
    if w and step < w:
        return (step + 1) / w
    if optim.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - w) / max(1, total_steps - 1 - w))
    return optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def progress_text(name: str, loss: float, sec_per_step: float) -> str:
    """The progress bar's description while training: ``"<name> loss 0.1234 0.05 s/step"``."""
    return f"{name} loss {loss:.4g} {sec_per_step:.2f} s/step"


class Stepper:
    """One optimiser step, the same way in every loop.

    Args:
        optimizer: from :func:`build_optimizer` (or any optimiser; a group
            without ``base_lr`` takes its current ``lr`` as base).
        optim: the :class:`~selfpose.training.config.OptimConfig` of the
            schedule (``lr``, ``warmup_steps``, ``schedule``,
            ``min_lr_ratio``) and of clipping (``grad_clip``).
        total_steps: steps of the whole run (the schedule's length).
        params: the parameters to clip (default: the optimiser's).
        lr_key: the config key of the learning rate, named in errors.
        hint: appended to a non-finite error (e.g. where the last good checkpoint is).
        defer_check: check the loss without a host synchronisation per step:
            the first non-finite step is recorded on the device and
            :meth:`check` raises (call it where the loop syncs anyway, e.g. at
            validation, and at the end). For loops that keep nothing on disk
            until they finish (the pose heads); pretraining checks every step.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, optim, total_steps: int,
                 params: Iterable[torch.nn.Parameter] | None = None, *, lr_key: str = "optim.lr",
                 hint: str = "", defer_check: bool = False):
        self.optimizer, self.optim, self.total_steps = optimizer, optim, int(total_steps)
        self.params = (list(params) if params is not None
                       else [p for g in optimizer.param_groups for p in g["params"]])
        self.lr_key, self.hint, self.defer_check = lr_key, hint, defer_check
        for g in optimizer.param_groups:
            g.setdefault("base_lr", g["lr"])
        self._first_bad: torch.Tensor | None = None

    def set_lr(self, step: int) -> float:
        """Give every group its learning rate for 0-based ``step``; returns ``optim.lr × lr_at(step)``.

        Raises:
            TrainingError: the learning rate is NaN or infinite.
        """
        mult = lr_at(step, self.optim, self.total_steps)
        lr = self.optim.lr * mult
        lrs = [g["base_lr"] * mult for g in self.optimizer.param_groups]
        if not all(math.isfinite(x) for x in (lr, *lrs)):
            raise TrainingError(f"the learning rate is {lr} at step {step} ({self.lr_key} = {self.optim.lr!r}); "
                                f"set {self.lr_key} to a finite number > 0{self._hint()}")
        for g, x in zip(self.optimizer.param_groups, lrs):
            g["lr"] = x
        return lr

    def step(self, loss: torch.Tensor, step: int, terms: Mapping[str, object] | None = None) -> dict[str, float]:
        """Backward ``loss``, clip, step. ``step`` is 0-based; ``terms`` are the loss's named parts (for errors).

        Returns:
            ``{"grad_norm": …}`` when ``optim.grad_clip`` is set (the norm before clipping), else ``{}``.

        Raises:
            TrainingError: ``loss`` (or the gradient norm) is NaN or infinite;
                the weights and optimiser state are not touched.
        """
        loss = loss.float()
        if self.defer_check:
            bad = ~torch.isfinite(loss.detach())
            first = torch.full((), step, dtype=torch.int64, device=loss.device)
            if self._first_bad is None:
                self._first_bad = torch.full((), -1, dtype=torch.int64, device=loss.device)
            self._first_bad = torch.where(bad & (self._first_bad < 0), first, self._first_bad)
        elif not bool(torch.isfinite(loss)):
            raise TrainingError(self._nonfinite_message(step, float(loss.detach()), terms))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        extra: dict[str, float] = {}
        clip = getattr(self.optim, "grad_clip", None)
        if clip:
            norm = float(torch.nn.utils.clip_grad_norm_(self.params, clip))
            if not math.isfinite(norm) and not self.defer_check:
                self.optimizer.zero_grad(set_to_none=True)
                raise TrainingError(f"the gradient norm is {norm} at step {step} (the loss, "
                                    f"{float(loss.detach()):.6g}, is finite); lower {self.lr_key} or check the "
                                    f"data{self._hint()}")
            extra["grad_norm"] = norm
        self.optimizer.step()
        return extra

    def check_weights(self, module: torch.nn.Module, step: int) -> None:
        """Raise :class:`TrainingError` when a parameter of ``module`` holds NaN or inf (after ``step`` steps).

        One pass over the weights: call it before saving a checkpoint (so a
        diverged model is never saved over good ones) and when a forward pass
        fails (a non-finite weight is the usual cause of an error deep inside it).
        """
        bad = [n for n, p in module.named_parameters() if not bool(torch.isfinite(p.detach()).all())]
        if bad:
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise TrainingError(f"the weights became non-finite by step {step} ({', '.join(bad[:3])}{more}); "
                                f"lower {self.lr_key}{self._clip_advice()} or check the data{self._hint()}")

    def check(self) -> None:
        """Raise the non-finite loss recorded with ``defer_check`` (a no-op otherwise)."""
        if self._first_bad is not None and int(self._first_bad) >= 0:
            raise TrainingError(self._nonfinite_message(int(self._first_bad), None, None))

    # -- messages ----------------------------------------------------------------------------
    def _hint(self) -> str:
        return f"; {self.hint}" if self.hint else ""

    def _nonfinite_message(self, step: int, loss: float | None, terms: Mapping[str, object] | None) -> str:
        bad = []
        for name, v in (terms or {}).items():
            if name == "loss":  # the total itself, already named
                continue
            try:
                x = float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(x):
                bad.append(f"{name}={x}")
        what = "the loss became non-finite" if loss is None else f"the loss is {loss}"
        terms_text = f" (non-finite terms: {', '.join(bad)})" if bad else ""
        return (f"{what} at step {step}{terms_text}; lower {self.lr_key}{self._clip_advice()} or check the data "
                f"(NaN/inf in frames or labels){self._hint()}")

    def _clip_advice(self) -> str:
        # Only pretraining's OptimConfig is a user-facing section with grad_clip.
        return ", set optim.grad_clip" if self.lr_key == "optim.lr" and not self.optim.grad_clip else ""


def column_spread(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column mean and std of ``x`` (N, D), ignoring NaN; a std < 1e-6 (a constant column) becomes 1.

    The z-scoring statistics of the pose heads' and lifters' inputs and targets.
    """
    finite = torch.isfinite(x)
    cnt = finite.sum(0).clamp_min(1)
    z = torch.where(finite, x, torch.zeros_like(x))
    mean = z.sum(0) / cnt
    var = (torch.where(finite, x - mean, torch.zeros_like(x)) ** 2).sum(0) / cnt
    std = var.sqrt()
    return mean, torch.where(std < 1e-6, torch.ones_like(std), std)
