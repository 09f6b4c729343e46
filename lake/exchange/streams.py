"""Stream names, route rules and per-subscription cursors over the market's events.

A subscription walks the events of its stream in event-time order, hour by hour, and emits those
whose event time ``E`` has passed on the exchange clock. Framed hours are cached and shared by all
connections.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lake.exchange import wsencode as enc
from lake.exchange.clock import Clock
from lake.exchange.config import SymbolSpec
from lake.exchange.kline_stream import hour_events
from lake.exchange.klines import INTERVALS
from lake.exchange.market import Lru, Market
from lake.exchange.prices import MS_HOUR, S_JITTER, hashed_uniform, next_funding_time
from lake.exchange.wsframe import Framed, build

I64 = npt.NDArray[np.int64]

# USD-M split routes (BINANCE.md §1.1): book streams on /public, the rest on /market.
PUBLIC_KINDS = {"bookTicker", "depth"}
MARKET_KINDS = {"aggTrade", "trade", "kline", "markPrice", "forceOrder"}
SPOT_KINDS = {"aggTrade", "trade", "kline", "bookTicker", "depth"}
LEGACY_RETIRED_MS = 1_776_902_400_000  # 2026-04-23: legacy USD-M URLs stop delivering

_NAME = re.compile(
    r"^(?P<sym>[a-z0-9]+)@(?P<kind>aggTrade|trade|bookTicker|forceOrder|markPrice(?:@1s)?"
    r"|kline_(?P<iv>\w+)|depth(?:\d+)?(?:@\d+ms)?)$"
)


@dataclass(frozen=True, slots=True)
class StreamKey:
    """A parsed stream name: symbol (upper case), kind, kline interval or markPrice period."""

    name: str
    symbol: str
    kind: str
    interval: str = ""
    period_s: int = 1


def parse_stream(name: str) -> StreamKey | None:
    """Parse ``btcusdt@kline_1m`` etc.; None for names Binance would not recognise."""
    m = _NAME.match(name)
    if not m:
        return None
    kind = m["kind"]
    if kind.startswith("kline_"):
        if m["iv"] not in INTERVALS:
            return None
        return StreamKey(name, m["sym"].upper(), "kline", m["iv"])
    if kind.startswith("markPrice"):
        return StreamKey(name, m["sym"].upper(), "markPrice", period_s=1 if "@1s" in kind else 3)
    if kind.startswith("depth"):
        return StreamKey(name, m["sym"].upper(), "depth")
    return StreamKey(name, m["sym"].upper(), kind)


def delivers(route: str, key: StreamKey, now_ms: int) -> bool:
    """Whether ``route`` delivers ``key`` (a stream asked on the wrong route stays silent)."""
    if route == "spot":
        return key.kind in SPOT_KINDS
    if route == "um_public":
        return key.kind in PUBLIC_KINDS
    if route == "um_market":
        return key.kind in MARKET_KINDS and key.interval != "1s"
    if route == "um_legacy":
        return now_ms < LEGACY_RETIRED_MS and key.interval != "1s"
    return False


PARTS = 12  # an hour of a stream is framed in 5-minute parts: quick to start, quick to roll
PART_MS = MS_HOUR // PARTS
Encoder = Callable[[int, int], list[bytes]]


class Feeds:
    """Framed parts of every stream, cached across connections."""

    def __init__(self, market: Market, budget_bytes: int = 256 * 1024 * 1024) -> None:
        """Share ``market``; keep framed parts up to ``budget_bytes``."""
        self.market = market
        self._framed = Lru(budget_bytes, lambda f: len(f.buf) if isinstance(f, Framed) else 1)
        self._tables = Lru(64)

    def part(
        self, spec: SymbolSpec, key: StreamKey, combined: bool, hour: int, part: int
    ) -> Framed:
        """Messages of one stream-hour whose ``E`` falls in its ``part``-th 5 minutes (the last
        part also holds the few events that spill past the hour), wrapped when ``combined``."""
        ck = (spec.market, key.name, combined, hour, part)
        return self._framed.get(ck, lambda: self._build(spec, key, combined, hour, part))

    def _build(
        self, spec: SymbolSpec, key: StreamKey, combined: bool, hour: int, part: int
    ) -> Framed:
        e, encode = self._tables.get(
            (spec.market, key.name, hour), lambda: self._table(spec, key, hour)
        )
        edges = np.searchsorted(e, hour * MS_HOUR + PART_MS * np.arange(1, PARTS))
        bounds = [0, *edges.tolist(), len(e)]
        i, j = bounds[part], bounds[part + 1]
        return build(e[i:j], encode(i, j) if j > i else [], key.name if combined else None)

    def _table(self, spec: SymbolSpec, key: StreamKey, hour: int) -> tuple[I64, Encoder]:
        """Event times of one stream-hour and an encoder of any run of its events."""
        m = self.market
        if key.kind in ("aggTrade", "trade"):
            b = m.agg_hour(spec, hour)
            if key.kind == "aggTrade":
                return b.e_ms, lambda i, j: enc.agg_trades(spec, b.take(i, j))
            counts = b.last - b.first + 1
            e = np.repeat(b.e_ms, counts)
            starts = np.concatenate([[0], np.cumsum(counts)])

            # Trade i..j of the hour: expand the aggTrades that hold them, then cut.
            def trades(i: int, j: int) -> list[bytes]:
                a0 = int(np.searchsorted(starts, i, side="right")) - 1
                a1 = int(np.searchsorted(starts, j, side="left"))
                sub = b.take(a0, a1)
                _, out = enc.trades(spec, sub)
                return out[i - int(starts[a0]) : j - int(starts[a0])]

            return e, trades
        if key.kind == "bookTicker":
            bk = m.book_hour(spec, hour)
            return bk.e_ms, lambda i, j: enc.book_tickers(spec, bk.take(i, j))
        if key.kind == "forceOrder":
            lq = m.liq_hour(spec, hour)
            return lq.e_ms, lambda i, j: enc.force_orders(spec, lq.take(i, j))
        if key.kind == "kline":
            e, closes, closed, bars = hour_events(m, spec, key.interval, hour)
            return e, lambda i, j: enc.kline_events(
                spec, key.interval, e[i:j], closes[i:j], closed[i:j], bars.take(slice(i, j))
            )
        if key.kind == "markPrice":
            return self._marks(spec, key, hour)
        return np.zeros(0, dtype=np.int64), lambda i, j: []  # depth: routed, not simulated

    def _marks(self, spec: SymbolSpec, key: StreamKey, hour: int) -> tuple[I64, Encoder]:
        m = self.market
        secs = np.arange(hour * 3600, (hour + 1) * 3600, key.period_s, dtype=np.int64)
        secs = secs[secs * 1000 >= spec.genesis_ms]
        # E lands on the second, a few ms late (obs: …000 to …012).
        jitter = (hashed_uniform(m.seed, spec.market_key, S_JITTER + 7, secs) * 13).astype(np.int64)
        e = secs * 1000 + jitter
        path = m.path(spec)
        t = secs * 1000
        mark = np.rint(path.mark(t) * 10**spec.price_dec / spec.tick_units).astype(np.int64)
        mark = mark * spec.tick_units * 10 ** (8 - spec.price_dec)
        index = path.index(t)
        settle = np.rint(index * (1 + path.premium(t) / 2) * 1e8).astype(np.int64)
        rate = np.rint(path.funding_rate(t) * 1e8).astype(np.int64)
        idx = np.rint(index * 1e8).astype(np.int64)
        nxt = next_funding_time(e)
        return e, lambda i, j: enc.mark_prices(
            spec, e[i:j], mark[i:j], settle[i:j], idx[i:j], rate[i:j], nxt[i:j]
        )


class Cursor:
    """One subscription's position in a simulated stream: the next event not yet sent."""

    def __init__(
        self, feeds: Feeds, spec: SymbolSpec, key: StreamKey, combined: bool, clock: Clock
    ) -> None:
        """Start at the first event after the clock's current time."""
        self.feeds, self.spec, self.key, self.combined = feeds, spec, key, combined
        self.clock = clock
        now = clock.now_ms()
        self.hour = (now - 1000) // MS_HOUR  # events of an hour spill < 1 s past its end
        self.part = min(PARTS - 1, (now - self.hour * MS_HOUR) // PART_MS)
        self.framed = self._load()
        self.index = int(np.searchsorted(self.framed.e_ms, now, side="right"))

    def _load(self) -> Framed:
        return self.feeds.part(self.spec, self.key, self.combined, self.hour, self.part)

    def _next_e(self, now_ms: int) -> int:
        while self.index >= len(self.framed):
            hour, part = (self.hour, self.part + 1) if self.part + 1 < PARTS else (self.hour + 1, 0)
            begins = hour * MS_HOUR + part * PART_MS
            if begins > now_ms:
                return begins  # the next part has not begun
            self.hour, self.part, self.index = hour, part, 0
            self.framed = self._load()
        return int(self.framed.e_ms[self.index])

    def now(self) -> float:
        """Exchange time (ms)."""
        return self.clock.now_ms()

    def take(self, max_n: int, now: float) -> tuple[Framed, int, int]:
        """The run ``framed[i:j]`` with ``E <= now`` (at most ``max_n``); advances past it."""
        now = int(now)
        if self._next_e(now) > now:
            return self.framed, self.index, self.index
        i = self.index
        j = min(int(np.searchsorted(self.framed.e_ms, now, side="right")), i + max_n)
        self.index = j
        return self.framed, i, j

    def wake_in(self) -> float:
        """Wall seconds until the next event is due."""
        return self.clock.wall_seconds_until(self._next_e(self.clock.now_ms()))
