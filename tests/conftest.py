from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared material beside the project (official traces, CLI exports)."""
    if not (SHARED / "traces").is_dir():
        pytest.skip(f"no official traces at {SHARED}")
    return SHARED


@pytest.fixture(autouse=True)
def _torch_threads():
    """Env runners set torch's thread count for their inference; every test gets the session's count back afterwards
    (the model tests compare forwards that differ in the last digits under another thread count)."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch else None
    yield
    if torch is not None:
        torch.set_num_threads(threads)
