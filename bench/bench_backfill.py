"""History backfill: Vision ingest throughput and REST weight utilisation.

(a) Vision ingest of USD-M aggTrades days (1.3 M rows each at the exchange's default activity):
    download on loopback, CHECKSUM verification, parse, Delta write and ``ops.sources`` record,
    in rows/s — printed beside the same run's bare unzip + ``polars.read_csv`` of the same files.
    Target: 1,000,000 rows/s.
(b) REST backfill of aggTrades against an exchange whose weight windows are shortened to 3 s:
    the weight sent in each full window against the exchange's limit, and the 429s seen.
    Target: at least 90% of the limit, zero 429s.

The exchange runs in a child process (its own interpreter and GIL); zips are built and cached
there before timing starts, so (a) measures the client, not the archive's builder.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import multiprocessing as mp
import tempfile
import threading
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from typing import Any

TARGET_ROWS_S = 1_000_000
TARGET_UTILISATION = 0.90
VISION_DAYS = 6
WINDOW_SCALE = 0.05  # 3 s weight windows


def _serve(conn: Any, start: str, limits: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Child process: run an exchange until the parent says stop."""
    from lake.exchange.clock import Clock
    from lake.exchange.config import RateLimits
    from lake.exchange.testing import start_exchange

    start_ms = int(datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp() * 1000)
    ex = start_exchange(
        clock=Clock(start_ms, speed=0),
        symbols="um:BTCUSDT",
        limits=RateLimits(**limits),
        symbol_overrides=overrides,
    )
    conn.send(ex.base_url)
    conn.recv()
    ex.stop()


class _Exchange:
    def __init__(self, start: str, limits: dict[str, Any], overrides: dict[str, Any]) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, start, limits, overrides), daemon=True)

    def __enter__(self) -> str:
        self._proc.start()
        if not self._conn.poll(60):
            raise RuntimeError("the bench exchange did not start")
        url: str = self._conn.recv()
        return url

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._proc.join(20)


def vision_ingest() -> dict[str, float]:
    """(a): rows/s of the whole ingest, and of bare unzip + read_csv of the same files."""
    import httpx
    import polars as pl

    from lake.backfill.request import build_request
    from lake.backfill.run import execute, make_plan
    from lake.binance.endpoints import Endpoints
    from lake.binance.rest import RestClient
    from lake.binance.vision import VisionClient
    from lake.storage import Lake

    first = date(2024, 3, 18)
    last = first + timedelta(days=VISION_DAYS - 1)
    request = build_request(
        start=first,
        end=last,
        today=date(2024, 3, 25),
        symbols="BTCUSDT",
        markets="um",
        datasets="aggTrades",
        source="vision",
    )
    (series,) = request.series
    keys = [series.key("daily", first + timedelta(days=i)) for i in range(VISION_DAYS)]
    with _Exchange("2024-03-25T12:00:00", {}, {}) as url:
        with httpx.Client(base_url=url, timeout=600) as http:  # build and cache every zip first
            bodies = [http.get(f"/{k}").raise_for_status().content for k in keys]
            for k in keys:
                http.get(f"/{k}.CHECKSUM").raise_for_status()
        with tempfile.TemporaryDirectory(prefix="bench-backfill-") as root:
            lake = Lake(root)
            lake.create_all()

            async def ingest() -> tuple[int, float]:
                endpoints = Endpoints.for_exchange(url)
                async with VisionClient(endpoints) as vision, RestClient(endpoints) as rest:
                    plan = await make_plan(lake, request, vision=vision, rest=rest)
                    t0 = time.perf_counter()
                    summary = await execute(lake, plan, vision=vision, rest=rest)
                    elapsed = time.perf_counter() - t0
                assert {o.status for o in summary.outcomes} == {"ingested"}, summary.as_dict()
                return sum(o.rows for o in summary.outcomes), elapsed

            rows, elapsed = asyncio.run(ingest())
    t0 = time.perf_counter()
    bare = 0
    for body in bodies:
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            bare += pl.read_csv(zf.read(zf.namelist()[0])).height
    bare_s = time.perf_counter() - t0
    assert bare == rows
    return {"rows": rows, "ingest_s": elapsed, "bare_s": bare_s, "mb": sum(map(len, bodies)) / 1e6}


def rest_utilisation() -> dict[str, float]:
    """(b): weight per full window against the limit, and 429s, for a REST aggTrades backfill."""
    from lake.backfill.request import build_request
    from lake.backfill.run import Options, execute, make_plan
    from lake.binance.endpoints import Endpoints
    from lake.binance.rest import RestClient
    from lake.binance.vision import VisionClient
    from lake.storage import Lake

    window = 60 * WINDOW_SCALE
    request = build_request(
        start="2024-03-15",
        end="2024-03-18",
        today=date(2024, 3, 25),
        symbols="BTCUSDT",
        markets="um",
        datasets="aggTrades",
        source="rest",
    )
    limits = {"window_scale": WINDOW_SCALE}
    exchange = _Exchange("2024-03-25T12:00:00", limits, {"agg_rate": 3.0})
    with exchange as url, tempfile.TemporaryDirectory(prefix="bench-backfill-") as root:
        lake = Lake(root)
        samples: list[tuple[int, int]] = []
        stop = threading.Event()

        async def run() -> tuple[int, int, int]:
            endpoints = Endpoints.for_exchange(url)
            async with VisionClient(endpoints) as vision, RestClient(endpoints) as rest:
                plan = await make_plan(lake, request, vision=vision, rest=rest)
                budget = rest.budget("um")
                sampler = threading.Thread(target=_sample, args=(budget, window, samples, stop))
                sampler.start()
                options = Options(weight_window_s=window)
                try:
                    await execute(lake, plan, vision=vision, rest=rest, options=options)
                finally:
                    stop.set()
                    sampler.join()
                return budget.limit, budget.stats.throttled, budget.stats.banned

        limit, throttled, banned = asyncio.run(run())
    per_window = [b - a for (_, a), (_, b) in itertools.pairwise(samples)]
    full = per_window[1:-1]  # the first and last windows are cut by the start and the end
    used = sum(full)
    return {
        "windows": len(full),
        "used": used,
        "allowed": limit * len(full),
        "throttled": throttled,
        "banned": banned,
        "limit": limit,
    }


def _sample(budget: Any, window: float, out: list[tuple[int, int]], stop: threading.Event) -> None:
    """Read the budget's running total at every window boundary of its clock."""
    while not stop.is_set():
        now = time.time()
        boundary = (int(now // window) + 1) * window
        if stop.wait(boundary - now):
            return
        out.append((int(boundary // window), budget.stats.used))


def main() -> None:
    """Print both measurements against their targets."""
    a = vision_ingest()
    rate = a["rows"] / a["ingest_s"]
    bare = a["rows"] / a["bare_s"]
    print(
        f"(a) Vision aggTrades ingest, {VISION_DAYS} daily files, {a['rows']:,.0f} rows, "
        f"{a['mb']:,.0f} MB: {rate:,.0f} rows/s (download+verify+parse+Delta+ops.sources in "
        f"{a['ingest_s']:.2f}s); bare unzip+polars.read_csv {bare:,.0f} rows/s "
        f"({a['bare_s']:.2f}s); ingest/bare {rate / bare:.2f}; target {TARGET_ROWS_S:,} rows/s: "
        f"{'met' if rate >= TARGET_ROWS_S else 'MISSED'} ({rate / TARGET_ROWS_S:.2f}x)",
        flush=True,
    )
    b = rest_utilisation()
    share = b["used"] / b["allowed"] if b["allowed"] else 0.0
    print(
        f"(b) REST aggTrades under {60 * WINDOW_SCALE:.0f}s windows of {b['limit']:,.0f} weight: "
        f"used {b['used']:,.0f} of allowed {b['allowed']:,.0f} over {b['windows']:.0f} full "
        f"windows = {share:.1%}; 429s {b['throttled']:.0f}, 418s {b['banned']:.0f}; target "
        f">= {TARGET_UTILISATION:.0%} with zero 429s: "
        f"{'met' if share >= TARGET_UTILISATION and not b['throttled'] else 'MISSED'}",
        flush=True,
    )


if __name__ == "__main__":
    main()
