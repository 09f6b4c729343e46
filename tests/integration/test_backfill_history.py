"""Acceptance: 2 symbols x 2 markets x 10 days of every dataset, from the built-in exchange.

The bronze tables must equal the exchange's history, computed from the exchange's own market
object and its REST answers (read here with plain httpx/json, never with our parsers), and a
second run must download nothing and commit nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest

from lake import schemas
from lake.backfill.catalog import DATASETS, day_ms
from lake.backfill.request import build_request
from lake.backfill.run import Summary, execute, make_plan
from lake.binance.endpoints import Endpoints
from lake.binance.rest import RestClient
from lake.binance.vision import VisionClient
from lake.exchange.clock import Clock
from lake.exchange.testing import RunningExchange, start_exchange
from lake.exchange.trades import concat
from lake.storage import Lake
from tests.exchange_helpers import ms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIRST, LAST = date(2024, 3, 15), date(2024, 3, 24)
DAYS = [FIRST + timedelta(days=i) for i in range(10)]
SYMBOLS = ("BTCUSDT", "ETHUSDT")
SMALL = {"agg_rate": 0.02, "book_rate": 0.02, "liq_per_hour": 2}  # days of a few thousand rows


@dataclass
class Backfilled:
    ex: RunningExchange
    lake: Lake
    first: Summary
    vision_requests: int


def run(ex: RunningExchange, lake: Lake) -> Summary:
    request = build_request(
        start=FIRST, end=LAST, today=date(2024, 4, 10), symbols=SYMBOLS, markets="spot,um"
    )

    async def go() -> Summary:
        endpoints = Endpoints.for_exchange(ex.base_url)
        async with VisionClient(endpoints) as vision, RestClient(endpoints) as rest:
            plan = await make_plan(lake, request, vision=vision, rest=rest)
            return await execute(lake, plan, vision=vision, rest=rest)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    ex = start_exchange(clock=Clock(ms("2024-04-10T12:00:00"), speed=0), symbol_overrides=SMALL)
    try:
        lake = Lake(str(tmp_path_factory.mktemp("history") / "lake"))
        first = run(ex, lake)
        yield Backfilled(ex, lake, first, ex.stats.vision_requests)
    finally:
        ex.stop()


def test_every_file_lands_with_its_provenance(backfilled: Backfilled) -> None:
    outcomes = backfilled.first.outcomes
    assert {o.status for o in outcomes} == {"ingested"}
    # spot: klines, aggTrades, trades daily; um: 9 daily datasets + one monthly fundingRate file
    assert len(outcomes) == 2 * (3 * 10 + 9 * 10 + 1)
    assert {o.series.dataset for o in outcomes} == set(DATASETS)
    sources = backfilled.lake.read(schemas.SOURCES_TABLE)
    assert sources.height == len(outcomes)
    assert sources["status"].unique().to_list() == ["ingested"]
    assert (sources["sha256"] == sources["computed_sha256"]).all()
    assert sources.filter(pl.col("size").is_null() | pl.col("last_modified").is_null()).is_empty()
    expected_batches = [f"vision:{k}:{s[:16]}" for k, s in sources.select("key", "sha256").rows()]
    assert sources["batch_id"].to_list() == expected_batches
    funding = sources.filter(pl.col("dataset") == "fundingRate")
    assert funding["period"].to_list() == ["monthly"] * 2
    assert funding["period_start"].to_list() == [date(2024, 3, 1)] * 2
    # every bronze row carries its file's batch id and source, and the commit that wrote it does
    agg = backfilled.lake.read(schemas.AGG_TRADES)
    assert set(agg["source"].unique()) == {"vision"}
    assert set(agg["batch_id"].unique()) == set(
        sources.filter(pl.col("dataset") == "aggTrades")["batch_id"]
    )
    lineage = {c["lineage"].get("batch_id") for c in backfilled.lake.history(schemas.AGG_TRADES)}
    assert set(agg["batch_id"].unique()) <= lineage


class _Once:
    """Each table read once; later reads filter in memory (Lake.read per day costs seconds)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.frames: dict[str, pl.DataFrame] = {}

    def read(self, spec: schemas.TableSpec, where: pl.Expr | None = None) -> pl.DataFrame:
        if spec.key not in self.frames:
            self.frames[spec.key] = self.lake.read(spec)
        frame = self.frames[spec.key]
        return frame if where is None else frame.filter(where)


def test_bronze_equals_the_exchange_history(backfilled: Backfilled) -> None:
    ex, lake = backfilled.ex, _Once(backfilled.lake)
    with httpx.Client(base_url=ex.base_url, timeout=60) as http:
        for market in ("spot", "um"):
            for symbol in SYMBOLS:
                spec = ex.market.spec(market, symbol)
                for day in DAYS:
                    _check_trades(lake, ex, spec, day)
                    _check_klines(lake, http, market, symbol, day)
                if market == "um":
                    _check_um_only(lake, ex, http, spec)


def _day(frame: pl.DataFrame, col: str, day: date) -> pl.DataFrame:
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return frame.filter(pl.col(col).is_between(lo, lo + timedelta(days=1), closed="left"))


def _check_trades(lake: _Once, ex: RunningExchange, spec: Any, day: date) -> None:
    lo = day_ms(day)
    where = (pl.col("market") == spec.market) & (pl.col("symbol") == spec.symbol)
    aggs = ex.market.aggs_between(spec, lo, lo + 86_400_000 - 1)
    got = _day(lake.read(schemas.AGG_TRADES, where=where), "transact_time", day).sort(
        "agg_trade_id"
    )
    assert got["agg_trade_id"].to_list() == aggs.a.tolist()
    assert got["first_trade_id"].to_list() == aggs.first.tolist()
    assert got["last_trade_id"].to_list() == aggs.last.tolist()
    assert got["transact_time"].dt.epoch("ms").to_list() == aggs.t_ms.tolist()
    assert got["is_buyer_maker"].to_list() == aggs.maker.tolist()
    scale = Decimal(10) ** -spec.price_dec
    assert [Decimal(p) for p in got["price"]] == [int(p) * scale for p in aggs.price.tolist()]
    hours = range(lo // 3_600_000, (lo + 86_400_000) // 3_600_000)
    ids, _, _, t_us, _, maker = concat([ex.market.agg_hour(spec, h) for h in hours]).trade_rows()
    trades = _day(lake.read(schemas.TRADES, where=where), "trade_time", day).sort("trade_id")
    assert trades["trade_id"].to_list() == ids.tolist()
    assert trades["trade_time"].dt.epoch("ms").to_list() == (t_us // 1000).tolist()
    assert trades["is_buyer_maker"].to_list() == maker.tolist()


KLINE_ROUTES = {
    ("spot", "trade"): "/api/v3/klines",
    ("um", "trade"): "/fapi/v1/klines",
    ("um", "mark"): "/fapi/v1/markPriceKlines",
    ("um", "index"): "/fapi/v1/indexPriceKlines",
    ("um", "premium"): "/fapi/v1/premiumIndexKlines",
}
KLINE_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trade_count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
)


def _check_klines(lake: _Once, http: httpx.Client, market: str, symbol: str, day: date) -> None:
    lo = day_ms(day)
    for (m, kind), route in KLINE_ROUTES.items():
        if m != market:
            continue
        param = "pair" if kind == "index" else "symbol"
        params = {param: symbol, "interval": "1m", "startTime": lo, "endTime": lo + 86_399_999}
        rest = http.get(route, params=params | {"limit": 1000}).raise_for_status().json()
        rest += http.get(route, params=params | {"startTime": rest[-1][0] + 60_000}).json()
        where = (pl.col("market") == m) & (pl.col("kind") == kind) & (pl.col("symbol") == symbol)
        got = _day(lake.read(schemas.KLINES, where=where), "open_time", day).sort("open_time")
        assert got.height == len(rest) == 1440, (market, kind, symbol, day)
        assert got["open_time"].dt.epoch("ms").to_list() == [r[0] for r in rest]
        rows = got.select(KLINE_FIELDS).rows()
        for mine, theirs in zip(rows, rest, strict=True):
            expected = (*theirs[1:6], theirs[6] * 1000, theirs[7], theirs[8], *theirs[9:11])
            actual = (*mine[:5], int(mine[5].timestamp() * 1e6), *mine[6:])
            assert actual == expected, (market, kind, symbol, day)


def _check_um_only(lake: _Once, ex: RunningExchange, http: httpx.Client, spec: Any) -> None:
    sym = spec.symbol
    march = (ms("2024-03-01T00:00:00"), ms("2024-04-01T00:00:00") - 1)
    rest = http.get(
        "/fapi/v1/fundingRate",
        params={"symbol": sym, "startTime": march[0], "endTime": march[1], "limit": 1000},
    ).json()
    funding = lake.read(schemas.FUNDING, where=pl.col("symbol") == sym).sort("funding_time")
    assert funding["funding_time"].dt.epoch("ms").to_list() == [r["fundingTime"] for r in rest]
    assert [Decimal(x) for x in funding["funding_rate"]] == [
        Decimal(r["fundingRate"]) for r in rest
    ]
    metrics = lake.read(schemas.METRICS, where=pl.col("symbol") == sym).sort("create_time")
    books = lake.read(schemas.BOOK_TICKER, where=pl.col("symbol") == sym)
    liqs = lake.read(schemas.LIQUIDATIONS, where=pl.col("symbol") == sym)
    for day in DAYS:
        lo = day_ms(day)
        window = {"startTime": lo, "endTime": lo + 86_399_999, "limit": 500}
        oi = http.get(
            "/futures/data/openInterestHist", params={"symbol": sym, "period": "5m"} | window
        ).json()
        got = _day(metrics, "create_time", day)
        assert got["create_time"].dt.epoch("ms").to_list() == [int(r["timestamp"]) for r in oi]
        assert got["sum_open_interest"].to_list() == [r["sumOpenInterest"] for r in oi]
        assert got["sum_open_interest_value"].to_list() == [r["sumOpenInterestValue"] for r in oi]
        hours = range(lo // 3_600_000, lo // 3_600_000 + 24)
        u = np.concatenate([ex.market.book_hour(spec, h).u for h in hours])
        b = _day(books, "transaction_time", day).sort("update_id")
        assert b["update_id"].to_list() == u.tolist()
        t = np.concatenate([ex.market.liq_hour(spec, h).t_ms for h in hours])
        sell = np.concatenate([ex.market.liq_hour(spec, h).sell for h in hours])
        lq = _day(liqs, "trade_time", day).sort("trade_time", "side")
        expected = sorted(zip(t.tolist(), ["SELL" if s else "BUY" for s in sell], strict=True))
        assert list(zip(lq["trade_time"].dt.epoch("ms"), lq["side"], strict=True)) == expected


def test_a_second_run_downloads_nothing_and_commits_nothing(backfilled: Backfilled) -> None:
    lake = backfilled.lake
    tables = [t for t in schemas.iter_tables() if lake.exists(t)]
    versions = {t.key: lake.open(t).version() for t in tables}
    second = run(backfilled.ex, lake)
    assert second.outcomes == [] and not second.plan.items
    assert sum(second.plan.held.values()) == 2 * (3 * 10 + 9 * 10 + 10)
    assert backfilled.ex.stats.vision_requests == backfilled.vision_requests  # no file fetched
    assert {t.key: lake.open(t).version() for t in tables} == versions  # no commit anywhere


def test_the_lake_root_holds_no_leftover_downloads(backfilled: Backfilled) -> None:
    root = Path(backfilled.lake.root)
    assert not [p for p in root.rglob("*") if p.suffix in (".zip", ".part")]
