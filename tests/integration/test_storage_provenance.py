"""``ops.sources`` never downgrades a file another writer ingested."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from lake.backfill.catalog import Series
from lake.backfill.provenance import KEEP_HELD, Outcome, Status, sources_frame
from lake.backfill.write import Ledger
from lake.schemas import SOURCES_TABLE
from lake.storage import Lake
from tests.integration.test_storage_writers import race

KLINES_1M = Series("um", "klines", "BTCUSDT")
DAY = date(2024, 1, 1)


def outcome(key: str, status: Status) -> Outcome:
    return Outcome(key, KLINES_1M, "vision", "daily", DAY, status, rows=1440)


def record(lake: Lake, *outcomes: Outcome) -> None:
    frame = sources_frame(outcomes, datetime.now(UTC))
    lake.merge(SOURCES_TABLE, frame, source="backfill", keep=KEEP_HELD)


def statuses(lake: Lake) -> dict[str, str]:
    rows = lake.read(SOURCES_TABLE).select("key", "status").rows()
    return dict(rows)  # type: ignore[arg-type]


@pytest.fixture
def lake(lake_root: Path) -> Lake:
    lake = Lake(str(lake_root))
    lake.create_all([SOURCES_TABLE])
    return lake


@pytest.mark.parametrize("late", ["error", "missing", "partial", "truncated", "checksum_mismatch"])
def test_an_ingested_file_stays_ingested_when_a_later_writer_failed_on_it(
    lake: Lake, late: Status
) -> None:
    record(lake, outcome("a.zip", "ingested"), outcome("b.zip", "error"))
    record(lake, outcome("a.zip", late), outcome("b.zip", late))
    assert statuses(lake) == {"a.zip": "ingested", "b.zip": late}


def test_a_held_file_is_still_updated_by_another_held_state(lake: Lake) -> None:
    record(lake, outcome("a.zip", "error"))
    record(lake, outcome("a.zip", "ingested"))
    assert statuses(lake) == {"a.zip": "ingested"}
    record(lake, outcome("a.zip", "replaced"))
    assert statuses(lake) == {"a.zip": "replaced"}
    record(lake, outcome("a.zip", "error"))
    assert statuses(lake) == {"a.zip": "replaced"}


def test_two_writers_racing_on_the_same_files_leave_them_ingested(lake: Lake) -> None:
    """Two runs record the same files at once, one ``ingested``, the other ``error``: whichever
    commits last, every file ends ``ingested``."""
    keys = [f"f{i}.zip" for i in range(20)]

    def writer(w: int) -> int:
        status: Status = "ingested" if w == 0 else "error"
        for k in range(0, len(keys), 5):
            record(lake, *(outcome(key, status) for key in keys[k : k + 5]))
        return 0

    for _ in range(3):
        race(writer)
        assert statuses(lake) == dict.fromkeys(keys, "ingested")


def test_the_backfill_ledger_records_with_the_rule(lake: Lake) -> None:
    Ledger(lake).record([outcome("a.zip", "ingested")])
    Ledger(Lake(lake.root)).record([outcome("a.zip", "error"), outcome("b.zip", "missing")])
    assert statuses(lake) == {"a.zip": "ingested", "b.zip": "missing"}
