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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import polars as pl

from lake.binance import limits
from lake.binance.limits import RestEndpoint
from lake.binance.parse_rest import parse_rest_trades
from lake.binance.rest import RestClient
from lake.settings import Market

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


# A page reader: (rows in the page, the cursor of the next page, the last time it holds).
PageReader = Callable[[bytes], tuple[int, int, int]]


async def _pages(
    client: RestClient,
    endpoint: RestEndpoint,
    params: Mapping[str, Any],
    *,
    cursor_param: str,
    start: int,
    stop: Callable[[int, int], bool],
    read: PageReader,
) -> Pages:
    """Request pages from ``start`` on, each from the cursor the last one ends at.

    ``stop(next_cursor, last_time)`` ends the series; so do an empty or a short page.
    """
    limit = endpoint.best_limit()
    bodies: list[bytes] = []
    rows, cursor = 0, start
    while True:
        body = await client.get(endpoint, {**params, cursor_param: cursor}, limit=limit)
        n, cursor, last_time = read(body)
        if not n:
            break
        bodies.append(body)
        rows += n
        if n < limit or stop(cursor, last_time):
            break
    return Pages(bodies, len(bodies), rows)


def _read_aggs(body: bytes) -> tuple[int, int, int]:
    page = _AGG_IDS.decode(body)
    return (len(page), page[-1].a + 1, page[-1].T) if page else (0, 0, 0)


def _read_trades(body: bytes) -> tuple[int, int, int]:
    page = _TRADE_IDS.decode(body)
    return (len(page), page[-1].id + 1, 0) if page else (0, 0, 0)


async def agg_trades_by_id(
    client: RestClient, market: Market, symbol: str, *, from_id: int, to_id: int
) -> Pages:
    """aggTrades from ``from_id`` through at least ``to_id``, paged by ``fromId`` (the last page
    may run past ``to_id``)."""
    return await _pages(
        client,
        limits.agg_trades_endpoint(market),
        {"symbol": symbol},
        cursor_param="fromId",
        start=from_id,
        stop=lambda nxt, _: nxt > to_id,
        read=_read_aggs,
    )


class _TradeId(msgspec.Struct):
    id: int


_TRADE_IDS = msgspec.json.Decoder(list[_TradeId])


async def trades_by_id(
    client: RestClient, market: Market, symbol: str, *, from_id: int, to_id: int, batch_id: str
) -> pl.DataFrame:
    """Trades from ``from_id`` through at least ``to_id`` from ``historicalTrades``, as bronze rows.

    The last page may run past ``to_id``: those rows come back too (callers filter).
    """
    endpoint = limits.historical_trades_endpoint(market)
    pages = await _pages(
        client,
        endpoint,
        {"symbol": symbol},
        cursor_param="fromId",
        start=from_id,
        stop=lambda nxt, _: nxt > to_id,
        read=_read_trades,
    )
    return parse_rest_trades(pages.bodies, market=market, symbol=symbol, batch_id=batch_id)


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
    pages = await _pages(
        client,
        limits.agg_trades_endpoint(market),
        {"symbol": symbol},
        cursor_param="fromId",
        start=first,
        stop=lambda _, last_t: last_t >= end_ms,
        read=_read_aggs,
    )
    return Pages(pages.bodies, pages.requests + 1, pages.rows)


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

    def read(body: bytes) -> tuple[int, int, int]:
        page = _KLINES.decode(body)
        return (len(page), page[-1].open_time + step, 0) if page else (0, 0, 0)

    params = {endpoint.symbol_param: symbol, "interval": interval, "endTime": end_ms - 1}
    return await _pages(
        client,
        endpoint,
        params,
        cursor_param="startTime",
        start=start_ms - start_ms % step,
        stop=lambda nxt, _: nxt >= end_ms,
        read=read,
    )


def _read_funding(body: bytes) -> tuple[int, int, int]:
    page = _FUNDING.decode(body)
    return (len(page), page[-1].fundingTime + 1, 0) if page else (0, 0, 0)


def _read_stamped(body: bytes) -> tuple[int, int, int]:
    page = _STAMPED.decode(body)
    return (len(page), max(int(r.timestamp) for r in page) + 1, 0) if page else (0, 0, 0)


async def funding_between(client: RestClient, symbol: str, start_ms: int, end_ms: int) -> Pages:
    """Settled funding with ``start_ms <= fundingTime < end_ms``."""
    return await _pages(
        client,
        limits.UM_FUNDING_RATE,
        {"symbol": symbol, "endTime": end_ms - 1},
        cursor_param="startTime",
        start=start_ms,
        stop=lambda nxt, _: nxt >= end_ms,
        read=_read_funding,
    )


async def metrics_between(
    client: RestClient, symbol: str, start_ms: int, end_ms: int, *, period: str = "5m"
) -> dict[str, Pages]:
    """The five ``/futures/data`` routes over ``[start_ms, end_ms)``, keyed as in
    :data:`lake.binance.limits.METRICS_ENDPOINTS`."""
    params = {"symbol": symbol, "period": period, "endTime": end_ms - 1}
    return {
        name: await _pages(
            client,
            endpoint,
            params,
            cursor_param="startTime",
            start=start_ms,
            stop=lambda nxt, _: nxt >= end_ms,
            read=_read_stamped,
        )
        for name, endpoint in limits.METRICS_ENDPOINTS.items()
    }


def all_bodies(pages: Sequence[Pages]) -> list[bytes]:
    return [body for p in pages for body in p.bodies]
