"""REST for the days the archive lacks: under the exchange's weight limit, zero 429s, rows equal
to the exchange's history, complete days recorded so a re-run fetches only the open day."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import polars as pl
import pytest

from lake import schemas
from lake.backfill.catalog import Series, day_ms
from lake.backfill.request import BackfillRequest, build_request
from lake.backfill.run import Options, Summary, execute, make_plan
from lake.binance.endpoints import Endpoints
from lake.binance.rest import RestClient
from lake.binance.vision import VisionClient
from lake.exchange.clock import Clock
from lake.exchange.config import RateLimits
from lake.exchange.trades import concat
from lake.storage import Lake
from tests.exchange_helpers import ms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOW = ms("2024-03-20T00:10:00")  # 03-19's archive files are not published before 00:15
WINDOW_S = 60 * 0.05  # RateLimits(window_scale=0.05): 3 s weight windows
DATASETS = (
    "klines,aggTrades,markPriceKlines,indexPriceKlines,premiumIndexKlines,fundingRate,metrics"
)


def run(url: str, lake: Lake, request: BackfillRequest) -> tuple[Summary, RestClient]:
    async def go() -> tuple[Summary, RestClient]:
        endpoints = Endpoints.for_exchange(url)
        async with VisionClient(endpoints) as vision, RestClient(endpoints) as rest:
            plan = await make_plan(lake, request, vision=vision, rest=rest)
            options = Options(weight_window_s=WINDOW_S)
            return await execute(lake, plan, vision=vision, rest=rest, options=options), rest

    return asyncio.run(go())


def test_rest_tail_under_the_weight_limit(exchange_factory: Any, tmp_path: Any) -> None:
    ex = exchange_factory(
        clock=Clock(NOW, speed=0),
        symbols="BTCUSDT",
        limits=RateLimits(window_scale=0.05),
        symbol_overrides={"agg_rate": 2.0, "book_rate": 0.02, "liq_per_hour": 2},
    )
    lake = Lake(str(tmp_path / "lake"))
    request = build_request(
        start="2024-03-19",
        end="2024-03-20",
        today=date(2024, 3, 20),
        symbols="BTCUSDT",
        datasets=DATASETS,
    )
    summary, rest = run(ex.base_url, lake, request)

    assert {o.source for o in summary.outcomes} == {"rest"}  # the archive has neither day yet
    budget = rest.budget("um")
    assert summary.throttled == 0 and budget.stats.throttled == 0 and budget.stats.banned == 0
    assert summary.weight_used > budget.allowed  # more than one window's worth of weight
    by_key = {o.key: o for o in summary.outcomes}
    agg = Series("um", "aggTrades", "BTCUSDT")
    assert by_key[agg.rest_key(date(2024, 3, 19))].status == "ingested"
    assert by_key[agg.rest_key(date(2024, 3, 20))].status == "partial"

    spec = ex.market.spec("um", "BTCUSDT")
    lo = day_ms(date(2024, 3, 19))
    expected = ex.market.aggs_between(spec, lo, NOW).a.tolist()  # the whole 19th, the 20th so far
    rows = lake.read(schemas.AGG_TRADES, where=pl.col("market") == "um").sort("agg_trade_id")
    assert rows["agg_trade_id"].to_list() == expected  # no repeat, no drop at page edges
    assert set(rows["source"]) == {"rest"}

    klines = lake.read(schemas.KLINES, where=pl.col("market") == "um")
    per_day = klines.group_by("kind", pl.col("open_time").dt.date().alias("d")).len()
    bars = {(k, d): n for k, d, n in per_day.iter_rows()}
    for kind in ("trade", "mark", "index", "premium"):
        assert bars[(kind, date(2024, 3, 19))] == 1440
        assert bars[(kind, date(2024, 3, 20))] == 10  # bars closed by 00:10, no open one
    spot = lake.read(schemas.KLINES, where=pl.col("market") == "spot")
    assert spot.height == 1450
    funding = lake.read(schemas.FUNDING)
    assert funding["funding_time"].dt.date().to_list().count(date(2024, 3, 19)) == 3
    metrics = lake.read(schemas.METRICS)
    assert metrics.filter(pl.col("create_time").dt.date() == date(2024, 3, 19)).height == 288

    sources = lake.read(schemas.SOURCES_TABLE)
    assert set(sources["key"]) == set(by_key)
    assert set(sources.filter(pl.col("period_start") == date(2024, 3, 19))["status"]) == {
        "ingested"
    }

    # A re-run fetches only the day that is not over; complete days are held.
    again, _ = run(ex.base_url, lake, request)
    assert {o.series.dataset for o in again.outcomes} == set(DATASETS.split(","))
    assert {o.key.rsplit("/", 1)[1] for o in again.outcomes} == {"2024-03-20"}
    assert again.throttled == 0

    # Once the archive publishes the 19th, its files supersede the REST rows of that day.
    ex.clock.set(ms("2024-03-20T02:00:00"))
    later, _ = run(ex.base_url, lake, request)
    vision = [o for o in later.outcomes if o.source == "vision"]
    assert {o.period_start for o in vision} == {date(2024, 3, 19)}
    assert {o.status for o in vision} == {"ingested"}
    assert {o.series.dataset for o in vision} == set(DATASETS.split(",")) - {"fundingRate"}
    rows = lake.read(schemas.AGG_TRADES, where=pl.col("market") == "um").sort("agg_trade_id")
    day19 = rows.filter(pl.col("transact_time").dt.date() == date(2024, 3, 19))
    assert set(day19["source"]) == {"vision"}  # replaced, not merged beside the REST rows
    assert day19["batch_id"].n_unique() == 1 and day19["batch_id"][0].startswith("vision:")
    assert rows["agg_trade_id"].is_unique().all()


def test_rest_trades_come_from_historical_trades_by_id(
    exchange_factory: Any, tmp_path: Any
) -> None:
    ex = exchange_factory(
        clock=Clock(NOW, speed=0),
        symbols="BTCUSDT",
        symbol_overrides={"agg_rate": 0.02, "book_rate": 0.02, "liq_per_hour": 2},
    )
    lake = Lake(str(tmp_path / "lake"))
    request = build_request(
        start="2024-03-19",
        end="2024-03-20",
        today=date(2024, 3, 20),
        symbols="BTCUSDT",
        datasets="trades",
    )
    summary, _ = run(ex.base_url, lake, request)
    statuses = [f"{o.series.market} {o.status}" for o in summary.outcomes]
    assert statuses == ["spot ingested", "spot partial", "um ingested", "um partial"]
    assert summary.throttled == 0
    for market in ("spot", "um"):
        spec = ex.market.spec(market, "BTCUSDT")
        lo = day_ms(date(2024, 3, 19))
        hours = range(lo // 3_600_000, NOW // 3_600_000 + 1)
        ids, _, _, t_us, _, _ = concat([ex.market.agg_hour(spec, h) for h in hours]).trade_rows()
        expected = ids[(t_us // 1000) < NOW].tolist()  # the 19th and the 20th up to now
        rows = lake.read(schemas.TRADES, where=pl.col("market") == market).sort("trade_id")
        assert rows["trade_id"].to_list() == expected, market
        assert set(rows["source"]) == {"rest"}
