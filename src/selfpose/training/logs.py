"""What a run writes besides checkpoints: scalars (CSV + TensorBoard), pictures, environment.

Run folder::

    metrics.csv          step, time (s of training), lr, then every logged scalar
    tb/                  TensorBoard events (``tensorboard --logdir <run>/tb``)
    pictures/            step_000250_<name>.png
    config.yaml          the resolved config
    environment.yaml     one entry per launch: versions, CPU, threads, git commit, command line
    log.txt              the training log (rank 0)

On resume the CSV drops rows after the resumed step and TensorBoard purges
those events, so a run interrupted after its last checkpoint does not show
the discarded steps twice.

Every ``metrics.csv`` (a run's, a pose head's) is read by one parser:
:func:`read_metrics` (rows) and :func:`read_metric_columns` (columns, for
plots) are two views of it, and :class:`MetricLogger` uses it on resume.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml

from selfpose.errors import SelfposeError

logger = logging.getLogger(__name__)

METRICS = "metrics.csv"
TB = "tb"
PICTURES = "pictures"
ENVIRONMENT = "environment.yaml"
LOG = "log.txt"
#: Columns that always come first in metrics.csv.
FIRST_COLUMNS = ("step", "time", "lr")


class MetricsError(SelfposeError, ValueError):
    """A metrics.csv that cannot be read (missing where required, not a metrics table)."""


class MetricLogger:
    """Scalars to ``metrics.csv`` + TensorBoard and pictures to PNG + TensorBoard.

    Args:
        out_dir: the run folder.
        enabled: False on ranks other than 0 (every method is then a no-op).
        resume_step: completed steps at start; rows/events after it are dropped.
        tensorboard: also write TensorBoard events.
    """

    def __init__(self, out_dir: str | os.PathLike, enabled: bool = True, resume_step: int = 0,
                 tensorboard: bool = True):
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.columns: list[str] = list(FIRST_COLUMNS)
        self.rows: list[dict[str, Any]] = []
        self.writer = None
        if not enabled:
            return
        self.csv_path = self.out_dir / METRICS
        if self.csv_path.is_file():
            header, raw = _parse_metrics(self.csv_path)
            self.columns = header or list(FIRST_COLUMNS)
            # Rows are kept verbatim (strings); a row whose step is not a number (a torn line) is dropped.
            self.rows = [r for r in raw if _number(r.get("step", "")) <= resume_step]
            self._rewrite()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides events of an earlier launch from steps after the resumed one.
            self.writer = SummaryWriter(str(self.out_dir / TB), purge_step=resume_step + 1)

    def _rewrite(self) -> None:
        tmp = self.csv_path.with_name(METRICS + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns, restval="")
            w.writeheader()
            w.writerows(self.rows)
        tmp.replace(self.csv_path)

    def scalars(self, step: int, values: dict[str, float], elapsed_s: float) -> None:
        """One row: ``step``, ``time`` (training seconds so far), and ``values`` (must include ``lr``)."""
        if not self.enabled:
            return
        row = {"step": step, "time": round(elapsed_s, 3), **{k: _fmt(v) for k, v in values.items()}}
        new = [k for k in row if k not in self.columns]
        self.rows.append(row)
        if new:  # a new scalar (e.g. a loss switched on in stage 2): widen the file
            self.columns += new
            self._rewrite()
        else:
            with open(self.csv_path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns, restval="").writerow(row)
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k if "/" in k else f"train/{k}", float(v), step)

    def pictures(self, step: int, images: dict[str, np.ndarray]) -> list[Path]:
        """Write uint8 (H, W, 3) RGB ``images`` as ``pictures/step_XXXXXX_<name>.png`` (+ TensorBoard)."""
        if not self.enabled:
            return []
        import cv2

        folder = self.out_dir / PICTURES
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, img in images.items():
            img = np.asarray(img)
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f"picture {name!r} must be uint8 (H, W, 3) RGB, got {img.dtype} {img.shape}")
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
            p = folder / f"step_{step:06d}_{safe}.png"
            cv2.imwrite(str(p), np.ascontiguousarray(img[..., ::-1]))
            paths.append(p)
            if self.writer is not None:
                self.writer.add_image(f"pictures/{name}", img, step, dataformats="HWC")
        return paths

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return float(f"{v:.7g}")
    return v


def _metrics_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p / METRICS if p.is_dir() or p.suffix != ".csv" else p


def _number(text: str | None) -> float:
    """A cell as a float; empty, non-numeric or missing → NaN."""
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _parse_metrics(p: Path) -> tuple[list[str], list[dict[str, str]]]:
    """``(header, rows of raw strings)`` of a metrics CSV; the one parser behind every reader here."""
    try:
        with open(p, newline="") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = [{k: v for k, v in r.items() if k is not None} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise MetricsError(f"cannot read metrics file {p}: {e}") from e
    if "step" not in header:
        raise MetricsError(f"{p} is not a metrics CSV: its first line must be a header with a 'step' column")
    return header, rows


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a ``metrics.csv`` as floats (``path``: the run/pose folder or the file itself).

    Empty and non-numeric cells are dropped, and so are rows without a step
    (a line torn by a crash). No file: ``[]``.

    Raises:
        MetricsError: the file exists but is not a readable metrics table.
    """
    p = _metrics_path(path)
    if not p.is_file():
        return []
    out = []
    for r in _parse_metrics(p)[1]:
        row = {k: x for k, x in ((k, _number(v)) for k, v in r.items()) if not math.isnan(x)}
        if "step" in row:
            out.append(row)
    return out


def read_metric_columns(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A ``metrics.csv`` as columns ``{"step": (n,), name: (n,)}`` float64, in the header's order.

    Empty or non-numeric cells become NaN (metrics logged at different rates
    share one file with blanks).

    Raises:
        MetricsError: no such file, or not a metrics table.
    """
    p = _metrics_path(path)
    if not p.is_file():
        raise MetricsError(f"no metrics file at {p}")
    header, rows = _parse_metrics(p)
    data = np.array([[_number(r.get(h)) for h in header] for r in rows], np.float64).reshape(-1, len(header))
    return {h: data[:, k] for k, h in enumerate(header)}


def write_metrics(folder: str | os.PathLike, rows: list[dict[str, Any]]) -> Path:
    """Write finished ``rows`` (each with ``step``, ``time`` s, ``lr`` and scalars) as ``folder/metrics.csv``.

    For loops that log at the end (the pose heads' validation curve), in the
    format :class:`MetricLogger` writes during pretraining.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / METRICS).unlink(missing_ok=True)  # written whole, not appended to
    log = MetricLogger(folder, tensorboard=False)
    log._rewrite()  # the header, even for rows without a scalar beyond step/time/lr
    for r in rows:
        values = {k: v for k, v in r.items() if k not in ("step", "time")}
        log.scalars(int(r["step"]), values, float(r.get("time", 0.0)))
    return log.csv_path


def git_commit(path: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout holding ``path`` (default: this package), or None."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], check=False, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return None
        # --no-optional-locks: never take index.lock (a concurrent `git commit` must not fail).
        status = subprocess.run(["git", "--no-optional-locks", "-C", str(where), "status", "--porcelain",
                                 "--untracked-files=no"],
                                check=False, capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def environment(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions, CPU, threads, git commit and command line (detectron2's ``default_setup`` spirit)."""
    import numpy
    import torch

    import selfpose
    from selfpose.training.precision import bf16_supported, cpu_name

    env = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": [sys.executable, *sys.argv],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "selfpose": selfpose.__version__,
        "torch": str(torch.__version__),
        "numpy": numpy.__version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "bf16_native": bf16_supported(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "torch_threads": torch.get_num_threads(),
        "git": git_commit(),
    }
    env.update(extra or {})
    return env


def append_environment(out_dir: str | os.PathLike, env: dict[str, Any]) -> Path:
    """Append one launch's environment to ``environment.yaml`` (a list, one entry per start/resume)."""
    p = Path(out_dir) / ENVIRONMENT
    entries = []
    if p.is_file():
        loaded = yaml.safe_load(p.read_text())
        entries = loaded if isinstance(loaded, list) else []
    entries.append(env)
    tmp = p.with_name(ENVIRONMENT + ".tmp")
    tmp.write_text(yaml.safe_dump(entries, sort_keys=False))
    tmp.replace(p)
    return p


@contextmanager
def run_log(out_dir: str | os.PathLike, enabled: bool = True, to_stderr: bool = False) -> Iterator[None]:
    """While active, ``selfpose`` log records (INFO and up) also go to ``<run>/log.txt`` (and stderr)."""
    if not enabled:
        yield
        return
    log = logging.getLogger("selfpose")
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.FileHandler(Path(out_dir) / LOG)]
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for h in handlers:
        h.setFormatter(fmt)
        h.setLevel(logging.INFO)
        log.addHandler(h)
    old_level = log.level
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.setLevel(old_level)
        for h in handlers:
            log.removeHandler(h)
            h.close()
