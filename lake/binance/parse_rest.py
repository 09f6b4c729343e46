"""REST response bodies → bronze frames (BINANCE.md §2.1, §2.2).

Each parser takes one response body or the bodies of every page of one request series, decodes
them with the typed decoders of :mod:`lake.binance.wire`, and returns one conformed frame sorted
by its key. Rows repeated across page edges are kept once (the later page wins). Pure: the
caller passes the current time where it matters (``now_ms``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import polars as pl

from lake import schemas
from lake.binance import wire
from lake.binance.parse_common import finish
from lake.settings import Market

Pages = bytes | Sequence[bytes]


def _decode_pages(decoder: msgspec.json.Decoder[Any], pages: Pages, what: str) -> list[Any]:
    rows: list[Any] = []
    for n, body in enumerate([pages] if isinstance(pages, bytes | bytearray) else pages):
        try:
            rows.extend(decoder.decode(body))
        except msgspec.DecodeError as exc:
            raise ValueError(f"{what}: page {n} is not the expected response: {exc}") from None
    return rows


def _dedupe(frame: pl.DataFrame, key: Sequence[str]) -> pl.DataFrame:
    return frame.unique(subset=list(key), keep="last", maintain_order=True).sort(key)


def parse_rest_klines(
    pages: Pages,
    *,
    market: Market,
    kind: str,
    interval: str,
    symbol: str,
    batch_id: str,
    now_ms: int,
) -> pl.DataFrame:
    """Klines of any kind from ``GET /api/v3/klines`` or ``/fapi/v1/{klines, markPriceKlines,
    indexPriceKlines, premiumIndexKlines}``. One element::

        [1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",
         1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]

    The bar still in progress comes back too: rows whose ``close_time`` is not before ``now_ms``
    are dropped.
    """
    rows = _decode_pages(wire.REST_KLINES, pages, f"{kind} klines")
    cols = {
        "open_time": [r.open_time for r in rows],
        "close_time": [r.close_time for r in rows],
        "open": [r.open for r in rows],
        "high": [r.high for r in rows],
        "low": [r.low for r in rows],
        "close": [r.close for r in rows],
        "volume": [r.volume for r in rows],
        "quote_volume": [r.quote_volume for r in rows],
        "trade_count": [r.count for r in rows],
        "taker_buy_volume": [r.taker_buy_volume for r in rows],
        "taker_buy_quote_volume": [r.taker_buy_quote_volume for r in rows],
    }
    consts = {
        "market": market,
        "kind": kind,
        "interval": interval,
        "symbol": symbol,
        "source": "rest",
        "batch_id": batch_id,
    }
    frame = finish(schemas.KLINES, cols, consts, times=("open_time", "close_time"))
    now = pl.lit(now_ms * 1000).cast(pl.Int64).cast(schemas.US)
    return _dedupe(frame.filter(pl.col("close_time") < now), ("open_time",))


def parse_rest_agg_trades(
    pages: Pages, *, market: Market, symbol: str, batch_id: str
) -> pl.DataFrame:
    """Aggregate trades from ``GET /api/v3/aggTrades`` or ``/fapi/v1/aggTrades``. One element::

        {"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1498793709153,
         "m":true,"M":true}

    ``M`` is spot only.
    """
    rows = _decode_pages(wire.REST_AGG_TRADES, pages, "aggTrades")
    cols: dict[str, Any] = {
        "agg_trade_id": [r.a for r in rows],
        "price": [r.p for r in rows],
        "quantity": [r.q for r in rows],
        "first_trade_id": [r.f for r in rows],
        "last_trade_id": [r.l for r in rows],
        "transact_time": [r.T for r in rows],
        "is_buyer_maker": pl.Series([r.m for r in rows], dtype=pl.Boolean),
        "is_best_match": pl.Series([r.M for r in rows], dtype=pl.Boolean),
    }
    consts = {"market": market, "symbol": symbol, "source": "rest", "batch_id": batch_id}
    frame = finish(schemas.AGG_TRADES, cols, consts, times=("transact_time",))
    return _dedupe(frame, ("agg_trade_id",))


def parse_rest_funding(pages: Pages, *, batch_id: str) -> pl.DataFrame:
    """Settled funding from ``GET /fapi/v1/fundingRate``. One element::

        {"symbol":"BTCUSDT","fundingRate":"-0.03750000","fundingTime":1570608000000,
         "markPrice":"34287.54619963"}

    ``markPrice`` is ``""`` on some old rows: null.
    """
    rows = _decode_pages(wire.FUNDING_RATES, pages, "fundingRate")
    cols = {
        "symbol": pl.Series([r.symbol for r in rows], dtype=pl.String),
        "funding_time": pl.Series([r.fundingTime for r in rows], dtype=pl.Int64),
        "funding_rate": pl.Series([r.fundingRate for r in rows], dtype=pl.String),
        "mark_price": pl.Series([r.markPrice or None for r in rows], dtype=pl.String),
    }
    consts = {"source": "rest", "batch_id": batch_id}
    frame = finish(schemas.FUNDING, cols, consts, times=("funding_time",))
    return _dedupe(frame, ("symbol", "funding_time"))


def _series(rows: list[Any], fields: dict[str, str]) -> pl.DataFrame:
    times = pl.Series([r.timestamp for r in rows], dtype=pl.Int64)
    cols: dict[str, pl.Series] = {"create_time": times}
    for name, attr in fields.items():
        cols[name] = pl.Series([getattr(r, attr) for r in rows], dtype=pl.String)
    return pl.DataFrame(cols).unique(subset="create_time", keep="last", maintain_order=True)


_LS = "longShortRatio"
# (argument, decoder, route, {bronze column: response field})
_METRIC_ROUTES: tuple[tuple[str, msgspec.json.Decoder[Any], str, dict[str, str]], ...] = (
    (
        "open_interest_hist",
        wire.OPEN_INTEREST_HIST,
        "openInterestHist",
        {"sum_open_interest": "sumOpenInterest", "sum_open_interest_value": "sumOpenInterestValue"},
    ),
    (
        "top_account_ratio",
        wire.LONG_SHORT_RATIOS,
        "topLongShortAccountRatio",
        {"count_toptrader_long_short_ratio": _LS},
    ),
    (
        "top_position_ratio",
        wire.LONG_SHORT_RATIOS,
        "topLongShortPositionRatio",
        {"sum_toptrader_long_short_ratio": _LS},
    ),
    (
        "global_account_ratio",
        wire.LONG_SHORT_RATIOS,
        "globalLongShortAccountRatio",
        {"count_long_short_ratio": _LS},
    ),
    (
        "taker_ratio",
        wire.TAKER_RATIOS,
        "takerlongshortRatio",
        {"sum_taker_long_short_vol_ratio": "buySellRatio"},
    ),
)


def parse_rest_metrics(
    *,
    symbol: str,
    batch_id: str,
    open_interest_hist: Pages = (),
    top_account_ratio: Pages = (),
    top_position_ratio: Pages = (),
    global_account_ratio: Pages = (),
    taker_ratio: Pages = (),
) -> pl.DataFrame:
    """One bronze ``metrics`` row per timestamp, joined from the five ``/futures/data`` routes
    (period ``5m`` matches the Vision metrics files). Elements look like::

        openInterestHist:            {"symbol":"BTCUSDT","sumOpenInterest":"20403.63700000",
                                      "sumOpenInterestValue":"150570784.07809979",
                                      "timestamp":"1583127900000"}
        topLongShortAccountRatio,
        topLongShortPositionRatio,
        globalLongShortAccountRatio: {"symbol":"BTCUSDT","longShortRatio":"0.1960",
                                      "longAccount":"0.6622","shortAccount":"0.3378",
                                      "timestamp":"1583139600000"}
        takerlongshortRatio:         {"buySellRatio":"1.5586","buyVol":"387.3300",
                                      "sellVol":"248.5030","timestamp":1585614900000}

    ``timestamp`` may be a JSON string or number. A route left out, or without a row for a
    timestamp, leaves its columns null there.
    """
    pages = {
        "open_interest_hist": open_interest_hist,
        "top_account_ratio": top_account_ratio,
        "top_position_ratio": top_position_ratio,
        "global_account_ratio": global_account_ratio,
        "taker_ratio": taker_ratio,
    }
    parts = [
        _series(_decode_pages(decoder, pages[arg], route), fields)
        for arg, decoder, route, fields in _METRIC_ROUTES
    ]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.join(part, on="create_time", how="full", coalesce=True)
    cols = {c: joined.get_column(c) for c in joined.columns}
    consts = {"symbol": symbol, "source": "rest", "batch_id": batch_id}
    frame = finish(schemas.METRICS, cols, consts, times=("create_time",))
    return frame.sort("create_time")


def parse_rest_trades(pages: Pages, *, market: Market, symbol: str, batch_id: str) -> pl.DataFrame:
    """Trades from ``GET /api/v3/historicalTrades`` or ``/fapi/v1/historicalTrades`` (paged by
    ``fromId``). One element::

        {"id":28457,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012",
         "time":1499865549590,"isBuyerMaker":true,"isBestMatch":true}

    ``isBestMatch`` is spot only.
    """
    rows = _decode_pages(wire.REST_TRADES, pages, "historicalTrades")
    cols = {
        "trade_id": [r.id for r in rows],
        "price": [r.price for r in rows],
        "qty": [r.qty for r in rows],
        "quote_qty": [r.quoteQty for r in rows],
        "trade_time": [r.time for r in rows],
        "is_buyer_maker": pl.Series([r.isBuyerMaker for r in rows], dtype=pl.Boolean),
        "is_best_match": pl.Series([r.isBestMatch for r in rows], dtype=pl.Boolean),
    }
    consts = {"market": market, "symbol": symbol, "source": "rest", "batch_id": batch_id}
    return _dedupe(finish(schemas.TRADES, cols, consts, times=("trade_time",)), ("trade_id",))
