"""Decoded WebSocket payloads → one bronze frame per table (columns built once, no dict per row).

Each builder takes the decoded structs of one kind (see :mod:`lake.binance.wire`) with their
receive times and returns a frame conformed to :mod:`lake.schemas`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

import polars as pl

from lake import schemas
from lake.binance.parse_common import finish, ns_to_us
from lake.settings import Market

Builder = Callable[[Market, list[Any], Sequence[int], str], tuple[pl.DataFrame, int]]


def _col(items: list[Any], name: str) -> list[Any]:
    # map(attrgetter) runs the loop in C: measurably faster than a comprehension on the hot path.
    return list(map(attrgetter(name), items))


def _lineage(market: Market | None, batch_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {"source": "ws", "batch_id": batch_id}
    if market is not None:
        out["market"] = market
    return out


def _agg_trades(
    market: Market, items: list[Any], recv: Sequence[int], batch_id: str
) -> tuple[pl.DataFrame, int]:
    """``<symbol>@aggTrade`` (spot adds ``M``).

    A payload::

        {"e":"aggTrade","E":1626992741017,"s":"SUSHIUSDT","a":5933014,"p":"7.6110","q":"100",
         "f":100,"l":105,"T":1626992741012,"m":true}
    """
    cols = {
        "symbol": _col(items, "s"),
        "agg_trade_id": _col(items, "a"),
        "price": _col(items, "p"),
        "quantity": _col(items, "q"),
        "first_trade_id": _col(items, "f"),
        "last_trade_id": _col(items, "l"),
        "transact_time": _col(items, "T"),
        "is_buyer_maker": _col(items, "m"),
        "event_time": _col(items, "E"),
        "ts_recv": ns_to_us(recv),
    }
    if market == "spot":
        cols["is_best_match"] = pl.Series(_col(items, "M"), dtype=pl.Boolean)
    spec = schemas.AGG_TRADES
    times = ("transact_time", "event_time")
    return finish(spec, cols, _lineage(market, batch_id), times=times), 0


def _trades(
    market: Market, items: list[Any], recv: Sequence[int], batch_id: str
) -> tuple[pl.DataFrame, int]:
    """``<symbol>@trade``; USD-M carries ``X`` (trade type), spot ``M``.

    A payload::

        {"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,
         "p":"61800.30","q":"0.006","X":"MARKET","m":false}
    """
    cols = {
        "symbol": _col(items, "s"),
        "trade_id": _col(items, "t"),
        "price": _col(items, "p"),
        "qty": _col(items, "q"),
        "trade_time": _col(items, "T"),
        "is_buyer_maker": _col(items, "m"),
        "event_time": _col(items, "E"),
        "ts_recv": ns_to_us(recv),
    }
    if market == "spot":
        cols["is_best_match"] = pl.Series(_col(items, "M"), dtype=pl.Boolean)
    else:
        cols["trade_type"] = pl.Series(_col(items, "X"), dtype=pl.String)
    spec = schemas.TRADES
    return finish(spec, cols, _lineage(market, batch_id), times=("trade_time", "event_time")), 0


def _book_ticker(
    market: Market, items: list[Any], recv: Sequence[int], batch_id: str
) -> tuple[pl.DataFrame, int]:
    """``<symbol>@bookTicker`` (USD-M on ``/public``; spot has no ``e``, ``E``, ``T``).

    A payload::

        {"e":"bookTicker","u":5123107839020,"s":"BTCUSDT","b":"61800.20","B":"2.507",
         "a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256313}
    """
    cols = {
        "symbol": _col(items, "s"),
        "update_id": _col(items, "u"),
        "bid_price": _col(items, "b"),
        "bid_qty": _col(items, "B"),
        "ask_price": _col(items, "a"),
        "ask_qty": _col(items, "A"),
        "ts_recv": ns_to_us(recv),
    }
    times: tuple[str, ...] = ()
    if market != "spot":  # spot frames carry no exchange time at all
        cols["transaction_time"] = _col(items, "T")
        cols["event_time"] = _col(items, "E")
        times = ("transaction_time", "event_time")
    return finish(schemas.BOOK_TICKER, cols, _lineage(market, batch_id), times=times), 0


def _mark_price(
    market: Market, items: list[Any], recv: Sequence[int], batch_id: str
) -> tuple[pl.DataFrame, int]:
    """``<symbol>@markPrice@1s`` (USD-M).

    A payload::

        {"e":"markPriceUpdate","E":1680652800010,"s":"BTCUSDT","p":"28155.10000000",
         "P":"28141.47600845","i":"28165.04857143","r":"0.00002760","T":1680652800000}
    """
    cols = {
        "symbol": _col(items, "s"),
        "event_time": _col(items, "E"),
        "mark_price": _col(items, "p"),
        "index_price": pl.Series(_col(items, "i"), dtype=pl.String),
        "estimated_settle_price": pl.Series(_col(items, "P"), dtype=pl.String),
        # Delivery contracts send r="" and T=0: no funding, so null rather than a fake value.
        "funding_rate": pl.Series([d.r or None for d in items], dtype=pl.String),
        "next_funding_time": pl.Series([d.T or None for d in items], dtype=pl.Int64),
        "ts_recv": ns_to_us(recv),
    }
    times = ("event_time", "next_funding_time")
    return finish(schemas.MARK_PRICE, cols, _lineage(None, batch_id), times=times), 0


def _klines(
    market: Market, items: list[Any], recv: Sequence[int], batch_id: str
) -> tuple[pl.DataFrame, int]:
    """``<symbol>@kline_<interval>``; only closed bars (``x=true``) are kept.

    A payload::

        {"e":"kline","E":1633998523963,"s":"NKNUSDT","k":{"t":1633998480000,"T":1633998539999,
         "s":"NKNUSDT","i":"1m","f":19862761,"L":19862790,"o":"0.35270000","c":"0.35280000",
         "h":"0.35280000","l":"0.35220000","v":"25877.00000000","n":30,"x":true,
         "q":"9116.04600000","V":"58.00000000","Q":"20.46240000","B":"0"}}
    """
    closed = [j for j, ev in enumerate(items) if ev.k.x]  # x=false bars are in-progress updates
    skipped = len(items) - len(closed)
    events = [items[j] for j in closed]
    bars = [ev.k for ev in events]
    cols = {
        "interval": _col(bars, "i"),
        "symbol": _col(bars, "s"),
        "open_time": _col(bars, "t"),
        "close_time": _col(bars, "T"),
        "open": _col(bars, "o"),
        "high": _col(bars, "h"),
        "low": _col(bars, "l"),
        "close": _col(bars, "c"),
        "volume": _col(bars, "v"),
        "quote_volume": _col(bars, "q"),
        "trade_count": _col(bars, "n"),
        "taker_buy_volume": _col(bars, "V"),
        "taker_buy_quote_volume": _col(bars, "Q"),
        "event_time": _col(events, "E"),
        "ts_recv": ns_to_us([recv[j] for j in closed]),
    }
    constants = {**_lineage(market, batch_id), "kind": "trade"}
    times = ("open_time", "close_time", "event_time")
    return finish(schemas.KLINES, cols, constants, times=times), skipped


def _liquidations(
    market: Market, items: list[Any], recv: Sequence[int], batch_id: str
) -> tuple[pl.DataFrame, int]:
    """``<symbol>@forceOrder`` (USD-M; at most one per symbol per second).

    A payload::

        {"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT",
         "f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014",
         "T":1568014460893}}
    """
    orders = _col(items, "o")
    cols = {
        "symbol": _col(orders, "s"),
        "trade_time": _col(orders, "T"),
        "side": _col(orders, "S"),
        "order_type": _col(orders, "o"),
        "time_in_force": _col(orders, "f"),
        "orig_qty": _col(orders, "q"),
        "price": _col(orders, "p"),
        "avg_price": _col(orders, "ap"),
        "order_status": _col(orders, "X"),
        "last_filled_qty": _col(orders, "l"),
        "filled_qty": _col(orders, "z"),
        "event_time": _col(items, "E"),
        "ts_recv": ns_to_us(recv),
    }
    times = ("trade_time", "event_time")
    return finish(schemas.LIQUIDATIONS, cols, _lineage(None, batch_id), times=times), 0


_BUILDERS: dict[str, tuple[str, schemas.TableSpec, Builder]] = {
    "agg_trade": ("agg_trades", schemas.AGG_TRADES, _agg_trades),
    "trade": ("trades", schemas.TRADES, _trades),
    "book_ticker": ("book_ticker", schemas.BOOK_TICKER, _book_ticker),
    "mark_price": ("mark_price", schemas.MARK_PRICE, _mark_price),
    "kline": ("klines", schemas.KLINES, _klines),
    "force_order": ("liquidations", schemas.LIQUIDATIONS, _liquidations),
}


# Empty tables are common (most batches lack some kinds); building one costs ~0.1 ms, a clone
# of a prepared one nothing.
_EMPTY: dict[str, pl.DataFrame] = {kind: spec.empty() for kind, (_, spec, _) in _BUILDERS.items()}


def build(
    kind: str, market: Market, items: list[Any], recv: Sequence[int], batch_id: str
) -> tuple[str, pl.DataFrame, int]:
    """``(table name, conformed frame, rows skipped on purpose)`` for one kind's payloads."""
    name, _, builder = _BUILDERS[kind]
    if not items:
        return name, _EMPTY[kind].clone(), 0
    frame, skipped = builder(market, items, recv, batch_id)
    return name, frame, skipped
