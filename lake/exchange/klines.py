"""Kline bars: trade klines from aggTrades, mark/index/premium klines from one-second samples.

Trade bars of any interval are rolled up from one-minute bars (themselves from the trades), so
every interval and every surface agrees with the aggTrades that make it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from lake.exchange.trades import AggBlock

I64 = npt.NDArray[np.int64]

MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
INTERVALS = (
    *("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"),
    *("3d", "1w", "1M"),
)
_WEEK_OFFSET = 4 * 86_400_000  # 1970-01-01 was a Thursday; weekly bars open on Mondays


def interval_ms(interval: str) -> int:
    """Fixed length of an interval in ms (``1M`` returns 31 days, an upper bound)."""
    if interval == "1M":
        return 31 * 86_400_000
    return int(interval[:-1]) * MS[interval[-1]]


def bar_open(t_ms: npt.ArrayLike, interval: str) -> I64:
    """Open time of the bar of ``interval`` that contains each ``t_ms``."""
    t = np.asarray(t_ms, dtype=np.int64)
    if interval == "1M":
        months = t.astype("datetime64[ms]").astype("datetime64[M]")
        return np.asarray(months.astype("datetime64[ms]").astype(np.int64), dtype=np.int64)
    w = interval_ms(interval)
    off = _WEEK_OFFSET if interval == "1w" else 0
    return np.asarray((t - off) // w * w + off, dtype=np.int64)


def next_open(open_ms: npt.ArrayLike, interval: str) -> I64:
    """Open time of the bar after each bar opening at ``open_ms``."""
    t = np.asarray(open_ms, dtype=np.int64)
    if interval == "1M":
        m = t.astype("datetime64[ms]").astype("datetime64[M]") + np.timedelta64(1, "M")
        return np.asarray(m.astype("datetime64[ms]").astype(np.int64), dtype=np.int64)
    return np.asarray(t + interval_ms(interval), dtype=np.int64)


def opens_between(start_ms: int, end_ms: int, interval: str) -> I64:
    """Open times of all bars that open in ``[start_ms, end_ms]``."""
    if end_ms < start_ms:
        return np.zeros(0, dtype=np.int64)
    first = int(bar_open(start_ms, interval))
    if first < start_ms:
        first = int(next_open(first, interval))
    if interval != "1M":
        w = interval_ms(interval)
        return np.arange(first, end_ms + 1, w, dtype=np.int64)
    out = []
    t = first
    while t <= end_ms:
        out.append(t)
        t = int(next_open(t, interval))
    return np.array(out, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Bars:
    """Columns of consecutive bars; prices in price units, volumes in lots.

    ``quote``/``taker_quote`` are in units of ``10**-(price_dec + qty_dec)``. ``first_id`` and
    ``last_id`` are trade ids (-1 for a bar without trades). For sample klines (mark, index,
    premium) ``count`` is the number of samples and the volume columns are zero.
    """

    open_time: I64
    open: I64
    high: I64
    low: I64
    close: I64
    volume: I64
    quote: I64
    count: I64
    taker_base: I64
    taker_quote: I64
    first_id: I64
    last_id: I64

    def __len__(self) -> int:
        return len(self.open_time)

    def take(self, sel: npt.ArrayLike | slice) -> Bars:
        """Rows selected by a slice, mask or index array."""
        return Bars(*(getattr(self, f.name)[sel] for f in fields(self)))


def concat_bars(parts: list[Bars]) -> Bars:
    """Join bars in order."""
    if not parts:
        return Bars(*(np.zeros(0, dtype=np.int64) for _ in fields(Bars)))
    return Bars(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Bars)))


def bars_from_trades(
    block: AggBlock, start_ms: int, width_ms: int, n: int, prev_close: int, t_ms: I64 | None = None
) -> Bars:
    """``n`` bars of ``width_ms`` from ``start_ms`` out of the aggTrades in ``block``.

    Args:
        block: aggTrades, sorted by id (hence by time).
        start_ms: open time of the first bar.
        width_ms: bar length.
        n: number of bars.
        prev_close: close of the bar before the first, carried into bars without trades.
        t_ms: trade times to bin by (default ``block.t_ms``).
    """
    t = block.t_ms if t_ms is None else t_ms
    keep = (t >= start_ms) & (t < start_ms + n * width_ms)
    idx = ((t[keep] - start_ms) // width_ms).astype(np.int64)
    price, qty = block.price[keep], block.qty[keep]
    trades = (block.last - block.first + 1)[keep]
    taker = ~block.maker[keep]
    count = np.bincount(idx, minlength=n)
    nonempty = count > 0
    seg = np.concatenate([[0], np.cumsum(count)[:-1]])[nonempty]
    o = np.full(n, -1, dtype=np.int64)
    c, h, lo = o.copy(), o.copy(), o.copy()
    fid, lid = o.copy(), o.copy()
    if len(idx):
        ends = np.cumsum(count)[nonempty] - 1
        o[nonempty], c[nonempty] = price[seg], price[ends]
        h[nonempty] = np.maximum.reduceat(price, seg)
        lo[nonempty] = np.minimum.reduceat(price, seg)
        fid[nonempty] = block.first[keep][seg]
        lid[nonempty] = block.last[keep][ends]
    # A bar without trades repeats the last close (Binance prints o=h=l=c=previous close).
    last = prev_close
    for i in range(n):
        if nonempty[i]:
            last = int(c[i])
        else:
            o[i] = h[i] = lo[i] = c[i] = last
    pq = price * qty
    return Bars(
        open_time=start_ms + np.arange(n, dtype=np.int64) * width_ms,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=np.bincount(idx, qty, minlength=n).astype(np.int64),
        quote=_int_sum(idx, pq, n),
        count=np.bincount(idx, trades, minlength=n).astype(np.int64),
        taker_base=np.bincount(idx, np.where(taker, qty, 0), minlength=n).astype(np.int64),
        taker_quote=_int_sum(idx, np.where(taker, pq, 0), n),
        first_id=fid,
        last_id=lid,
    )


def _int_sum(idx: I64, values: I64, n: int) -> I64:
    # np.bincount sums in float64, which loses units past 2**53; add.at keeps int64 exact.
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, idx, values)
    return out


def roll_up(minutes: Bars, opens: I64, interval: str) -> Bars:
    """Aggregate consecutive bars into bars of ``interval`` opening at ``opens``."""
    key = np.searchsorted(opens, bar_open(minutes.open_time, interval))
    n = len(opens)
    count_rows = np.bincount(key, minlength=n)
    starts = np.concatenate([[0], np.cumsum(count_rows)[:-1]])
    ends = starts + count_rows - 1
    has_trades = minutes.first_id >= 0
    fid = np.full(n, -1, dtype=np.int64)
    lid = np.full(n, -1, dtype=np.int64)
    for i in range(n):  # few bars: a plain loop is clearer than masked reductions
        ids = np.nonzero(has_trades[starts[i] : ends[i] + 1])[0]
        if len(ids):
            fid[i] = minutes.first_id[starts[i] + ids[0]]
            lid[i] = minutes.last_id[starts[i] + ids[-1]]
    return Bars(
        open_time=opens,
        open=minutes.open[starts],
        high=np.maximum.reduceat(minutes.high, starts),
        low=np.minimum.reduceat(minutes.low, starts),
        close=minutes.close[ends],
        volume=np.add.reduceat(minutes.volume, starts),
        quote=np.add.reduceat(minutes.quote, starts),
        count=np.add.reduceat(minutes.count, starts),
        taker_base=np.add.reduceat(minutes.taker_base, starts),
        taker_quote=np.add.reduceat(minutes.taker_quote, starts),
        first_id=fid,
        last_id=lid,
    )


def bars_from_samples(values: I64, sample_ms: I64, opens: I64, closes: I64) -> Bars:
    """Sample klines: OHLC of the samples in each ``[open, close)``; ``count`` = samples.

    The bars must abut (each close is the next open) and every bar must hold a sample.
    """
    lo_i = np.searchsorted(sample_ms, opens)
    hi_i = np.searchsorted(sample_ms, closes)
    values = values[: int(hi_i[-1])] if len(hi_i) else values
    cnt = hi_i - lo_i
    z = np.zeros(len(opens), dtype=np.int64)
    safe = np.where(cnt > 0, lo_i, 0)
    return Bars(
        open_time=opens,
        open=values[safe],
        high=np.maximum.reduceat(values, safe) if len(values) else z,
        low=np.minimum.reduceat(values, safe) if len(values) else z,
        close=values[np.maximum(hi_i - 1, 0)],
        volume=z,
        quote=z,
        count=cnt.astype(np.int64),
        taker_base=z,
        taker_quote=z,
        first_id=z - 1,
        last_id=z - 1,
    )
