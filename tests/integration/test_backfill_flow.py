"""The ``backfill`` Prefect flow (a task per file or REST day, a progress artifact), and a run
killed mid-way that a re-run finishes without fetching again what had landed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lake import schemas
from lake.backfill.catalog import day_ms
from lake.exchange.clock import Clock
from lake.storage import Lake
from tests.exchange_helpers import ms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLI = str(Path(sys.executable).with_name("cryptolake"))
SMALL = {"agg_rate": 0.02, "book_rate": 0.02, "liq_per_hour": 2}


def test_flow_runs_a_task_per_item_and_publishes_progress(
    prefect_harness: None,
    exchange_factory: Any,
    tmp_path: Path,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.backfill import backfill

    ex = exchange_factory(clock=Clock(ms("2024-04-10T12:00:00"), speed=0), symbol_overrides=SMALL)
    root = str(tmp_path / "lake")
    kw: dict[str, Any] = {"symbols": ["BTCUSDT"], "start": "2024-04-07", "end": "2024-04-10"}
    kw |= {"markets": ["um"], "datasets": ["klines", "aggTrades", "fundingRate"]}
    summary = backfill(**kw, exchange=ex.base_url, root=root)
    # 04-07..09 from the archive; 04-10 and April's funding (no monthly file yet) from REST
    assert summary["statuses"] == {"ingested": 6 + 3, "partial": 3}
    assert summary["planned"] == 12 and summary["errors"] == []

    async def progress() -> list[Any]:
        async with get_client() as client:
            key = ArtifactFilterKey(any_=["backfill-progress"])
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=key))

    (artifact,) = asyncio.run(progress())
    assert artifact.type == "progress" and float(artifact.data) == 100.0
    lake = Lake(root)
    lineage = lake.history(schemas.AGG_TRADES)[0]["lineage"]
    assert lineage["source"] in ("vision", "rest") and lineage.get("flow_run_id")
    again = backfill(**kw, exchange=ex.base_url, root=root)
    assert again["statuses"] == {"partial": 3} and again["held_days"] == 9


def test_flow_refuses_an_end_past_the_exchanges_today_without_retrying(
    prefect_harness: None, exchange_factory: Any, tmp_path: Path
) -> None:
    from flows.backfill import backfill
    from lake.backfill.request import RequestError

    ex = exchange_factory(clock=Clock(ms("2024-04-10T12:00:00"), speed=0), symbol_overrides=SMALL)
    with pytest.raises(RequestError, match="--end 2024-04-11 is in the future for the exchange"):
        backfill(
            symbols=["BTCUSDT"],
            start="2024-04-09",
            end="2024-04-11",
            exchange=ex.base_url,
            root=str(tmp_path / "lake"),
        )
    # one attempt: one request for the exchange's time, and nothing listed
    assert ex.stats.rest_requests == 1 and ex.stats.vision_requests == 0


def cli(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    return subprocess.Popen(
        [CLI, "--lake", "lk", "backfill", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def recorded(lake: Lake) -> set[str]:
    try:
        rows = lake.read(schemas.SOURCES_TABLE)
    except Exception:  # the table does not exist yet, or is being created
        return set()
    return set(rows.filter(pl.col("status") == "ingested")["key"])


def test_a_killed_run_resumes_without_refetching(exchange_factory: Any, tmp_path: Path) -> None:
    ex = exchange_factory(clock=Clock(ms("2024-04-10T12:00:00"), speed=0), symbol_overrides=SMALL)
    args = ["--symbols", "BTCUSDT", "--start", "2024-03-01", "--end", "2024-03-20"]
    args += ["--markets", "um", "--datasets", "klines,aggTrades,metrics", "--exchange", ex.base_url]
    lake = Lake(str(tmp_path / "lk"))
    first = cli(args, tmp_path)
    deadline = time.monotonic() + 60
    while len(recorded(lake)) < 12 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # no cleanup, no flush: killed mid-run
    first.wait(10)
    landed = recorded(lake)
    assert 12 <= len(landed) < 60, "the first run should be killed part-way"
    work = tmp_path / "lk" / "_work" / "backfill"
    assert [p.name for p in work.iterdir()], "the killed run's download folder is left"

    before = ex.stats.vision_requests
    second = cli(args, tmp_path)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    fetched = ex.stats.vision_requests - before
    assert fetched == 2 * (60 - len(landed))  # a CHECKSUM and a zip per file not yet landed
    assert len(recorded(lake)) == 60
    assert list(work.iterdir()) == []  # the next run removed the killed run's folder, then its own

    spec = ex.market.spec("um", "BTCUSDT")
    lo, hi = day_ms(date(2024, 3, 1)), day_ms(date(2024, 3, 21))
    expected = ex.market.aggs_between(spec, lo, hi - 1).a.tolist()
    ids = lake.read(schemas.AGG_TRADES)["agg_trade_id"].sort().to_list()
    assert ids == expected  # every row once: nothing lost, nothing doubled
    assert lake.read(schemas.KLINES).height == 20 * 1440
    assert lake.read(schemas.METRICS).height == 20 * 288
