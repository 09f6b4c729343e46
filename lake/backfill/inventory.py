"""What the lake holds and what the archive lists, gathered for the planner (I/O).

:func:`make_plan` asks the exchange for its time (so "published" and "today" are the exchange's),
reads ``ops.sources`` and lists the archive one year of files per request, then hands everything
to the pure planner.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import polars as pl

from lake.backfill.catalog import Series, days, month_end, month_start
from lake.backfill.listing import first_days
from lake.backfill.model import Holding, SeriesListing
from lake.backfill.plan import Plan, plan_backfill
from lake.backfill.request import BackfillRequest, RequestError
from lake.binance.limits import RestEndpoint
from lake.binance.rest import RestClient
from lake.binance.vision import VisionClient
from lake.binance.vision_paths import Period
from lake.schemas import SOURCES_TABLE
from lake.settings import Market
from lake.storage import Lake

_TIME: dict[Market, RestEndpoint] = {
    "spot": RestEndpoint("spot", "/api/v3/time", 1),
    "um": RestEndpoint("um", "/fapi/v1/time", 1),
}


class _ServerTime(msgspec.Struct):
    serverTime: int


async def server_time(rest: RestClient, market: Market) -> int:
    """The exchange's clock in Unix ms (weight 1)."""
    body = await rest.get(_TIME[market], {})
    return msgspec.json.decode(body, type=_ServerTime).serverTime


def read_holdings(lake: Lake, request: BackfillRequest) -> dict[str, Holding]:
    """``ops.sources`` rows of the request's series (none when the table does not exist yet)."""
    if not lake.exists(SOURCES_TABLE):
        return {}
    symbols = sorted({s.symbol for s in request.series})
    rows = lake.read(SOURCES_TABLE, where=pl.col("symbol").is_in(symbols))
    return {
        r["key"]: Holding(r["key"], r["status"], r["size"], r["last_modified"], r["sha256"])
        for r in rows.select("key", "status", "size", "last_modified", "sha256").iter_rows(
            named=True
        )
    }


def _prefixes(series: Series, request: BackfillRequest) -> list[tuple[Period, str]]:
    """The listing prefixes the planner needs for one series (a year of files each)."""
    wanted = days(request.start, request.end)
    out: list[tuple[Period, str]] = []
    periods = series.periods()
    years = sorted({d.year for d in wanted})
    if "daily" in periods and any(series.in_vision("daily", d) for d in wanted):
        out += [("daily", series.listing_prefix("daily", y)) for y in years]
    months = sorted({month_start(d) for d in wanted})
    whole = [m for m in months if m >= request.start and month_end(m) <= request.end]
    need = months if "daily" not in periods else whole
    if "monthly" in periods and any(series.in_vision("monthly", m) for m in need):
        out += [("monthly", series.listing_prefix("monthly", y)) for y in years]
    return out


def _period_start(key: str, period: Period) -> date | None:
    """``…-2024-03-05.zip`` → 2024-03-05; ``…-2024-03.zip`` → 2024-03-01."""
    parts = key.removesuffix(".zip").rsplit("-", 3 if period == "daily" else 2)[1:]
    try:
        return date.fromisoformat("-".join(parts) + ("" if period == "daily" else "-01"))
    except ValueError:
        return None


async def list_archive(
    vision: VisionClient, request: BackfillRequest, *, concurrency: int = 8
) -> dict[Series, SeriesListing]:
    """List what the archive holds for every series of ``request``."""
    slots = asyncio.Semaphore(concurrency)

    async def one(series: Series) -> SeriesListing:
        found: dict[Period, dict[date, Any]] = {"daily": {}, "monthly": {}}
        for period, prefix in _prefixes(series, request):
            async with slots:
                page = await vision.list(prefix)
            for f in page.files:
                if not f.key.endswith(".zip"):
                    continue
                day = _period_start(f.key, period)
                if day is None:
                    continue
                if series.key(period, day) == f.key:
                    found[period][day] = f
        return SeriesListing(found["daily"], found["monthly"])

    results = await asyncio.gather(*(one(s) for s in request.series))
    return dict(zip(request.series, results, strict=True))


async def make_plan(
    lake: Lake, request: BackfillRequest, *, vision: VisionClient, rest: RestClient
) -> Plan:
    """Plan ``request`` against the exchange's clock, each symbol's listing day, the archive and
    ``ops.sources``.

    Raises:
        RequestError: ``request.end`` is after the exchange's today.
    """
    market = request.markets[0]
    now_ms = await server_time(rest, market)
    exchange_today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    if request.end > exchange_today:
        raise RequestError(
            f"--end {request.end} is in the future for the exchange at "
            f"{rest.endpoints.rest_url(market, '')} (its today is {exchange_today})"
        )
    listed = await first_days(rest, request)
    holdings = await asyncio.to_thread(read_holdings, lake, request)
    listings = {} if request.source == "rest" else await list_archive(vision, request)
    return plan_backfill(
        request, listings=listings, holdings=holdings, now_ms=now_ms, listed=listed
    )
