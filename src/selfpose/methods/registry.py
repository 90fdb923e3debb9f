"""The registry of self-supervised methods: one line per method.

A method is registered with :func:`register_method` — its name, a builder
``builder(cfg, two_stage, section) -> Method``, and optionally its own config
class (a dataclass read strictly from the pretraining config's
``method_config.<section>``) and the sampler(s) it trains on (names of
:func:`selfpose.data.samplers.make_sampler`). Adding a method is its module
plus one ``register_method`` line (here for a built-in one; anywhere before
the config is read for a plug-in, see ``docs/adding_a_method.md``).

Plug-ins for the command line: modules named in the environment variable
``SELFPOSE_PLUGINS`` (comma-separated, importable from ``sys.path``) are
imported the first time the registry is consulted; each registers its
method(s) when imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from selfpose.config import ConfigError


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Attributes:
        name: ``method=<name>``.
        builder: ``builder(cfg, two_stage, section) -> Method`` where ``cfg`` is
            the resolved :class:`~selfpose.pretrain.PretrainConfig` and
            ``section`` the method's own config (an instance of
            ``config_cls``, or None without one).
        config_cls: the dataclass of the method's section (None: none).
        section: its key under ``method_config`` (default: ``name``).
        samplers: sampler names the method trains on; the first is given to
            the built method as ``sampler_name`` (the default of
            :meth:`~selfpose.methods.base.Method.sampler_kind`).
        builtin: shipped with selfpose (the benchmark's default list).
    """

    name: str
    builder: Callable
    config_cls: type | None = None
    section: str | None = None
    samplers: tuple[str, ...] = ()
    builtin: bool = False


_REGISTRY: dict[str, MethodSpec] = {}
_PLUGINS_LOADED: set[str] = set()


def _load_plugins() -> None:
    """Import the modules named in ``SELFPOSE_PLUGINS`` (once each); a broken one is a one-line error."""
    import importlib
    import os

    from selfpose.methods.base import MethodError

    for mod in (m.strip() for m in os.environ.get("SELFPOSE_PLUGINS", "").split(",")):
        if not mod or mod in _PLUGINS_LOADED:
            continue
        try:
            # A plug-in that consults the registry while importing gets sys.modules' (partial) copy: no loop.
            importlib.import_module(mod)
        except ImportError as e:
            raise MethodError(f"SELFPOSE_PLUGINS names {mod!r}, which cannot be imported ({e}); "
                              "fix the name or its folder on PYTHONPATH") from None
        _PLUGINS_LOADED.add(mod)


def register_method(name: str, builder: Callable, *, config_cls: type | None = None, section: str | None = None,
                    sampler: str | tuple[str, ...] | list[str] | None = None, replace: bool = False,
                    _builtin: bool = False) -> MethodSpec:
    """Register a self-supervised method so that pretrain, fit-pose, evaluate, predict and the benchmark know it.

    Args:
        name: the method's name (``method=<name>``, the benchmark's ``methods`` list).
        builder: ``builder(cfg, two_stage, section) -> Method`` (see :class:`MethodSpec`).
        config_cls: a dataclass: the method's own section, read strictly
            (unknown keys are errors) from ``method_config.<section>`` of the
            pretraining config; its defaults fill what the file leaves out.
        section: the section's key (default: ``name``); several methods may share one.
        sampler: the sampler name(s) the method trains on (checked against the
            sampler registry now).
        replace: allow replacing a registered name (else an error: two methods
            must not silently share a name).

    Returns:
        The :class:`MethodSpec`.
    """
    import dataclasses

    from selfpose.data.samplers import SAMPLERS
    from selfpose.methods.base import MethodError

    if not isinstance(name, str) or not name.isidentifier():
        raise MethodError(f"a method name must be an identifier (letters, digits, _), got {name!r}")
    if name in _REGISTRY and not replace:
        raise MethodError(f"method {name!r} is already registered; pick another name or pass replace=True")
    if not callable(builder):
        raise MethodError(f"the builder of method {name!r} must be callable, got {type(builder).__name__}")
    if config_cls is not None and not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        raise MethodError(f"config_cls of method {name!r} must be a dataclass, got {config_cls!r}")
    samplers = (sampler,) if isinstance(sampler, str) else tuple(sampler or ())
    unknown = [s for s in samplers if s not in SAMPLERS]
    if unknown:
        raise MethodError(f"method {name!r} names unknown sampler(s) {unknown}; known: {', '.join(SAMPLERS)} "
                          "(add one with selfpose.data.samplers.register_sampler)")
    section = section or (name if config_cls is not None else None)
    for other in _REGISTRY.values():
        if other.name != name and section is not None and other.section == section \
                and other.config_cls is not config_cls:
            raise MethodError(f"section {section!r} of method {name!r} is taken by method {other.name!r} "
                              "with another config class")
    spec = MethodSpec(name, builder, config_cls, section, samplers, _builtin)
    _REGISTRY[name] = spec
    return spec


def unregister_method(name: str) -> None:
    """Remove a registered method (tests that register their own)."""
    _REGISTRY.pop(name, None)


def method_spec(name: str) -> MethodSpec:
    """The registered method ``name`` (a ConfigError naming the known ones otherwise)."""
    check_method(name)
    return _REGISTRY[name]


def method_names(builtin_only: bool = False) -> tuple[str, ...]:
    """Registered method names in registration order (``builtin_only``: the ones shipped with selfpose)."""
    _load_plugins()
    return tuple(n for n, s in _REGISTRY.items() if s.builtin or not builtin_only)


def check_method(name: str) -> None:
    """A ConfigError naming the known methods unless ``name`` is one."""
    _load_plugins()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(sorted(_REGISTRY))}")


def section_config(spec: MethodSpec, sections: dict[str, Any]):
    """The method's own section (an instance of ``spec.config_cls``) from ``method_config``, or None."""
    from selfpose.config import from_dict

    if spec.config_cls is None:
        return None
    return from_dict(spec.config_cls, sections.get(spec.section) or {}, _prefix=f"method_config.{spec.section}.")


def check_sections(sections: dict[str, Any]) -> dict[str, Any]:
    """``method_config`` validated: every key a registered section, every section read strictly by its class.

    Returns the sections in plain-data form with their defaults filled in.
    """
    from selfpose.config import from_dict, to_dict

    _load_plugins()
    if not isinstance(sections, dict):
        raise ConfigError(f"method_config must be a mapping of method sections, got {sections!r}")
    owners = {s.section: s for s in _REGISTRY.values() if s.section is not None}
    out = {}
    for key, value in sections.items():
        if key not in owners:
            raise ConfigError(f"unknown section 'method_config.{key}'; registered method sections: "
                              f"{', '.join(sorted(owners)) or 'none'}")
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"method_config.{key} must be a section (mapping), got {value!r}")
        out[key] = to_dict(from_dict(owners[key].config_cls, value or {}, _prefix=f"method_config.{key}."))
    return out


def neutral_section_keys(sections: dict[str, Any]) -> list[tuple[str, ...]]:
    """Key paths (under ``method_config``) of the sections' :func:`~selfpose.config.added_field` fields that
    hold their neutral default: ``method_config`` is plain data, so :func:`~selfpose.config.neutral_keys`
    cannot see its sections' classes; this reads them from the registry."""
    from selfpose.config import from_dict, neutral_keys

    _load_plugins()
    owners = {s.section: s for s in _REGISTRY.values() if s.section is not None}
    out: list[tuple[str, ...]] = []
    for key, value in (sections or {}).items():
        if key in owners and owners[key].config_cls is not None and isinstance(value or {}, dict):
            out += neutral_keys(from_dict(owners[key].config_cls, value or {}), ("method_config", key))
    return out


def build(name: str, cfg, two_stage: bool = False):
    """The method ``name`` for pretraining config ``cfg`` (its variant's switches set, its section read)."""
    spec = method_spec(name)
    method = spec.builder(cfg, two_stage, section_config(spec, getattr(cfg, "method_config", {}) or {}))
    from selfpose.methods.base import Method, MethodError

    if not isinstance(method, Method):
        raise MethodError(f"the builder of method {name!r} returned a {type(method).__name__}, not a selfpose Method")
    method.name = name
    if spec.samplers and method.sampler_name is None:
        method.sampler_name = spec.samplers[0]
    return method


def _temporal_family(module: str, cls: str) -> Callable:
    """Builder of a method on the temporal model: its variant's switches set, then ``module.cls``."""
    def build_(cfg, two_stage: bool, section):
        import importlib

        from selfpose.methods.temporal import TemporalConfig
        from selfpose.methods.variants import resolve

        cfg = resolve(cfg)
        method_cls = getattr(importlib.import_module(module), cls)
        extra = (section,) if section is not None else ()
        return method_cls(TemporalConfig(model=cfg.model, loss=cfg.loss, sampler=cfg.sampler), *extra,
                          two_stage=two_stage)

    return build_


def _builtin() -> None:
    from selfpose.methods.drnet import DrNetConfig

    t = _temporal_family("selfpose.methods.temporal", "TemporalMethod")
    reg = lambda name, b, **kw: register_method(name, b, _builtin=True, **kw)  # noqa: E731
    reg("temporal", t, sampler=("dsl", "gravity"))            # DSL-STN-Dec-Split, the full method
    # ablations and baselines of Honari et al. (methods/variants.py)
    reg("dsl", t, sampler="dsl")
    reg("dsl_stn", t, sampler=("dsl", "gravity"))
    reg("dsl_stn_dec", t, sampler=("dsl", "gravity"))
    reg("ae_stn_dec", t, sampler=("dsl", "gravity"))
    reg("css_stn_dec_split", t, sampler=("contrastive", "gravity"))
    reg("css", t, sampler="contrastive")
    reg("mv_css", t, sampler="tcn")                           # time-contrastive networks across synchronised views
    # pose/content split + scene discriminator (methods/drnet.py), its own section method_config.drnet
    reg("drnet", _temporal_family("selfpose.methods.drnet", "DrNetMethod"), config_cls=DrNetConfig,
        sampler=("dsl", "gravity"))
    # cross-view re-synthesis through a rotated 3D code (methods/nsd.py)
    reg("nsd", _temporal_family("selfpose.methods.nsd", "NSDMethod"), sampler="views")
    # multi-view synchronisation and flip classification (methods/sync.py, Jenni & Favaro), method_config.sync
    from selfpose.methods.sync import SyncConfig, build_sync

    reg("sync", build_sync, config_cls=SyncConfig, sampler="sync")


def __getattr__(attr: str):
    if attr == "METHODS":   # {name: builder}, a snapshot kept for existing callers
        return {n: s.builder for n, s in _REGISTRY.items()}
    raise AttributeError(attr)


_builtin()
