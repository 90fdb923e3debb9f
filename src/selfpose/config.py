"""Typed configuration: one dataclass per stage, strict loading.

A config is a (possibly nested) dataclass. :func:`from_dict` builds one from a
mapping and raises :class:`ConfigError` on any key the dataclass does not
declare, naming the closest valid key, so a typo never silently falls back
to a default. :func:`load` reads YAML and applies ``key=value`` overrides
(dotted keys reach nested sections).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from selfpose.errors import SelfposeError

T = TypeVar("T")


class ConfigError(SelfposeError, ValueError):
    """A configuration key or value is invalid."""


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    if dataclasses.is_dataclass(typ) and isinstance(typ, type):
        if isinstance(value, typ):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a section (mapping), got {value!r}")
        return from_dict(typ, value, _prefix=where + ".")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(typ)
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is typing.Literal:
        if value not in typing.get_args(typ):
            raise ConfigError(f"{where} must be one of {typing.get_args(typ)}, got {value!r}")
        return value
    if typ is Any or origin is dict:
        return value
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if typ in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        try:
            v = typ(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be {typ.__name__}, got {value!r}") from None
        if typ is int and isinstance(value, float) and v != value:
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        # No setting means anything with NaN or infinity (a NaN learning rate passed `lr <= 0`);
        # "no limit" is spelled null where a field allows it.
        if typ is float and not math.isfinite(v):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return v
    if typ is str:
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, _prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys are errors."""
    data = dict(data or {})
    types_ = _field_types(cls)
    for key in data:
        if key not in types_:
            close = difflib.get_close_matches(key, list(types_), n=1)
            hint = f" (did you mean {_prefix}{close[0]}?)" if close else ""
            raise ConfigError(f"unknown config key '{_prefix}{key}' for {cls.__name__}{hint}; "
                              f"valid keys: {', '.join(types_)}")
    kwargs = {k: _coerce(v, types_[k], _prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{cls.__name__}: {e}") from e


#: Field metadata key of :func:`added_field`.
HASH_NEUTRAL = "hash_neutral"


def added_field(default: Any) -> Any:
    """A config field added after runs were saved, whose ``default`` behaves as before it existed.

    At that value the field stays out of
    :func:`selfpose.training.config.config_hash`, so a checkpoint saved before
    the field existed still resumes with the same hash (no changed-config
    warning); any other value counts. Only for immutable defaults.
    """
    return dataclasses.field(default=default, metadata={HASH_NEUTRAL: True})


def neutral_keys(cfg: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of the :func:`added_field` fields of a (nested) config that still hold their neutral default."""
    out: list[tuple[str, ...]] = []
    if not dataclasses.is_dataclass(cfg):
        return out
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.metadata.get(HASH_NEUTRAL) and to_dict(value) == to_dict(f.default):
            out.append((*prefix, f.name))
        elif dataclasses.is_dataclass(value):
            out += neutral_keys(value, (*prefix, f.name))
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data form of a config (tuples become lists), for YAML/JSON."""
    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return v
    return conv(cfg)


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["a.b=1", "c=x,y"]`` → ``{"a": {"b": 1}, "c": "x,y"}`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def defaults(cls: type[T]) -> dict[str, Any]:
    """Plain-data defaults of config class ``cls`` (every field, nested sections included)."""
    return to_dict(cls())


def _merge_file(cls, base: dict, extra: dict) -> dict:
    """``extra`` (a config file's mapping) over ``base`` (defaults of ``cls``).

    Sections that are config dataclasses merge field by field, so a file that
    sets ``optim.lr`` keeps the section's other defaults (a section default
    may differ from its class's defaults, e.g. ``PretrainConfig.optim``'s
    warm-up). Free-form mapping fields (``dict[str, Any]``) given in a file
    replace the default mapping: the file states the whole of it.
    Unknown keys are passed through for :func:`from_dict` to name.
    """
    types_ = _field_types(cls)
    out = dict(base)
    for k, v in extra.items():
        typ = types_.get(k)
        if (typ is not None and dataclasses.is_dataclass(typ) and isinstance(typ, type)
                and isinstance(v, dict) and isinstance(out.get(k), dict)):
            out[k] = _merge_file(typ, out[k], v)
        else:
            out[k] = v
    return out


def read_mapping(path: str | Path, error: type[SelfposeError] = ConfigError, allow_empty: bool = True) -> dict:
    """The mapping a YAML file holds; ``error`` naming the file when it is unreadable, not YAML or not a mapping."""
    p = Path(path)
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{p} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"cannot read {p}: {' '.join(str(e).split())}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or " ".join(str(e).split())
        raise error(f"{p} is not valid YAML ({what}{where})") from e
    if loaded is None and allow_empty:
        return {}
    if not isinstance(loaded, dict):
        raise error(f"{p} must hold a mapping of config keys, it holds {'nothing' if loaded is None else type(loaded).__name__}")
    return loaded


def load(cls: type[T], path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Defaults of ``cls`` ← YAML file ``path`` ← ``key=value`` overrides.

    Each layer changes only what it names: an override ``a.b=1`` changes that
    one key and leaves every other key of section ``a`` as the layer below
    had it — with or without a file, and also inside free-form mappings
    (e.g. the benchmark's ``data.test``).
    """
    data: dict[str, Any] = {}
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"config file {path} not found")
        data = read_mapping(path)
    data = _merge_file(cls, defaults(cls), data)
    data = _merge(data, parse_overrides(list(overrides)))
    return from_dict(cls, data)
