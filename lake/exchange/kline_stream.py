"""Kline stream states of one hour: partial bars every push period, then one closed bar.

Binance pushes a kline frame (``x=false``) at a fixed period (USD-M 250 ms, spot 2 s, spot ``1s``
bars 1 s) when the bar changed since the last push, and one ``x=true`` frame just after the bar
closes (the recordings show ~200 ms later), even for a bar without trades. Closed bars are the very
bars REST and Vision serve.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lake.exchange import klines as kl
from lake.exchange.config import SymbolSpec
from lake.exchange.market import Market
from lake.exchange.prices import MS_HOUR, S_JITTER, hashed_uniform

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]


def push_period_ms(spec: SymbolSpec, interval: str) -> int:
    """How often partial bars are pushed (BINANCE.md §1.2)."""
    if spec.market == "um":
        return 250
    return 1000 if interval == "1s" else 2000


def hour_events(
    market: Market, spec: SymbolSpec, interval: str, hour: int
) -> tuple[I64, I64, BOOL, kl.Bars]:
    """Kline events with event time in this hour (plus closes spilling just past it).

    Returns:
        (event times, close times, closed flags, bar states) sorted by event time.
    """
    h0, h1 = hour * MS_HOUR, (hour + 1) * MS_HOUR
    # Closed bars: every bar whose close falls in (h0, h1].
    close_opens = kl.opens_between(int(kl.bar_open(h0, interval)), h1 - 1, interval)
    close_opens = close_opens[kl.next_open(close_opens, interval) > h0]
    close_opens = close_opens[kl.next_open(close_opens, interval) <= h1]
    closed_bars = market.trade_klines(spec, interval, close_opens, h1)
    close_t = kl.next_open(close_opens, interval)
    delay = 1 + (hashed_uniform(market.seed, spec.market_key, S_JITTER, close_t // 1000) * 199)
    events: list[tuple[I64, kl.Bars, BOOL]] = []
    if len(close_opens):
        events.append((close_t + delay.astype(np.int64), closed_bars, np.ones(len(close_t), bool)))
    push = push_period_ms(spec, interval)
    if interval != "1s":
        events.append(_partials(market, spec, interval, hour, push))
    e = np.concatenate([x[0] for x in events]) if events else np.zeros(0, dtype=np.int64)
    bars = kl.concat_bars([x[1] for x in events])
    closed = np.concatenate([x[2] for x in events]) if events else np.zeros(0, dtype=bool)
    order = np.argsort(e, kind="stable")
    bars = bars.take(order)
    return e[order], kl.next_open(bars.open_time, interval) - 1, closed[order], bars


def _partials(
    market: Market, spec: SymbolSpec, interval: str, hour: int, push: int
) -> tuple[I64, kl.Bars, BOOL]:
    h0 = hour * MS_HOUR
    block = market.agg_hour(spec, hour)
    t = block.t_ms
    ticks = h0 + push * np.arange(1, MS_HOUR // push + 1, dtype=np.int64)
    opens = kl.bar_open(ticks - 1, interval)
    # The tick at a bar's close is that bar's closed frame, not a partial one.
    ticks, opens = (
        ticks[kl.next_open(opens, interval) != ticks],
        opens[kl.next_open(opens, interval) != ticks],
    )
    upto = np.searchsorted(t, ticks, side="left")
    before = np.searchsorted(t, ticks - push, side="left")
    seg_start = np.searchsorted(t, np.maximum(opens, h0), side="left")
    keep = (upto > before) & (upto > seg_start)
    ticks, opens, upto, seg_start = ticks[keep], opens[keep], upto[keep], seg_start[keep]
    n = len(ticks)
    z = np.zeros(n, dtype=np.int64)
    if n == 0:
        return z, kl.Bars(z, z, z, z, z, z, z, z, z, z, z, z), np.zeros(0, dtype=bool)
    price, qty = block.price, block.qty
    pq = price * qty
    taker = ~block.maker
    cq = np.concatenate([[0], np.cumsum(qty)])
    cpq = np.concatenate([[0], np.cumsum(pq)])
    cn = np.concatenate([[0], np.cumsum(block.last - block.first + 1)])
    ctb = np.concatenate([[0], np.cumsum(np.where(taker, qty, 0))])
    ctq = np.concatenate([[0], np.cumsum(np.where(taker, pq, 0))])
    hi = np.empty(n, dtype=np.int64)
    lo = np.empty(n, dtype=np.int64)
    for s in np.unique(seg_start):  # one segment per bar: running max/min inside it
        sel = seg_start == s
        stop = int(upto[sel].max())
        run_hi = np.maximum.accumulate(price[s:stop])
        run_lo = np.minimum.accumulate(price[s:stop])
        hi[sel], lo[sel] = run_hi[upto[sel] - s - 1], run_lo[upto[sel] - s - 1]
    bars = kl.Bars(
        open_time=opens,
        open=price[seg_start],
        high=hi,
        low=lo,
        close=price[upto - 1],
        volume=cq[upto] - cq[seg_start],
        quote=cpq[upto] - cpq[seg_start],
        count=cn[upto] - cn[seg_start],
        taker_base=ctb[upto] - ctb[seg_start],
        taker_quote=ctq[upto] - ctq[seg_start],
        first_id=block.first[seg_start],
        last_id=block.last[upto - 1],
    )
    carried = opens < h0
    if carried.any():
        bars = _add_carry(market, spec, interval, h0, bars, carried)
    return ticks, bars, np.zeros(n, dtype=bool)


def _add_carry(
    market: Market, spec: SymbolSpec, interval: str, h0: int, bars: kl.Bars, carried: BOOL
) -> kl.Bars:
    """Bars that opened before this hour start from their state at the hour's start."""
    bo = int(bars.open_time[carried][0])
    minutes = market.trade_klines(spec, "1m", kl.opens_between(bo, h0 - 1, "1m"), h0)
    pre = kl.roll_up(minutes, np.array([bo], dtype=np.int64), interval)
    c = carried
    o, h, lo = bars.open.copy(), bars.high.copy(), bars.low.copy()
    f = bars.first_id.copy()
    if pre.first_id[0] >= 0:
        o[c] = pre.open[0]
        f[c] = pre.first_id[0]
    h[c] = np.maximum(h[c], pre.high[0] if pre.first_id[0] >= 0 else h[c])
    lo[c] = np.minimum(lo[c], pre.low[0] if pre.first_id[0] >= 0 else lo[c])

    def add(a: I64, b: int) -> I64:
        out = a.copy()
        out[c] += b
        return out

    return kl.Bars(
        bars.open_time,
        o,
        h,
        lo,
        bars.close,
        add(bars.volume, int(pre.volume[0])),
        add(bars.quote, int(pre.quote[0])),
        add(bars.count, int(pre.count[0])),
        add(bars.taker_base, int(pre.taker_base[0])),
        add(bars.taker_quote, int(pre.taker_quote[0])),
        f,
        bars.last_id,
    )
