"""The one exception type for problems a user can cause and fix.

Every error that bad input, a bad config, a full disk or an occupied output
folder can cause derives from :class:`SelfposeError`. Its message is one
line that says what happened and what to do. The command line catches the
base class (never a list of names), prints the message and exits with
status 2; any other exception is a bug and keeps its traceback.

Each area keeps its own subclass next to the code that raises it
(``DatasetError`` in ``data/store.py``, ``TrainingError`` in
``training/toolkit.py``...) so a caller can catch one area; the area classes
also keep the builtin base they had (``ValueError``, ``RuntimeError``) so
``except ValueError`` written against earlier versions still works.

The few that several areas share live here.
"""

from __future__ import annotations

import errno
from pathlib import Path


class SelfposeError(Exception):
    """A problem the user can fix; ``str(e)`` is one line saying what happened and what to do."""


class OutputError(SelfposeError):
    """An output folder cannot be written: it holds something selfpose did not make, or another process writes it."""


class DiskFullError(SelfposeError):
    """The disk filled up while writing; nothing half-written was kept."""

    errno = errno.ENOSPC


class InputFileError(SelfposeError, ValueError):
    """An input file is truncated, corrupt or not of the expected format."""


def disk_full(e: BaseException, folder: str | Path, needed_bytes: int | None = None) -> DiskFullError | None:
    """A :class:`DiskFullError` naming ``folder`` when ``e`` is an ``ENOSPC``/``EDQUOT`` error, else None.

    Use as ``raise disk_full(e, out) or e`` inside an ``except OSError as e``.
    """
    if not isinstance(e, OSError) or e.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    need = f" (about {needed_bytes / 2**20:.0f} MiB needed)" if needed_bytes else ""
    return DiskFullError(f"disk full while writing {folder}{need}; nothing half-written was kept — "
                         "free some space (or choose a folder on another disk) and run the command again")


def is_user_error(e: BaseException) -> bool:
    """Whether ``e`` is a user error (the CLI prints it as one line)."""
    return isinstance(e, SelfposeError)
