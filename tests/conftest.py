from __future__ import annotations

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
