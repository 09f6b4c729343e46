"""Prefect tasks for live capture: thin wrappers that return small summaries."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from lake.binance.rest import RestClient
from lake.capture.collector import CapturePlan, CollectSummary, Snapshot, collect
from lake.capture.land import land_market
from lake.capture.lock import landing_lock
from lake.capture.repair import repair_open_gaps
from lake.interrupt import STOP
from lake.settings import Market, Settings
from lake.simulator import exchange_url
from lake.storage import Lake

LOG_EVERY_S = 10.0


@task(name="capture", cache_policy=NO_CACHE)
def capture(
    settings: Settings,
    markets: list[Market] | None,
    symbols: list[str] | None,
    duration_s: float | None,
) -> dict[str, Any]:
    """Run the collector; log its figures every 10 s and publish them as an artifact."""
    logger = get_run_logger()
    lake = Lake.from_settings(settings)
    lake.create_all()
    plan = CapturePlan.from_settings(settings, markets=markets, symbols=symbols)
    last_log = [0.0]

    def on_tick(snap: Snapshot) -> None:
        if snap.elapsed_s - last_log[0] >= LOG_EVERY_S:
            last_log[0] = snap.elapsed_s
            rates = ", ".join(f"{r.market}:{r.stream} {r.rate:.1f}/s" for r in snap.streams)
            logger.info(
                "durable %d, drops %d, recycles %d, gaps repaired %d | %s",
                snap.frames_durable,
                snap.drops,
                snap.recycles,
                snap.gaps_repaired,
                rates,
            )

    async def run(url: str) -> CollectSummary:
        stop = asyncio.Event()
        watch = asyncio.create_task(_stop_on_request(stop))
        try:
            return await collect(
                lake,
                settings.endpoints(url),
                plan,
                settings.capture,
                landing=settings.landing_path,
                duration_s=duration_s,
                stop=stop,
                on_tick=on_tick,
            )
        finally:
            watch.cancel()

    with exchange_url(settings) as url:
        summary = asyncio.run(run(url))
    figures = summary.as_dict()
    rows = [
        {
            "market": r["market"],
            "stream": r["stream"],
            "frames received": r["frames"],
            "latency_ms": None if r["latency_ms"] is None else round(r["latency_ms"], 2),
        }
        for r in figures["streams"]
    ]
    offset = figures["exchange_clock_offset_s"]
    note = "" if offset is None else f"; exchange clock {offset:,.0f} s off local: no latency"
    create_table_artifact(
        key="capture-streams", table=rows, description=f"frames received per stream{note}"
    )
    stored = [
        {"market": m, "table": t, "rows": n, "newly stored": r.stored.get(t, 0)}
        for m, r in summary.landed.items()
        for t, n in sorted(r.rows.items())
    ]
    create_table_artifact(
        key="capture-rows", table=stored, description="rows landed and newly stored per table"
    )
    return {
        k: figures[k]
        for k in ("duration_s", "frames_received", "rows_stored", "gaps_repaired", "drops")
    } | {"gaps_unrepairable": figures["gaps_unrepairable"]}


async def _stop_on_request(stop: asyncio.Event) -> None:
    """Set ``stop`` once a stop is asked for (:data:`lake.interrupt.STOP`): the collector then
    flushes, lands and returns."""
    # a threading.Event set by a signal handler: polled, since a thread blocked on it would
    # outlive the event loop when no stop comes
    while not STOP.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    stop.set()


@task(name="land-market", cache_policy=NO_CACHE)
def land_segments(settings: Settings, market: Market) -> dict[str, int]:
    """Land one market's closed segments; returns rows per table."""
    lake = Lake.from_settings(settings)
    directory = settings.landing_path / market
    if not directory.is_dir():
        return {"segments": 0, "frames": 0, "damaged": 0}
    with landing_lock(directory, holder="land", wait_s=30):  # one collect or land at a time
        result = land_market(lake, directory, market)
    return {
        "segments": result.segments,
        "frames": result.frames,
        "damaged": len(result.damaged),
        **result.stored,
    }


@task(name="repair-gaps", cache_policy=NO_CACHE)
def repair_gaps(settings: Settings) -> dict[str, Any]:
    """Fill every open REST-repairable gap of the ledger."""
    lake = Lake.from_settings(settings)

    async def run(url: str) -> dict[str, Any]:
        async with RestClient(settings.endpoints(url)) as client:
            r = await repair_open_gaps(
                lake,
                client,
                max_ids=settings.capture.max_rest_fill_ids,
                max_requests=settings.capture.repair_max_requests,
            )
        return {k: v for k, v in r.as_dict().items() if k != "errors"}

    with exchange_url(settings) as url:
        return asyncio.run(run(url))
