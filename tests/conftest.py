"""Shared test fixtures.

Real data lives in ``../shared/data`` beside the repository (see its README);
tests that need it skip with a reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SELFPOSE_SHARED_DATA", REPO.parent / "shared" / "data"))

# Keep test logs readable: no live progress bars.
os.environ.setdefault("SELFPOSE_PROGRESS", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` or skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not found (set SELFPOSE_SHARED_DATA)")
    return SHARED_DATA


def shared_file(rel: str) -> Path:
    """A file under ``../shared/data`` or skip the calling test."""
    p = SHARED_DATA / rel
    if not p.exists():
        pytest.skip(f"real data file {p} not found")
    return p


@pytest.fixture(name="shared_file")
def shared_file_fixture():
    """The :func:`shared_file` function as a fixture (tests cannot import
    conftest under ``--import-mode=importlib``)."""
    return shared_file
