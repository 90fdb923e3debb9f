"""Progress bars for long work (rendering, preparing, training).

A thin wrapper over rich so that every long loop shows the same bar, and
that bars can be silenced (``SELFPOSE_PROGRESS=0`` or ``enabled=False``) in
tests and CI logs.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    return os.environ.get("SELFPOSE_PROGRESS", "1") not in ("0", "false", "no")


@contextmanager
def progress_bar(enabled: bool | None = None):
    """A rich ``Progress`` (or a silent stand-in) as a context manager."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from rich.console import Console

    enabled = progress_enabled() if enabled is None else enabled
    # Bars go to stderr so that stdout stays clean for --json output and pipes.
    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled, transient=False,
                    console=Console(stderr=True))
    with prog:
        yield prog


def track(items: Iterable[T], description: str, total: int | None = None, enabled: bool | None = None) -> Iterator[T]:
    """Iterate ``items`` with a progress bar."""
    with progress_bar(enabled) as prog:
        yield from prog.track(items, total=total, description=description)
