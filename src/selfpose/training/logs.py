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
"""

from __future__ import annotations

import csv
import logging
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

logger = logging.getLogger(__name__)

METRICS = "metrics.csv"
TB = "tb"
PICTURES = "pictures"
ENVIRONMENT = "environment.yaml"
LOG = "log.txt"
#: Columns that always come first in metrics.csv.
FIRST_COLUMNS = ("step", "time", "lr")


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
            with open(self.csv_path, newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or FIRST_COLUMNS)
                self.rows = [r for r in reader if r["step"] and int(r["step"]) <= resume_step]
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


def read_metrics(out_dir: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a run's ``metrics.csv`` as floats (empty cells dropped)."""
    p = Path(out_dir) / METRICS
    if not p.is_file():
        return []
    with open(p, newline="") as f:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]


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
