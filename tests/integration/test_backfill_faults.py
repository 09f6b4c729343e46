"""Archive faults end as the issue says: a line in the output and a row in ``ops.sources``.

A wrong checksum and a truncated zip are retried, then reported and not ingested; a missing day
is recorded and filled from REST; header drift is detected per file and ingested; a file
replaced after publication is re-ingested, its old rows still reachable by time travel.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lake import schemas
from lake.backfill.catalog import Series, day_ms
from lake.exchange.clock import Clock
from lake.storage import Lake
from tests.exchange_helpers import ms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLI = str(Path(sys.executable).with_name("cryptolake"))
SMALL = {"agg_rate": 0.02, "book_rate": 0.02, "liq_per_hour": 2}
FAULTS = ";".join(
    (
        "vision.checksum:market=um,dataset=aggTrades,date=2024-03-11",
        "vision.truncate:market=um,dataset=metrics,date=2024-03-12,keep=0.6",
        "vision.missing:market=um,dataset=aggTrades,date=2024-03-13",
        "vision.header:market=um,dataset=metrics,date=2024-03-10",
        "vision.header:market=spot,dataset=klines,date=2024-03-14",
    )
)
UM_AGG = Series("um", "aggTrades", "BTCUSDT")
UM_METRICS = Series("um", "metrics", "BTCUSDT")
UM_KLINES = Series("um", "klines", "BTCUSDT")
SPOT_KLINES = Series("spot", "klines", "BTCUSDT")


def backfill(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    args = ["--symbols", "BTCUSDT", "--start", "2024-03-10", "--end", "2024-03-14"]
    args += ["--datasets", "klines,aggTrades,metrics", "--exchange", url]
    cmd = [CLI, "--lake", "lk", "backfill", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def line_of(out: str, status: str, key: str) -> str:
    lines = [x for x in out.splitlines() if x.startswith(status) and key in x]
    assert len(lines) == 1, (status, key, out)
    return lines[0]


def test_faulty_files_each_end_with_a_line_and_a_row(exchange_factory: Any, tmp_path: Path) -> None:
    ex = exchange_factory(
        clock=Clock(ms("2024-04-10T12:00:00"), speed=0), symbol_overrides=SMALL, faults=FAULTS
    )
    first = backfill(ex.base_url, tmp_path)
    assert first.returncode == 1, first.stderr  # checksum and truncation failures: exit 1
    out = first.stdout
    lake = Lake(str(tmp_path / "lk"))
    sources = {r["key"]: r for r in lake.read(schemas.SOURCES_TABLE).iter_rows(named=True)}

    bad_sum = UM_AGG.key("daily", date(2024, 3, 11))
    line = line_of(out, "checksum_mismatch", bad_sum)
    assert "≠ CHECKSUM" in line and "after 3 download(s); not ingested" in line
    row = sources[bad_sum]
    assert row["status"] == "checksum_mismatch" and row["rows"] is None and row["batch_id"] is None
    assert row["sha256"] and row["computed_sha256"] and row["sha256"] != row["computed_sha256"]

    cut = UM_METRICS.key("daily", date(2024, 3, 12))
    assert "not a complete zip" in line_of(out, "truncated", cut)
    assert sources[cut]["status"] == "truncated" and sources[cut]["size"] is not None

    gone = UM_AGG.key("daily", date(2024, 3, 13))
    assert "not in the archive although later days are; REST" in line_of(out, "missing", gone)
    assert sources[gone]["status"] == "missing"
    rest_key = UM_AGG.rest_key(date(2024, 3, 13))
    assert sources[rest_key]["status"] == "ingested"
    assert sources[rest_key]["batch_id"].startswith(rest_key + ":")

    for series, day, has in ((UM_METRICS, 10, "no header row"), (SPOT_KLINES, 14, "a header row")):
        key = series.key("daily", date(2024, 3, day))
        assert f"header drift: {has}" in line_of(out, "header_drift", key)
        assert sources[key]["status"] == "header_drift" and sources[key]["rows"] > 0

    # nothing of the failed files landed; the missing day came from REST, complete
    agg = lake.read(schemas.AGG_TRADES, where=pl.col("market") == "um")
    per_day = agg.group_by(pl.col("transact_time").dt.date().alias("d")).len()
    counts = dict(per_day.iter_rows())
    assert date(2024, 3, 11) not in counts
    spec = ex.market.spec("um", "BTCUSDT")
    lo = day_ms(date(2024, 3, 13))
    assert counts[date(2024, 3, 13)] == len(ex.market.aggs_between(spec, lo, lo + 86_399_999))
    assert set(agg.filter(pl.col("transact_time").dt.date() == date(2024, 3, 13))["source"]) == {
        "rest"
    }
    metrics = lake.read(schemas.METRICS)
    assert date(2024, 3, 12) not in set(metrics["create_time"].dt.date())
    assert metrics.filter(pl.col("create_time").dt.date() == date(2024, 3, 10)).height == 288

    # The archive replaces a file; the next run re-ingests it and retries the failed ones.
    replaced = UM_KLINES.key("daily", date(2024, 3, 10))
    old_batch = sources[replaced]["batch_id"]
    before = lake.open(schemas.KLINES).version()
    ex.add_faults("vision.replace:market=um,dataset=klines,date=2024-03-10")
    ex.clock.advance(60_000)
    second = backfill(ex.base_url, tmp_path)
    assert second.returncode == 1
    line = line_of(second.stdout, "replaced", replaced)
    assert "LastModified 2024-03-11T" in line and "→ 2024-04-10T12:00:00Z" in line
    assert "rows replaced" in line
    line_of(second.stdout, "checksum_mismatch", bad_sum)  # still wrong: reported again
    row = lake.read(schemas.SOURCES_TABLE, where=pl.col("key") == replaced).row(0, named=True)
    assert row["status"] == "replaced" and row["batch_id"] != old_batch
    assert row["sha256"] == row["computed_sha256"]

    def day_rows(version: int | None) -> pl.DataFrame:
        where = (pl.col("market") == "um") & (pl.col("kind") == "trade")
        rows = lake.read(schemas.KLINES, version=version, where=where)
        return rows.filter(pl.col("open_time").dt.date() == date(2024, 3, 10))

    now, then = day_rows(None), day_rows(before)
    assert now.height == then.height == 1440
    assert set(now["batch_id"]) == {row["batch_id"]} and set(then["batch_id"]) == {old_batch}
    facts = [c for c in schemas.KLINES.column_names if c not in ("batch_id",)]
    assert now.select(facts).sort("open_time").equals(then.select(facts).sort("open_time"))
    history = lake.history(schemas.KLINES, limit=3)
    assert any(h["lineage"].get("operation") == "replace" for h in history)

    # The archive serves both files whole again: the third run ingests them, nothing else.
    ex.faults.remove("vision.checksum")
    ex.faults.remove("vision.truncate")
    third = backfill(ex.base_url, tmp_path)
    assert third.returncode == 0, third.stdout
    assert "replaced" not in third.stdout and "header_drift" not in third.stdout
    for key in (bad_sum, cut):  # the truncated file's CHECKSUM was right all along
        row = lake.read(schemas.SOURCES_TABLE, where=pl.col("key") == key).row(0, named=True)
        assert row["status"] == "ingested" and row["rows"] > 0
        assert row["sha256"] == row["computed_sha256"]
    metrics = lake.read(schemas.METRICS, where=pl.col("create_time").dt.date() == date(2024, 3, 12))
    assert metrics.height == 288
