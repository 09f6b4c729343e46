"""Shared fixtures. Prefect's test harness is started at most once per session, and only when a
test asks for it (it costs ~10 s)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# the built-in exchange's fixtures (`exchange`, `exchange_factory`) for every test module
pytest_plugins = ["lake.exchange.testing"]

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One ephemeral Prefect API (SQLite in a temp dir) for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    """A fresh, empty storage root."""
    return tmp_path / "lake"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real Binance recordings beside the checkout; tests skip when they are absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real recordings not found at {REALDATA}")
    return REALDATA
