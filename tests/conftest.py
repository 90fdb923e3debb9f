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


@pytest.fixture
def stand_in_net():
    """Factory of a small conv net with the supervised baseline's network interface (prepare / encode / feature_dim).

    ``stand_in_net(width)`` gives ``(B, width)`` features and a whole-frame box; the
    supervised baseline trains it instead of the temporal model (fast).
    """
    import torch
    from torch import nn

    class StandIn(nn.Module):
        def __init__(self, width: int = 16):
            super().__init__()
            self.width = width
            self.net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                                     nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, width))

        def prepare(self, frames):
            return frames.float()

        def encode(self, frames):
            B, _, H, W = frames.shape
            return {"v": self.net(frames), "box_px": torch.tensor([[0.0, 0, W, H]]).repeat(B, 1)}

        def feature_dim(self):
            return self.width

    return StandIn
