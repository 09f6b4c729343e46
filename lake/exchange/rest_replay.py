"""REST answers for a (market, symbol) that the loaded recording holds: only what it recorded.

``historicalTrades`` serves the recorded ``@trade`` frames, ``aggTrades`` the ``@aggTrade`` frames
and trade ``klines`` the closed bars (``x=true``) of ``@kline_<interval>``, with the parameter
rules of the simulated routes (:mod:`lake.exchange.rest_rows`), printed the same way. A row is
served once its frame is due on the replay clock. A range the recording does not hold is ``[]``,
as Binance answers a range without data; so are the routes a recording cannot answer (mark,
index and premium klines, fundingRate, /futures/data/*), after their parameters are checked.
``premiumIndex`` is the last due ``@markPrice`` frame; without one, and always for
``openInterest``, the answer is Binance's -1121 for a symbol it does not have.
"""

from __future__ import annotations

from typing import Any

from lake.exchange.fmt import dec
from lake.exchange.replay_data import AggTrade, Kline, Recorded, Trade
from lake.exchange.rest import ApiError, Handler, Params
from lake.exchange.rest_rows import AggQuery
from lake.exchange.state import ExchangeState


def _invalid_symbol() -> ApiError:
    return ApiError(-1121, "Invalid symbol.")


def _recorded(p: Params, symbol: str) -> tuple[Recorded, float]:
    """The recording's tables for ``symbol`` and the replay second now (starts the clock)."""
    rec = p.state.replay
    if rec is None or (p.market, symbol.upper()) not in rec.tables:
        raise _invalid_symbol()
    return rec.tables[(p.market, symbol.upper())], rec.elapsed()


def _product(text: str, other: str, out: int | None) -> str:
    """The exact product of two decimal strings, printed with ``out`` decimals (default all)."""
    a_whole, _, a_frac = text.partition(".")
    b_whole, _, b_frac = other.partition(".")
    return dec(int(a_whole + a_frac) * int(b_whole + b_frac), len(a_frac) + len(b_frac), out)


def trade_row(t: Trade, spot: bool) -> dict[str, Any]:
    """A ``historicalTrades`` element from a recorded trade (spot quotes print 8 decimals)::

    {"id":5266583935,"price":"61800.30","qty":"0.006","quoteQty":"370.80180",
     "time":1723161256322,"isBuyerMaker":false}
    """
    row: dict[str, Any] = {
        "id": t.t,
        "price": t.p,
        "qty": t.q,
        "quoteQty": _product(t.p, t.q, 8 if spot else None),
        "time": t.T,
        "isBuyerMaker": t.m,
    }
    if spot:
        row["isBestMatch"] = True
    return row


def agg_row(a: AggTrade, spot: bool, micros: bool) -> dict[str, Any]:
    """An ``aggTrades`` element from a recorded aggTrade (spot adds ``M``)::

    {"a":16599292,"p":"1.01100","q":"10","f":23961322,"l":23961322,"T":1626992741421,"m":false}
    """
    row: dict[str, Any] = {"a": a.a, "p": a.p, "q": a.q, "f": a.f, "l": a.l}
    row |= {"T": a.T * 1000 if micros else a.T, "m": a.m}
    if spot:
        row["M"] = a.M
    return row


def kline_row(k: Kline, micros: bool) -> list[Any]:
    """A ``klines`` element (12 fields) from a recorded closed bar::

    [1626992700000,"7.6080","7.6180","7.6070","7.6170","3005",1626992759999,"22875.8590",113,
     "1900","14464.6960","0"]
    """
    m = 1000 if micros else 1
    return [k.t * m, k.o, k.h, k.l, k.c, k.v, k.T * m + m - 1, k.q, k.n, k.V, k.Q, "0"]


def historical_trades(p: Params, s: ExchangeState) -> list[dict[str, Any]]:
    """``historicalTrades``: recorded trades with ids in ``[fromId, fromId + limit)``, or the
    latest ``limit`` due ones."""
    spot = p.market == "spot"
    limit = p.limit(500, 1000) if spot else p.limit(100, 500)
    from_id = p.int_opt("fromId")
    rec, now = _recorded(p, p.symbol_arg())
    trades = rec.trades
    rows = trades.latest(limit, now) if from_id is None else trades.ids(from_id, limit, now)
    return [trade_row(t, spot) for t in rows]


def agg_trades(p: Params, *, one_hour_rule: bool) -> list[dict[str, Any]]:
    """``aggTrades``: recorded aggTrades with ids in ``[fromId, fromId + limit)``, in a time
    window (the first or last ``limit``), or the latest."""
    q = AggQuery.of(p, one_hour_rule=one_hour_rule)
    rec, now = _recorded(p, p.symbol_arg())
    if q.from_id is not None:
        rows = rec.aggs.ids(q.from_id, q.limit, now, until_ms=q.end)
    elif q.start is not None or q.end is not None:
        lo, hi = q.window(p.now)
        rows = rec.aggs.between(lo, hi, q.limit, now, oldest=q.start is not None)
    else:
        rows = rec.aggs.latest(q.limit, now)
    spot = p.market == "spot"
    return [agg_row(a, spot, p.micros) for a in rows]


def klines(p: Params, s: ExchangeState) -> list[list[Any]]:
    """Trade ``klines``: the recorded closed bars of the interval (none recorded: ``[]``)."""
    spot = p.market == "spot"
    interval = p.interval(spot=spot)
    limit = p.limit(500, 1000 if spot else 1500)
    start, end = p.time_range()
    rec, now = _recorded(p, p.symbol_arg())
    bars = rec.klines.get(interval)
    if bars is None:
        return []
    rows = bars.between(start, end, limit, now, oldest=start is not None)
    return [kline_row(k, p.micros) for k in rows]


def no_klines(p: Params, s: ExchangeState) -> list[Any]:
    """Mark, index and premium klines: checked like the simulated route, and ``[]``."""
    p.interval(spot=False)
    p.limit(500, 1500)
    p.time_range()
    return []


def no_funding(p: Params, s: ExchangeState) -> list[Any]:
    """``fundingRate`` for a replayed symbol: a recording holds no settlements, ``[]``."""
    p.limit(100, 1000)
    p.time_range()
    return []


def no_data(p: Params, s: ExchangeState) -> list[Any]:
    """``/futures/data/*`` for a replayed symbol: checked like the simulated route, and ``[]``."""
    p.period_ms()
    p.limit(30, 500)
    p.time_range()
    return []


def premium_body(p: Params, symbol: str) -> dict[str, Any] | None:
    """``premiumIndex`` of a replayed symbol from its last due ``@markPrice`` frame, or None.

    ``interestRate`` is not in the frame: it prints Binance's default for USD-M, as the
    simulated route does.
    """
    rec, now = _recorded(p, symbol)
    last = rec.marks.latest(1, now)
    if not last:
        return None
    m = last[0]
    return {
        "symbol": symbol.upper(),
        "markPrice": m.p,
        "indexPrice": m.i,
        "estimatedSettlePrice": m.P,
        "lastFundingRate": m.r,
        "interestRate": "0.00010000",
        "nextFundingTime": m.T,
        "time": m.E,
    }


def premium_index(p: Params, s: ExchangeState) -> dict[str, Any]:
    """``premiumIndex?symbol=`` for a replayed symbol: -1121 until a mark price is due."""
    body = premium_body(p, p.symbol_arg())
    if body is None:
        raise _invalid_symbol()
    return body


def open_interest(p: Params, s: ExchangeState) -> Any:
    """``openInterest`` for a replayed symbol: no stream records it, so -1121."""
    raise _invalid_symbol()


def replayed_premiums(p: Params, s: ExchangeState) -> list[dict[str, Any]]:
    """The ``premiumIndex`` bodies of every replayed USD-M symbol with a due mark price."""
    rec = s.replay
    symbols = sorted(sym for market, sym in (rec.replayed if rec else ()) if market == "um")
    return [b for b in (premium_body(p, sym) for sym in symbols) if b is not None]


def agg_handler(one_hour_rule: bool) -> Handler:
    """The replay handler of an aggTrades route."""
    return lambda p, s: agg_trades(p, one_hour_rule=one_hour_rule)
