"""The simulated market: one cached, deterministic source of history for every surface.

WebSocket, REST and Vision all read from a :class:`Market`; none of them generates data itself.
Nothing here reads a clock: callers pass "now" explicitly, so the same calls in two processes
return the same bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from lake.exchange import klines as kl
from lake.exchange.book import BookBlock, generate_book_hour
from lake.exchange.config import ExchangeConfig, SymbolSpec
from lake.exchange.derivs import (
    SLOT_MS,
    Funding,
    LiqBlock,
    Metrics,
    funding_between,
    generate_liq_hour,
    metrics_at,
)
from lake.exchange.prices import MS_HOUR, MS_SECOND, PricePath
from lake.exchange.trades import (
    AggBlock,
    concat,
    first_agg_id,
    generate_hour,
    genesis_hour,
    hour_of_agg_id,
    hour_of_trade_id,
)

I64 = npt.NDArray[np.int64]
_NO = np.zeros(0, np.int64)
_NO_TRADES = (_NO, _NO, _NO, _NO, _NO, np.zeros(0, np.bool_))
T = TypeVar("T")
SAMPLE_KINDS = ("mark", "index", "premium")


class Lru:
    """A thread-safe LRU bounded by a total weight (the server, its worker threads and tests
    share one Market). Each entry weighs 1 unless ``weigh`` says otherwise (e.g. bytes).
    """

    def __init__(self, budget: int, weigh: Callable[[object], int] | None = None) -> None:
        """Keep entries while their total weight is within ``budget``."""
        self.budget = budget
        self._weigh = weigh or (lambda _: 1)
        self._data: OrderedDict[tuple[object, ...], tuple[object, int]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...], make: Callable[[], T]) -> T:
        """The cached value of ``key``, made (outside the lock) on a miss."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key][0]  # type: ignore[return-value]
        value = make()
        weight = self._weigh(value)
        with self._lock:
            if key not in self._data:
                self._data[key] = (value, weight)
                self._total += weight
            while self._total > self.budget and len(self._data) > 1:
                self._total -= self._data.popitem(last=False)[1][1]
        return value


class Market:
    """History of every configured symbol, generated on demand and cached per hour."""

    def __init__(self, config: ExchangeConfig) -> None:
        """Create the market of ``config`` (cheap: nothing is generated yet)."""
        self.config = config
        self.seed = config.seed
        self._paths: dict[str, PricePath] = {}
        self._aggs = Lru(96)  # ~2.5 MB per hour at the default activity
        self._books = Lru(48)
        self._small = Lru(20_000)  # minute bars and liquidations: a few KB each

    def spec(self, market: str, symbol: str) -> SymbolSpec:
        """Spec of a listed symbol. Raises KeyError if it is not listed."""
        spec = self.config.spec(market, symbol)
        if spec is None:
            raise KeyError(f"{market}:{symbol}")
        return spec

    def path(self, spec: SymbolSpec) -> PricePath:
        """The shared price path of ``spec.symbol``."""
        if spec.symbol not in self._paths:
            self._paths[spec.symbol] = PricePath(self.seed, spec)
        return self._paths[spec.symbol]

    # --- trades -----------------------------------------------------------------------------

    def agg_hour(self, spec: SymbolSpec, hour: int) -> AggBlock:
        """All aggTrades of one hour."""
        key = (spec.market, spec.symbol, hour)
        return self._aggs.get(key, lambda: generate_hour(self.seed, spec, self.path(spec), hour))

    def aggs_between(self, spec: SymbolSpec, start_ms: int, end_ms: int) -> AggBlock:
        """AggTrades with trade time in ``[start_ms, end_ms]`` (ms, inclusive)."""
        if end_ms < start_ms:
            return concat([])
        parts = []
        for h in range(start_ms // MS_HOUR, end_ms // MS_HOUR + 1):
            b = self.agg_hour(spec, h)
            t = b.t_ms
            i, j = np.searchsorted(t, start_ms), np.searchsorted(t, end_ms, side="right")
            parts.append(b.take(int(i), int(j)))
        return concat(parts)

    def aggs_from_id(self, spec: SymbolSpec, from_id: int, limit: int, now_ms: int) -> AggBlock:
        """Up to ``limit`` aggTrades from id ``from_id`` that happened by ``now_ms``."""
        parts, need = [], limit
        h = hour_of_agg_id(spec, from_id)
        while need > 0 and h * MS_HOUR <= now_ms:
            b = self.agg_hour(spec, h)
            i = max(0, from_id - first_agg_id(spec, h))
            j = min(len(b), i + need, int(np.searchsorted(b.t_ms, now_ms, side="right")))
            if j > i:
                parts.append(b.take(i, j))
                need -= j - i
            h += 1
        return concat(parts)

    def trades_from_id(
        self, spec: SymbolSpec, from_id: int, limit: int, now_ms: int
    ) -> tuple[I64, I64, I64, I64, npt.NDArray[np.bool_]]:
        """Up to ``limit`` trades from id ``from_id`` that happened by ``now_ms``.

        Returns ids, price units, qty lots, trade time (µs) and buyer-is-maker, one per trade:
        the very rows the ``@trade`` stream prints.
        """
        blocks: list[AggBlock] = []
        have = 0
        h = hour_of_trade_id(spec, from_id)
        while have < limit and h * MS_HOUR <= now_ms:
            b = self.agg_hour(spec, h)
            h += 1
            if len(b):
                blocks.append(b)
                have += int(b.last[-1]) - max(from_id, int(b.first[0])) + 1
        ids, price, qty, t_us, _, maker = concat(blocks).trade_rows() if blocks else _NO_TRADES
        i = int(np.searchsorted(ids, from_id))
        j = min(len(ids), i + limit, int(np.searchsorted(t_us // 1000, now_ms, side="right")))
        return ids[i:j], price[i:j], qty[i:j], t_us[i:j], maker[i:j]

    def last_aggs(self, spec: SymbolSpec, limit: int, now_ms: int) -> AggBlock:
        """The ``limit`` most recent aggTrades at ``now_ms``."""
        parts: list[AggBlock] = []
        need, h = limit, now_ms // MS_HOUR
        while need > 0 and h >= genesis_hour(spec):
            b = self.agg_hour(spec, h)
            j = int(np.searchsorted(b.t_ms, now_ms, side="right"))
            i = max(0, j - need)
            parts.insert(0, b.take(i, j))
            need -= j - i
            h -= 1
        return concat(parts)

    # --- trade klines -----------------------------------------------------------------------

    def minute_bars(self, spec: SymbolSpec, hour: int) -> kl.Bars:
        """The 60 one-minute bars of a past hour (cached)."""
        return self._small.get(
            ("1m", spec.market, spec.symbol, hour), lambda: self._minutes(spec, hour)
        )

    def _minutes(self, spec: SymbolSpec, hour: int, now_ms: int | None = None) -> kl.Bars:
        block = self.agg_hour(spec, hour)
        if now_ms is not None:
            block = block.take(0, int(np.searchsorted(block.t_ms, now_ms, side="right")))
        return kl.bars_from_trades(block, hour * MS_HOUR, 60_000, 60, self._prev_close(spec, hour))

    def _prev_close(self, spec: SymbolSpec, hour: int) -> int:
        # Carry the last traded price into empty bars; past a day of silence, use the mid.
        for h in range(hour - 1, max(hour - 25, genesis_hour(spec) - 1), -1):
            b = self.agg_hour(spec, h)
            if len(b):
                return int(b.price[-1])
        mid = float(self.path(spec).spot_mid(np.array([hour * MS_HOUR]))[0])
        ticks: int = round(mid * float(10**spec.price_dec) / spec.tick_units)
        return ticks * spec.tick_units

    def trade_klines(self, spec: SymbolSpec, interval: str, opens: I64, now_ms: int) -> kl.Bars:
        """Trade klines opening at ``opens`` (ascending), built from trades up to ``now_ms``.

        A bar still in progress at ``now_ms`` holds only what traded so far; bars that open
        after ``now_ms`` are left out.
        """
        opens = opens[opens <= now_ms]
        if not len(opens):
            return kl.concat_bars([])
        last_close = int(kl.next_open(opens[-1], interval))
        # Never look at hours after "now": an empty bar must not carry a future close.
        hours = range(int(opens[0]) // MS_HOUR, min(last_close - 1, now_ms) // MS_HOUR + 1)
        width = 1000 if interval == "1s" else 60_000
        parts = []
        for h in hours:
            if interval != "1s" and (h + 1) * MS_HOUR <= now_ms:
                parts.append(self.minute_bars(spec, h))
                continue
            block = self.agg_hour(spec, h)
            block = block.take(0, int(np.searchsorted(block.t_ms, now_ms, side="right")))
            prev = self._prev_close(spec, h)
            n = MS_HOUR // width
            parts.append(kl.bars_from_trades(block, h * MS_HOUR, width, n, prev))
        bars = kl.concat_bars(parts)
        bars = bars.take((bars.open_time >= opens[0]) & (bars.open_time <= now_ms))
        if interval in ("1s", "1m"):
            return bars.take(np.isin(bars.open_time, opens))
        return kl.roll_up(bars.take(bars.open_time < last_close), opens, interval)

    # --- sampled series: mark, index, premium ---------------------------------------------------

    def samples(self, spec: SymbolSpec, kind: str, start_ms: int, end_ms: int) -> tuple[I64, I64]:
        """Samples of ``kind`` in ``[start_ms, end_ms)`` as (times, values in 1e-8 units).

        Mark and index are sampled every second, the premium index every 5 s (Binance's 1m
        example bars count 60 and 12 samples).
        """
        step = 5 * MS_SECOND if kind == "premium" else MS_SECOND
        first = -(-start_ms // step) * step
        t = np.arange(first, end_ms, step, dtype=np.int64)
        path = self.path(spec)
        if kind == "mark":
            ticks = np.rint(path.mark(t) * 10**spec.price_dec / spec.tick_units).astype(np.int64)
            return t, ticks * spec.tick_units * 10 ** (8 - spec.price_dec)
        values = path.index(t) if kind == "index" else path.premium(t)
        return t, np.rint(values * 1e8).astype(np.int64)

    def sample_klines(
        self, spec: SymbolSpec, kind: str, interval: str, opens: I64, now_ms: int
    ) -> kl.Bars:
        """Mark/index/premium klines opening at ``opens``, from samples taken by ``now_ms``."""
        if not len(opens):
            return kl.concat_bars([])
        closes = kl.next_open(opens, interval)
        t, v = self.samples(spec, kind, int(opens[0]), min(int(closes[-1]), now_ms + 1))
        keep = opens <= t[-1] if len(t) else opens < opens[0]
        return kl.bars_from_samples(
            v, t, opens[keep], np.minimum(closes[keep], t[-1] + 1) if len(t) else closes[keep]
        )

    # --- book, liquidations, funding, metrics ----------------------------------------------------

    def book_hour(self, spec: SymbolSpec, hour: int) -> BookBlock:
        """All book ticker updates of one hour."""
        key = (spec.market, spec.symbol, hour)
        return self._books.get(
            key, lambda: generate_book_hour(self.seed, spec, self.path(spec), hour)
        )

    def liq_hour(self, spec: SymbolSpec, hour: int) -> LiqBlock:
        """All liquidations of one hour."""
        key = ("liq", spec.symbol, hour)
        return self._small.get(
            key, lambda: generate_liq_hour(self.seed, spec, self.path(spec), hour)
        )

    def funding(self, spec: SymbolSpec, start_ms: int, end_ms: int) -> Funding:
        """Funding settlements with nominal time in ``[start_ms, end_ms]``."""
        return funding_between(self.seed, spec, self.path(spec), start_ms, end_ms)

    def metrics(self, spec: SymbolSpec, t_ms: I64) -> Metrics:
        """Metrics snapshots at slot times ``t_ms``."""
        return metrics_at(self.seed, spec, self.path(spec), t_ms)

    def taker_volumes(self, spec: SymbolSpec, ends: I64, period_ms: int) -> tuple[I64, I64]:
        """Taker buy and sell volume (lots) over ``[end - period, end)`` for each end."""
        if not len(ends):
            z = np.zeros(0, dtype=np.int64)
            return z, z
        start = int(ends[0]) - period_ms
        opens = kl.opens_between(start, int(ends[-1]) - 60_000, "1m")
        bars = self.trade_klines(spec, "1m", opens, int(ends[-1]))
        cb = np.concatenate([[0], np.cumsum(bars.taker_base)])
        cv = np.concatenate([[0], np.cumsum(bars.volume)])
        hi = np.searchsorted(bars.open_time, ends)
        lo = np.searchsorted(bars.open_time, ends - period_ms)
        buy = cb[hi] - cb[lo]
        return buy.astype(np.int64), (cv[hi] - cv[lo] - buy).astype(np.int64)


def slot_times(start_ms: int, end_ms: int, period_ms: int = SLOT_MS) -> I64:
    """Multiples of ``period_ms`` in ``[start_ms, end_ms]``."""
    first = -(-start_ms // period_ms) * period_ms
    return np.arange(first, end_ms + 1, period_ms, dtype=np.int64)
