"""A small registry of self-supervised methods: one entry per method.

A method is built from the pretraining config by ``build(cfg, two_stage)``.
Later methods (baselines, ablations, the other papers' methods) add one
line here.
"""

from __future__ import annotations

from typing import Callable


def _temporal(cfg, two_stage: bool):
    from selfpose.methods.temporal import TemporalConfig, TemporalMethod

    return TemporalMethod(TemporalConfig(model=cfg.model, loss=cfg.loss, sampler=cfg.sampler), two_stage=two_stage)


METHODS: dict[str, Callable] = {
    "temporal": _temporal,
}


def build(name: str, cfg, two_stage: bool = False):
    """The method ``name`` for pretraining config ``cfg``."""
    if name not in METHODS:
        from selfpose.config import ConfigError

        raise ConfigError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name](cfg, two_stage)
