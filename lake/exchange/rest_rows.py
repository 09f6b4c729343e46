"""Rows of the kline and aggTrades routes, shared by spot and USD-M (BINANCE.md §2.1–2.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lake.exchange import klines as kl
from lake.exchange.config import SymbolSpec
from lake.exchange.fmt import dec_list
from lake.exchange.rest import ApiError, Params
from lake.exchange.trades import AggBlock


def kline_opens(p: Params, spec: SymbolSpec, interval: str, limit: int) -> npt.NDArray[np.int64]:
    """Open times for a klines request: Binance's startTime/endTime/limit rules, up to now."""
    start, end = p.time_range()
    latest = int(kl.bar_open(p.now, interval))
    first = int(kl.bar_open(spec.genesis_ms, interval))
    hi = latest if end is None else min(end, latest)
    if start is not None:
        return kl.opens_between(max(start, first), hi, interval)[:limit]
    opens = kl.opens_between(max(first, hi - limit * kl.interval_ms(interval)), hi, interval)
    return opens[-limit:]


def kline_rows(
    spec: SymbolSpec, bars: kl.Bars, interval: str, sample: bool, micros: bool
) -> list[list[Any]]:
    """Kline arrays in Binance's 12-field order (BINANCE.md §2.2)."""
    if not len(bars):
        return []
    closes = kl.next_open(bars.open_time, interval) - 1
    if sample:
        o, h, lo, c = (dec_list(getattr(bars, f), 8) for f in ("open", "high", "low", "close"))
        zero = ["0"] * len(bars)
        v = q = tb = tq = zero
    else:
        pd, po, qd, qo = spec.price_dec, spec.price_out_dec, spec.qty_dec, spec.qty_out_dec
        o, h, lo, c = (dec_list(getattr(bars, f), pd, po) for f in ("open", "high", "low", "close"))
        qs = pd + qd
        qout = 8 if spec.market == "spot" else qs
        v, tb = dec_list(bars.volume, qd, qo), dec_list(bars.taker_base, qd, qo)
        q, tq = dec_list(bars.quote, qs, qout), dec_list(bars.taker_quote, qs, qout)
    mult = 1000 if micros else 1
    ot = (bars.open_time * mult).tolist()
    ct = (closes * mult + (mult - 1)).tolist()
    n = bars.count.tolist()
    return [
        [ot[i], o[i], h[i], lo[i], c[i], v[i], ct[i], q[i], n[i], tb[i], tq[i], "0"]
        for i in range(len(bars))
    ]


def agg_rows(spec: SymbolSpec, b: AggBlock, micros: bool = False) -> list[dict[str, Any]]:
    """aggTrades JSON rows (spot adds ``M``)."""
    if not len(b):
        return []
    prices = dec_list(b.price, spec.price_dec, spec.price_out_dec)
    qtys = dec_list(b.qty, spec.qty_dec, spec.qty_out_dec)
    times = (b.t_us if micros else b.t_ms).tolist()
    a, f, last, m = b.a.tolist(), b.first.tolist(), b.last.tolist(), b.maker.tolist()
    if spec.market == "spot":
        return [
            {
                "a": a[i],
                "p": prices[i],
                "q": qtys[i],
                "f": f[i],
                "l": last[i],
                "T": times[i],
                "m": m[i],
                "M": True,
            }
            for i in range(len(b))
        ]
    return [
        {"a": a[i], "p": prices[i], "q": qtys[i], "f": f[i], "l": last[i], "T": times[i], "m": m[i]}
        for i in range(len(b))
    ]


@dataclass(frozen=True, slots=True)
class AggQuery:
    """The parameters of an aggTrades request, checked as Binance checks them."""

    limit: int
    from_id: int | None
    start: int | None
    end: int | None

    @classmethod
    def of(cls, p: Params, *, one_hour_rule: bool) -> AggQuery:
        """Read ``limit``/``fromId``/``startTime``/``endTime``; USD-M refuses a window of 1 h+."""
        limit = p.limit(500, 1000)
        start, end = p.time_range()
        from_id = p.int_opt("fromId")
        if one_hour_rule and start is not None and end is not None and end - start >= 3_600_000:
            raise ApiError(-1127, "More than 1 hours between startTime and endTime.")
        return cls(limit, from_id, start, end)

    def window(self, now_ms: int) -> tuple[int, int]:
        """``[lo, hi]`` ms of a time-only request: one hour on from the start, or up to the end."""
        if self.start is not None:
            return self.start, self.start + 3_600_000 if self.end is None else self.end
        return (self.end or now_ms) - 3_600_000, self.end or 0


def agg_trades(p: Params, spec: SymbolSpec, *, one_hour_rule: bool) -> list[dict[str, Any]]:
    """The aggTrades of a request (``fromId``, or a time window, or the most recent)."""
    q = AggQuery.of(p, one_hour_rule=one_hour_rule)
    limit, start, end, from_id = q.limit, q.start, q.end, q.from_id
    m = p.state.market
    if from_id is not None:
        b = m.aggs_from_id(spec, from_id, limit, p.now if end is None else min(end, p.now))
    elif start is not None or end is not None:
        lo, hi = q.window(p.now)
        b = m.aggs_between(spec, lo, min(hi, p.now))
        b = b.take(0, limit) if start is not None else b.take(len(b) - limit, len(b))
    else:
        b = m.last_aggs(spec, limit, p.now)
    return agg_rows(spec, b, p.micros)


def historical_trades(p: Params, spec: SymbolSpec) -> list[dict[str, Any]]:
    """``historicalTrades``: trades from ``fromId`` (default: the most recent), oldest first.

    One row: ``{"id","price","qty","quoteQty","time","isBuyerMaker"}`` (spot adds
    ``isBestMatch``); ``price`` and ``qty`` print the digits the ``@trade`` stream prints.
    """
    limit = p.limit(500, 1000) if spec.market == "spot" else p.limit(100, 500)
    m = p.state.market
    from_id = p.int_opt("fromId")
    if from_id is None:
        last = m.last_aggs(spec, 1, p.now)
        from_id = max(0, int(last.last[-1]) - limit + 1) if len(last) else 0
    ids, price, qty, t_us, maker = m.trades_from_id(spec, from_id, limit, p.now)
    prices = dec_list(price, spec.price_dec, spec.price_out_dec)
    qtys = dec_list(qty, spec.qty_dec, spec.qty_out_dec)
    # the archive's quote quantity digits: 8 decimals on spot, all of them on USD-M
    scale = spec.price_dec + spec.qty_dec
    quote = dec_list(price * qty, scale, 8 if spec.market == "spot" else scale)
    times = (t_us // 1000).tolist()
    rows = [
        {"id": i, "price": pr, "qty": q, "quoteQty": qq, "time": t, "isBuyerMaker": mk}
        for i, pr, q, qq, t, mk in zip(
            ids.tolist(), prices, qtys, quote, times, maker.tolist(), strict=True
        )
    ]
    if spec.market == "spot":
        for row in rows:
            row["isBestMatch"] = True
    return rows
