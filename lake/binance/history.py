"""Paging through REST history without repeating or dropping a row at a page edge.

* aggTrades are paged by id (``fromId`` = last id + 1), never by time, so trades sharing a
  millisecond across a page edge are neither repeated nor lost. A time range is first turned into
  a starting id with one ``startTime``/``endTime`` call inside the 1-hour window the route allows.
* klines, fundingRate and the ``/futures/data`` routes are paged by time: the next page starts
  one step after the last row returned.

Every function returns the raw page bodies; :mod:`lake.binance.parse` turns them into frames.
Each call uses the ``limit`` that gives the most rows per unit of weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import polars as pl

from lake.binance import limits
from lake.binance.parse_rest_trades import parse_rest_trades
from lake.binance.rest import RestClient
from lake.settings import Market

# Old trade lookup, paged by trade id (weights: spot REST docs; USD-M "Old Trades Lookup").
SPOT_HISTORICAL_TRADES = limits.RestEndpoint("spot", "/api/v3/historicalTrades", 25, 500, 1000)
UM_HISTORICAL_TRADES = limits.RestEndpoint("um", "/fapi/v1/historicalTrades", 20, 100, 500)

HOUR_MS = 3_600_000
INTERVAL_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": 24 * HOUR_MS,
}


class _AggId(msgspec.Struct):
    a: int
    T: int


class _Kline(msgspec.Struct, array_like=True):
    open_time: int


class _Funding(msgspec.Struct):
    fundingTime: int


class _Stamped(msgspec.Struct):
    timestamp: int | str


_AGG_IDS = msgspec.json.Decoder(list[_AggId])
_KLINES = msgspec.json.Decoder(list[_Kline])
_FUNDING = msgspec.json.Decoder(list[_Funding])
_STAMPED = msgspec.json.Decoder(list[_Stamped])


@dataclass(frozen=True)
class Pages:
    """The bodies of one paged request series and what it cost."""

    bodies: list[bytes]
    requests: int
    rows: int


async def agg_trades_by_id(
    client: RestClient, market: Market, symbol: str, *, from_id: int, to_id: int
) -> Pages:
    """aggTrades from ``from_id`` through at least ``to_id``, paged by ``fromId`` (the last page
    may run past ``to_id``)."""
    endpoint = limits.agg_trades_endpoint(market)
    limit = endpoint.best_limit()
    bodies: list[bytes] = []
    rows = 0
    cursor = from_id
    while cursor <= to_id:
        body = await client.get(endpoint, {"symbol": symbol, "fromId": cursor}, limit=limit)
        page = _AGG_IDS.decode(body)
        if not page:
            break
        bodies.append(body)
        rows += len(page)
        cursor = page[-1].a + 1
        if len(page) < limit:
            break
    return Pages(bodies, len(bodies), rows)


class _TradeId(msgspec.Struct):
    id: int


_TRADE_IDS = msgspec.json.Decoder(list[_TradeId])


async def trades_by_id(
    client: RestClient, market: Market, symbol: str, *, from_id: int, to_id: int, batch_id: str
) -> pl.DataFrame:
    """Trades from ``from_id`` through at least ``to_id`` from ``historicalTrades``, as bronze rows.

    The last page may run past ``to_id``: those rows come back too (callers filter).
    """
    endpoint = SPOT_HISTORICAL_TRADES if market == "spot" else UM_HISTORICAL_TRADES
    limit = endpoint.best_limit()
    bodies: list[bytes] = []
    cursor = from_id
    while cursor <= to_id:
        body = await client.get(endpoint, {"symbol": symbol, "fromId": cursor}, limit=limit)
        page = _TRADE_IDS.decode(body)
        if not page:
            break
        bodies.append(body)
        cursor = page[-1].id + 1
        if len(page) < limit:
            break
    return parse_rest_trades(bodies, market=market, symbol=symbol, batch_id=batch_id)


async def first_agg_trade_id(
    client: RestClient, market: Market, symbol: str, start_ms: int, end_ms: int
) -> int | None:
    """The id of the first aggTrade at or after ``start_ms`` (and before ``end_ms``), if any.

    The route refuses windows of an hour or more, so the range is walked an hour at a time.
    """
    endpoint = limits.agg_trades_endpoint(market)
    window_start = start_ms
    while window_start < end_ms:
        window_end = min(window_start + HOUR_MS - 1, end_ms - 1)
        params = {"symbol": symbol, "startTime": window_start, "endTime": window_end}
        page = _AGG_IDS.decode(await client.get(endpoint, params, limit=1))
        if page:
            return page[0].a
        window_start = window_end + 1
    return None


async def agg_trades_between(
    client: RestClient, market: Market, symbol: str, start_ms: int, end_ms: int
) -> Pages:
    """Every aggTrade with ``start_ms <= T < end_ms``; the last page may run past ``end_ms``
    (callers filter by time)."""
    first = await first_agg_trade_id(client, market, symbol, start_ms, end_ms)
    if first is None:
        return Pages([], 0, 0)
    endpoint = limits.agg_trades_endpoint(market)
    limit = endpoint.best_limit()
    bodies: list[bytes] = []
    rows = 0
    cursor = first
    while True:
        body = await client.get(endpoint, {"symbol": symbol, "fromId": cursor}, limit=limit)
        page = _AGG_IDS.decode(body)
        if not page:
            break
        bodies.append(body)
        rows += len(page)
        cursor = page[-1].a + 1
        if len(page) < limit or end_ms <= page[-1].T:
            break
    return Pages(bodies, len(bodies) + 1, rows)


async def klines_between(
    client: RestClient,
    market: Market,
    kind: str,
    symbol: str,
    start_ms: int,
    end_ms: int,
    *,
    interval: str = "1m",
) -> Pages:
    """Klines of ``kind`` whose open time is in ``[start_ms, end_ms)``, paged by open time."""
    endpoint = limits.kline_endpoint(market, kind)
    step = INTERVAL_MS[interval]
    limit = endpoint.best_limit()
    bodies: list[bytes] = []
    rows = 0
    cursor = start_ms - start_ms % step
    while cursor < end_ms:
        params = {
            endpoint.symbol_param: symbol,
            "interval": interval,
            "startTime": cursor,
            "endTime": end_ms - 1,
        }
        body = await client.get(endpoint, params, limit=limit)
        page = _KLINES.decode(body)
        if not page:
            break
        bodies.append(body)
        rows += len(page)
        cursor = page[-1].open_time + step
        if len(page) < limit:
            break
    return Pages(bodies, len(bodies), rows)


async def funding_between(client: RestClient, symbol: str, start_ms: int, end_ms: int) -> Pages:
    """Settled funding with ``start_ms <= fundingTime < end_ms``."""
    endpoint = limits.UM_FUNDING_RATE
    limit = endpoint.best_limit()
    bodies: list[bytes] = []
    rows = 0
    cursor = start_ms
    while cursor < end_ms:
        params = {"symbol": symbol, "startTime": cursor, "endTime": end_ms - 1}
        body = await client.get(endpoint, params, limit=limit)
        page = _FUNDING.decode(body)
        if not page:
            break
        bodies.append(body)
        rows += len(page)
        cursor = page[-1].fundingTime + 1
        if len(page) < limit:
            break
    return Pages(bodies, len(bodies), rows)


async def metrics_between(
    client: RestClient, symbol: str, start_ms: int, end_ms: int, *, period: str = "5m"
) -> dict[str, Pages]:
    """The five ``/futures/data`` routes over ``[start_ms, end_ms)``, keyed as in
    :data:`lake.binance.limits.METRICS_ENDPOINTS`."""
    out: dict[str, Pages] = {}
    for name, endpoint in limits.METRICS_ENDPOINTS.items():
        limit = endpoint.best_limit()
        bodies: list[bytes] = []
        rows = 0
        cursor = start_ms
        while cursor < end_ms:
            params = {
                "symbol": symbol,
                "period": period,
                "startTime": cursor,
                "endTime": end_ms - 1,
            }
            body = await client.get(endpoint, params, limit=limit)
            page = _STAMPED.decode(body)
            if not page:
                break
            bodies.append(body)
            rows += len(page)
            cursor = max(int(r.timestamp) for r in page) + 1
            if len(page) < limit:
                break
        out[name] = Pages(bodies, len(bodies), rows)
    return out


def all_bodies(pages: Sequence[Pages]) -> list[bytes]:
    return [body for p in pages for body in p.bodies]
