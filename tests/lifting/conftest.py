"""Fixtures shared by the lifting tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread for the test (restored after): tiny networks on a shared 2-core machine run far faster
    on one thread than on two (measured for the pose machine's LSTMs: about 25×)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
