"""Two writers at once on every table and every write path: nothing fails, nothing is lost,
no key is stored twice.

Writers are threads: deltalake releases the GIL while it plans and commits, so the two really
race for versions (the retries each case prints show it), at a fraction of the cost of two
processes (tests/integration/test_storage_concurrency.py races processes on one table).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from lake.schemas import ALL_TABLES, KLINES, TableSpec
from lake.storage import Lake, Scope
from lake.storage.writes import with_partitions
from tests.factories import rows_for

WRITES = 3  # per writer
ROWS = 40  # per write
DAY = date(2024, 1, 1)
SHARED = DAY + timedelta(days=9)  # the day both writers replace in every write

CASES = [
    pytest.param(spec, path, id=f"{spec.key}-{path}")
    for spec in ALL_TABLES
    for path in ("merge", "insert", "replace", "replace_where")
    if path in ("merge", "insert") or spec.partition_by  # unpartitioned: no range to replace
]


def race(writer: Callable[[int], int]) -> int:
    """Run ``writer(0)`` and ``writer(1)`` at once; returns the retries they needed."""
    barrier = threading.Barrier(2)

    def start(w: int) -> int:
        barrier.wait()
        return writer(w)

    with ThreadPoolExecutor(2) as pool:
        return sum(pool.map(start, (0, 1)))  # re-raises a writer's exception


def own_ids(w: int, k: int) -> range:
    """Ids that only writer ``w``'s ``k``-th replace writes (distinct keys on any table)."""
    lo = 10_000 * (w + 1) + 1_000 * k
    return range(lo, lo + ROWS)


def shared_ids(k: int) -> range:
    return range(1_000 * k, 1_000 * k + ROWS)


def replace_frame(spec: TableSpec, w: int, k: int) -> pl.DataFrame:
    own_day = DAY + timedelta(days=w)
    return pl.concat(
        [
            rows_for(spec, own_ids(w, k), day=own_day, tag=f"w{w}"),
            rows_for(spec, shared_ids(k), day=SHARED, tag=f"w{w}"),
        ]
    )


def keys(spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(spec.merge_keys).sort(spec.merge_keys)


def batches_of(spec: TableSpec, stored: pl.DataFrame, wanted: pl.DataFrame) -> list[str]:
    """The batch ids of the stored rows whose keys are ``wanted``'s."""
    found = stored.join(keys(spec, wanted), on=list(spec.merge_keys), how="semi")
    return sorted(found.get_column("batch_id").to_list())


@pytest.mark.parametrize(("spec", "path"), CASES)
def test_two_writers_at_once_lose_nothing_and_store_each_key_once(
    lake_root: Path, spec: TableSpec, path: str
) -> None:
    lake = Lake(str(lake_root))
    lake.create_all([spec])

    def writer(w: int) -> int:
        retries = 0
        for k in range(WRITES):
            if path == "replace":
                frame = replace_frame(spec, w, k)
                result = lake.replace(spec, frame, source="rest", batch_id=f"w{w}-{k}")
            elif path == "replace_where":  # the backfill's replace of one file's scope
                frame = replace_frame(spec, w, k)
                staged = with_partitions(spec, frame)
                scope = Scope.of({c: staged[c].unique() for c in spec.partition_by})
                result = lake.replace_where(
                    spec, frame, scope=scope, source="rest", batch_id=f"w{w}-{k}"
                )
            else:
                lo = k * ROWS + w * ROWS // 2  # every write overlaps the other writer's by half
                frame = rows_for(spec, range(lo, lo + ROWS), tag=f"w{w}")
                update = "never" if path == "insert" else "changed"
                result = lake.merge(spec, frame, source="rest", batch_id=f"w{w}-{k}", update=update)
            retries += result.attempts - 1
        return retries

    retries = race(writer)

    stored = lake.read(spec)
    assert stored.select(spec.merge_keys).is_duplicated().sum() == 0
    last = WRITES - 1
    if path.startswith("replace"):
        # each writer's own day holds its last write, the shared day the last commit's rows
        assert stored.height == 3 * ROWS
        for w in (0, 1):
            own = rows_for(spec, own_ids(w, last), day=DAY + timedelta(days=w))
            assert batches_of(spec, stored, own) == [f"w{w}-{last}"] * ROWS
        shared = batches_of(spec, stored, rows_for(spec, shared_ids(last), day=SHARED))
        assert shared in ([f"w{w}-{last}"] * ROWS for w in (0, 1))
    else:
        expected = rows_for(spec, range(0, WRITES * ROWS + ROWS // 2))
        assert keys(spec, stored).equals(keys(spec, expected))
    print(f"{spec.key} {path}: {retries} commit conflicts retried")


def test_two_klines_merges_at_once_retry_instead_of_failing_on_the_interval_column(
    lake_root: Path,
) -> None:
    """The bug this file was written for: a merge into bronze.klines that lost the race died
    with ``sql parser error: Expected: an expression, found: =`` while checking the winner's
    commit, because delta-rs wrote ``interval = '1m'`` (a keyword) into the commit predicate."""
    lake = Lake(str(lake_root))
    lake.create_all([KLINES])
    conflicts = 0
    for attempt in range(5):  # until the two merges really raced at least once

        def writer(w: int, attempt: int = attempt) -> int:
            lo = attempt * 100 + w * 10
            frame = rows_for(KLINES, range(lo, lo + 20), tag=f"w{w}")
            return lake.merge(KLINES, frame, source="rest").attempts - 1

        conflicts += race(writer)
        if conflicts:
            break
    assert conflicts
    assert lake.read(KLINES).select(KLINES.merge_keys).is_duplicated().sum() == 0
