"""Stream names, route rules and per-subscription cursors over the market's events.

A subscription walks the events of its stream in event-time order, hour by hour, and emits those
whose event time ``E`` has passed on the exchange clock. Framed hours are cached and shared by all
connections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from lake.exchange import wsencode as enc
from lake.exchange.clock import Clock
from lake.exchange.config import SymbolSpec
from lake.exchange.kline_stream import hour_events
from lake.exchange.klines import INTERVALS
from lake.exchange.market import Market, _Lru
from lake.exchange.prices import MS_HOUR, S_JITTER, hashed_uniform, next_funding_time
from lake.exchange.wsframe import Framed, build

# USD-M split routes (BINANCE.md §1.1): high-frequency book streams on /public, the rest on /market.
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


class Feeds:
    """Framed hours of every stream, cached across connections."""

    def __init__(self, market: Market, size: int = 24) -> None:
        """Share ``market``; keep ``size`` framed stream-hours."""
        self.market = market
        self._cache = _Lru(size)

    def hour(self, spec: SymbolSpec, key: StreamKey, combined: bool, hour: int) -> Framed:
        """The framed messages of one stream-hour (wrapped when ``combined``)."""
        ck = (spec.market, key.name, combined, hour)
        return self._cache.get(ck, lambda: self._build(spec, key, combined, hour))

    def _build(self, spec: SymbolSpec, key: StreamKey, combined: bool, hour: int) -> Framed:
        e, payloads = self._encode(spec, key, hour)
        return build(e, payloads, key.name if combined else None)

    def _encode(
        self, spec: SymbolSpec, key: StreamKey, hour: int
    ) -> tuple[np.ndarray, list[bytes]]:
        m = self.market
        if key.kind == "aggTrade":
            b = m.agg_hour(spec, hour)
            return b.e_ms, enc.agg_trades(spec, b) if len(b) else []
        if key.kind == "trade":
            b = m.agg_hour(spec, hour)
            return enc.trades(spec, b) if len(b) else (b.e_ms, [])
        if key.kind == "bookTicker":
            bk = m.book_hour(spec, hour)
            return bk.e_ms, enc.book_tickers(spec, bk) if len(bk) else []
        if key.kind == "forceOrder":
            lq = m.liq_hour(spec, hour)
            return lq.e_ms, enc.force_orders(spec, lq) if len(lq) else []
        if key.kind == "kline":
            e, closes, closed, bars = hour_events(m, spec, key.interval, hour)
            return e, enc.kline_events(spec, key.interval, e, closes, closed, bars) if len(
                e
            ) else []
        if key.kind == "markPrice":
            return self._marks(spec, key, hour)
        return np.zeros(0, dtype=np.int64), []  # depth: routed, but not simulated

    def _marks(self, spec: SymbolSpec, key: StreamKey, hour: int) -> tuple[np.ndarray, list[bytes]]:
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
        return e, enc.mark_prices(spec, e, mark, settle, idx, rate, next_funding_time(e))


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
        self.framed = self._load()
        self.index = 0
        while True:
            self.index = int(np.searchsorted(self.framed.e_ms, now, side="right"))
            if self.index < len(self.framed) or (self.hour + 1) * MS_HOUR > now:
                break
            self.hour += 1
            self.framed = self._load()

    def _load(self) -> Framed:
        return self.feeds.hour(self.spec, self.key, self.combined, self.hour)

    def _next_e(self, now_ms: int) -> int:
        while self.index >= len(self.framed):
            if (self.hour + 1) * MS_HOUR > now_ms:
                return (self.hour + 1) * MS_HOUR  # the next hour has not begun
            self.hour += 1
            self.index = 0
            self.framed = self._load()
        return int(self.framed.e_ms[self.index])

    def take(self, max_n: int) -> tuple[Framed, int, int]:
        """The due run ``framed[i:j]`` (``E <= now``, at most ``max_n``); advances past it."""
        now = self.clock.now_ms()
        i = self.index
        if self._next_e(now) > now:
            return self.framed, self.index, self.index
        i = self.index
        j = min(int(np.searchsorted(self.framed.e_ms, now, side="right")), i + max_n)
        self.index = j
        return self.framed, i, j

    def wake_in(self) -> float:
        """Wall seconds until the next event is due."""
        return self.clock.wall_seconds_until(self._next_e(self.clock.now_ms()))
