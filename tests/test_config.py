from dataclasses import dataclass, field

import pytest

from selfpose.config import ConfigError, from_dict, load, parse_overrides, to_dict


@dataclass
class Inner:
    steps: int = 10
    names: tuple[str, ...] = ("a",)


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    lr: float = 1e-3
    tag: str | None = None
    flag: bool = False


def test_defaults_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("lr: 0.5\ninner:\n  steps: 3\n")
    cfg = load(Outer, f, ["inner.names=S1,S5", "flag=true"])
    assert cfg.lr == 0.5 and cfg.inner.steps == 3
    assert cfg.inner.names == ("S1", "S5") and cfg.flag is True and cfg.tag is None


def test_unknown_key_names_the_closest():
    with pytest.raises(ConfigError, match=r"inner.step.*did you mean inner.steps"):
        from_dict(Outer, {"inner": {"step": 3}})


def test_bad_types_are_errors():
    with pytest.raises(ConfigError, match="lr must be float"):
        from_dict(Outer, {"lr": "fast"})
    with pytest.raises(ConfigError, match="integer"):
        from_dict(Outer, {"inner": {"steps": 2.5}})
    with pytest.raises(ConfigError, match="true or false"):
        from_dict(Outer, {"flag": "maybe"})


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(Outer, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr"])


def test_round_trip():
    cfg = from_dict(Outer, {"inner": {"names": ["x", "y"]}, "tag": "t"})
    assert from_dict(Outer, to_dict(cfg)) == cfg
