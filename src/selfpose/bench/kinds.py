"""One ``selfpose benchmark`` command for every benchmark: the config file's ``kind`` key selects the schema.

* no ``kind`` key, or ``kind: lab`` — the image benchmark of self-supervised
  methods (:class:`~selfpose.bench.config.BenchmarkConfig`,
  :mod:`selfpose.bench.run`; ``configs/benchmark_*.yaml``);
* ``kind: lifting`` — the 2D→3D lifting benchmark
  (:class:`~selfpose.bench.lifting_config.LiftingBenchmarkConfig`,
  :mod:`selfpose.bench.lifting`; ``configs/lifting_*.yaml``).

A ``kind=...`` override on the command line wins over the file's key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from selfpose.config import ConfigError, parse_overrides, read_mapping

KINDS = ("lab", "lifting")


def benchmark_kind(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> str:
    """The ``kind`` a benchmark config asks for: the overrides', else the file's, else ``lab``."""
    kind = parse_overrides([o for o in overrides if o.split("=", 1)[0].strip() == "kind"]).get("kind")
    if kind is None and path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"config file {path} not found")
        kind = read_mapping(path).get("kind")
    kind = "lab" if kind is None else kind
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)} (no kind: lab), got {kind!r}")
    return kind


def load_benchmark_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()):
    """The config of the benchmark ``path`` describes (strict keys of its kind's schema)."""
    from selfpose.config import load

    if benchmark_kind(path, overrides) == "lifting":
        from selfpose.bench.lifting_config import LiftingBenchmarkConfig as cls
    else:
        from selfpose.bench.config import BenchmarkConfig as cls
    return load(cls, path, list(overrides))


def run_any_benchmark(cfg, work: str | Path, progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Run the benchmark of ``cfg``'s kind in ``work``; both return ``cells`` and ``computed``."""
    if getattr(cfg, "kind", "lab") == "lifting":
        from selfpose.bench.lifting import run_lifting_benchmark as run
    else:
        from selfpose.bench.run import run_benchmark as run
    return run(cfg, work, progress=progress, log=log)
