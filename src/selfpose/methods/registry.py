"""A small registry of self-supervised methods: one entry per method.

A method is built from the pretraining config by ``build(cfg, two_stage)``.
Later methods (baselines, ablations, the other papers' methods) add one
line here.
"""

from __future__ import annotations

from typing import Callable


def _temporal_family(module: str, cls: str, with_section: str | None = None) -> Callable:
    """Builder of a method on the temporal model: its variant's switches set, then ``module.cls``.

    ``with_section``: a ``PretrainConfig`` section the method takes as well (DrNet's ``drnet``).
    """
    def build_(cfg, two_stage: bool):
        import importlib

        from selfpose.methods.temporal import TemporalConfig
        from selfpose.methods.variants import resolve

        cfg = resolve(cfg)
        method_cls = getattr(importlib.import_module(module), cls)
        extra = (getattr(cfg, with_section),) if with_section else ()
        method = method_cls(TemporalConfig(model=cfg.model, loss=cfg.loss, sampler=cfg.sampler), *extra,
                            two_stage=two_stage)
        method.name = cfg.method
        return method

    return build_


_temporal = _temporal_family("selfpose.methods.temporal", "TemporalMethod")

METHODS: dict[str, Callable] = {
    "temporal": _temporal,              # DSL-STN-Dec-Split, the full method
    "dsl": _temporal,                   # ablations and baselines of Honari et al. (methods/variants.py)
    "dsl_stn": _temporal,
    "dsl_stn_dec": _temporal,
    "ae_stn_dec": _temporal,
    "css_stn_dec_split": _temporal,
    "css": _temporal,
    "mv_css": _temporal,                # time-contrastive networks across synchronised views
    "drnet": _temporal_family("selfpose.methods.drnet", "DrNetMethod", "drnet"),                    # pose/content split + scene discriminator (methods/drnet.py)
    "nsd": _temporal_family("selfpose.methods.nsd", "NSDMethod"),                        # cross-view re-synthesis through a rotated 3D code (methods/nsd.py)
}


def check_method(name: str) -> None:
    """A ConfigError naming the known methods unless ``name`` is one."""
    if name not in METHODS:
        from selfpose.config import ConfigError

        raise ConfigError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")


def build(name: str, cfg, two_stage: bool = False):
    """The method ``name`` for pretraining config ``cfg``."""
    check_method(name)
    return METHODS[name](cfg, two_stage)
