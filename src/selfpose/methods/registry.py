"""A small registry of self-supervised methods: one entry per method.

A method is built from the pretraining config by ``build(cfg, two_stage)``.
Later methods (baselines, ablations, the other papers' methods) add one
line here.
"""

from __future__ import annotations

from typing import Callable


def _temporal(cfg, two_stage: bool):
    """The temporal method, or one of its ablations/baselines (:mod:`selfpose.methods.variants`)."""
    from selfpose.methods.temporal import TemporalConfig, TemporalMethod
    from selfpose.methods.variants import resolve

    cfg = resolve(cfg)
    method = TemporalMethod(TemporalConfig(model=cfg.model, loss=cfg.loss, sampler=cfg.sampler), two_stage=two_stage)
    method.name = cfg.method
    return method


def _drnet(cfg, two_stage: bool):
    """DrNet with the temporal method's detector and decoder (:mod:`selfpose.methods.drnet`)."""
    from selfpose.methods.drnet import DrNetMethod
    from selfpose.methods.temporal import TemporalConfig
    from selfpose.methods.variants import resolve

    cfg = resolve(cfg)
    return DrNetMethod(TemporalConfig(model=cfg.model, loss=cfg.loss, sampler=cfg.sampler), cfg.drnet,
                       two_stage=two_stage)


def _nsd(cfg, two_stage: bool):
    """NSD with the temporal method's detector, encoder and decoder (:mod:`selfpose.methods.nsd`)."""
    from selfpose.methods.nsd import NSDMethod
    from selfpose.methods.temporal import TemporalConfig
    from selfpose.methods.variants import resolve

    cfg = resolve(cfg)
    return NSDMethod(TemporalConfig(model=cfg.model, loss=cfg.loss, sampler=cfg.sampler), two_stage=two_stage)


METHODS: dict[str, Callable] = {
    "temporal": _temporal,              # DSL-STN-Dec-Split, the full method
    "dsl": _temporal,                   # ablations and baselines of Honari et al. (methods/variants.py)
    "dsl_stn": _temporal,
    "dsl_stn_dec": _temporal,
    "ae_stn_dec": _temporal,
    "css_stn_dec_split": _temporal,
    "css": _temporal,
    "mv_css": _temporal,                # time-contrastive networks across synchronised views
    "drnet": _drnet,                    # pose/content split + scene discriminator (methods/drnet.py)
    "nsd": _nsd,                        # cross-view re-synthesis through a rotated 3D code (methods/nsd.py)
}


def build(name: str, cfg, two_stage: bool = False):
    """The method ``name`` for pretraining config ``cfg``."""
    if name not in METHODS:
        from selfpose.config import ConfigError

        raise ConfigError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name](cfg, two_stage)
