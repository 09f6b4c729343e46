"""One UTC day of one series from REST, as bronze rows (I/O).

Paging comes from :mod:`lake.binance.history` (no repeats or drops at page edges, the best
``limit`` per weight, aggTrades by id inside the 1-hour window); every request goes through the
shared weight budget of :class:`~lake.binance.rest.RestClient`. Trades have no time-ranged
route: the day's trade ids are found from its first aggTrades (``f``), then
``historicalTrades`` is paged by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import msgspec
import polars as pl

from lake.backfill.catalog import DAY_MS, KLINE_INTERVAL, Series, day_ms
from lake.binance import history, limits
from lake.binance.parse_rest import (
    parse_rest_agg_trades,
    parse_rest_funding,
    parse_rest_klines,
    parse_rest_metrics,
    parse_rest_trades,
)
from lake.binance.rest import RestClient
from lake.binance.vision_paths import KLINE_KIND_BY_DATASET
from lake.settings import Market

PENDING = "rest:pending"
"""Parsers stamp a batch id; the write replaces it with the id derived from the rows."""


@dataclass(frozen=True)
class RestRows:
    """The rows of one day and what fetching them cost."""

    frame: pl.DataFrame
    requests: int
    weight: int
    route: str


class _AggIds(msgspec.Struct):
    a: int
    f: int


_AGG_IDS = msgspec.json.Decoder(list[_AggIds])


async def fetch_day(client: RestClient, series: Series, day: date, *, now_ms: int) -> RestRows:
    """Every row of ``series`` on ``day`` that REST serves at ``now_ms``.

    Raises:
        RestError: a request failed for good.
        ValueError: the series has no REST route.
    """
    start, end = day_ms(day), day_ms(day) + DAY_MS
    m, sym, kind = series.market, series.symbol, series.rest_kind()
    if kind == "klines":
        kline_kind = KLINE_KIND_BY_DATASET[series.dataset]
        endpoint = limits.kline_endpoint(m, kline_kind)
        pages = await history.klines_between(client, m, kline_kind, sym, start, end)
        frame = parse_rest_klines(
            pages.bodies,
            market=m,
            kind=kline_kind,
            interval=KLINE_INTERVAL,
            symbol=sym,
            batch_id=PENDING,
            now_ms=now_ms,
        )
        return _rows(frame, "open_time", start, end, pages.requests, endpoint)
    if kind == "agg_trades":
        endpoint = limits.agg_trades_endpoint(m)
        pages = await history.agg_trades_between(client, m, sym, start, end)
        frame = parse_rest_agg_trades(pages.bodies, market=m, symbol=sym, batch_id=PENDING)
        return _rows(frame, "transact_time", start, end, pages.requests, endpoint)
    if kind == "funding":
        pages = await history.funding_between(client, sym, start, end)
        frame = parse_rest_funding(pages.bodies, batch_id=PENDING)
        frame = frame.filter(pl.col("symbol") == sym)
        return _rows(frame, "funding_time", start, end, pages.requests, limits.UM_FUNDING_RATE)
    if kind == "metrics":
        routes = await history.metrics_between(client, sym, start, end)
        frame = parse_rest_metrics(
            symbol=sym, batch_id=PENDING, **{k: p.bodies for k, p in routes.items()}
        )
        requests = sum(p.requests for p in routes.values())
        return _rows(frame, "create_time", start, end, requests, limits.UM_OPEN_INTEREST_HIST)
    if kind == "trades":
        return await _trades(client, m, sym, start, end)
    raise ValueError(f"no REST route serves {series.label}")


def _rows(
    frame: pl.DataFrame,
    time_col: str,
    start: int,
    end: int,
    requests: int,
    endpoint: limits.RestEndpoint,
) -> RestRows:
    t = pl.col(time_col).dt.epoch("ms")
    frame = frame.filter((t >= start) & (t < end))
    limit = endpoint.best_limit() if endpoint.limit_max is not None else None
    weight = requests * endpoint.weight_for(limit)
    return RestRows(frame, requests, weight, endpoint.path)


async def _first_agg(
    client: RestClient, market: Market, symbol: str, start: int, end: int
) -> tuple[_AggIds | None, int]:
    """The first aggTrade in ``[start, end)`` (walked an hour at a time) and the calls made."""
    endpoint = limits.agg_trades_endpoint(market)
    calls = 0
    lo = start
    while lo < end:
        hi = min(lo + history.HOUR_MS - 1, end - 1)
        params = {"symbol": symbol, "startTime": lo, "endTime": hi}
        page = _AGG_IDS.decode(await client.get(endpoint, params, limit=1))
        calls += 1
        if page:
            return page[0], calls
        lo = hi + 1
    return None, calls


async def _trades(
    client: RestClient, market: Market, symbol: str, start: int, end: int
) -> RestRows:
    agg = limits.agg_trades_endpoint(market)
    trades = limits.historical_trades_endpoint(market)
    first, calls = await _first_agg(client, market, symbol, start, end)
    weight = calls * agg.weight_for(1)
    if first is None:
        empty = parse_rest_trades([], market=market, symbol=symbol, batch_id=PENDING)
        return RestRows(empty, calls, weight, trades.path)
    # The first trade of the next day bounds the range; before it exists, page to the end.
    nxt, more = await _first_agg(client, market, symbol, end, end + history.HOUR_MS)
    calls += more
    weight += more * agg.weight_for(1)
    to_id = nxt.f - 1 if nxt is not None else 2**62
    frame = await history.trades_by_id(
        client, market, symbol, from_id=first.f, to_id=to_id, batch_id=PENDING
    )
    pages = frame.height // trades.best_limit() + 1  # pages of ids, the short last one included
    t = pl.col("trade_time").dt.epoch("ms")
    frame = frame.filter((t >= start) & (t < end))
    return RestRows(frame, calls + pages, weight + pages * trades.weight_for(None), trades.path)
