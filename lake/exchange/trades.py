"""Trades and aggTrades of one symbol-hour, vectorised.

Id model: every hour holds exactly ``N = aggs_per_hour`` aggTrades and ``K*N`` trades, so the first
ids of hour ``h`` are ``origin + (h - genesis_hour) * N`` (and ``* K*N`` for trades) without
generating any earlier hour. Inside the hour only times, prices, sizes and the split of trades
between aggTrades are random, seeded by ``(seed, market, symbol, hour)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lake.exchange.config import SymbolSpec
from lake.exchange.prices import MS_HOUR, S_TRADES, PricePath, rng

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

_QTY_SIGMA = 1.1
_MAX_LATENCY_MS = 120


@dataclass(frozen=True, slots=True)
class AggBlock:
    """Consecutive aggTrades (ids contiguous), one row per aggTrade.

    Attributes:
        a: aggTrade ids. price: integer price units. qty: integer lots. first/last: trade ids.
        t_us: trade time in µs. e_ms: WebSocket event time (non-decreasing). maker: buyer is maker.
        trade_qty: lots of each individual trade, ids ``first[0] .. last[-1]``.
    """

    a: I64
    price: I64
    qty: I64
    first: I64
    last: I64
    t_us: I64
    e_ms: I64
    maker: BOOL
    trade_qty: I64

    def __len__(self) -> int:
        return len(self.a)

    @property
    def t_ms(self) -> I64:
        """Trade time in ms (what USD-M and default spot surfaces print)."""
        return self.t_us // 1000

    def take(self, start: int, stop: int) -> AggBlock:
        """Rows ``start:stop`` (and their trades)."""
        start, stop = max(0, start), min(len(self), max(start, stop))
        if start >= stop:
            return empty_block()
        t0 = int(self.first[start] - self.first[0])
        t1 = int(self.last[stop - 1] - self.first[0]) + 1
        return AggBlock(
            self.a[start:stop],
            self.price[start:stop],
            self.qty[start:stop],
            self.first[start:stop],
            self.last[start:stop],
            self.t_us[start:stop],
            self.e_ms[start:stop],
            self.maker[start:stop],
            self.trade_qty[t0:t1],
        )

    def trade_rows(self) -> tuple[I64, I64, I64, I64, I64, BOOL]:
        """Expand to one row per trade: ids, price, qty, t_us, e_ms, maker."""
        counts = self.last - self.first + 1
        ids = np.arange(int(self.first[0]), int(self.last[-1]) + 1, dtype=np.int64)
        rep = np.repeat
        return (
            ids,
            rep(self.price, counts),
            self.trade_qty,
            rep(self.t_us, counts),
            rep(self.e_ms, counts),
            rep(self.maker, counts),
        )


def empty_block() -> AggBlock:
    """An AggBlock with no rows."""
    z = np.zeros(0, dtype=np.int64)
    return AggBlock(z, z, z, z, z, z, z, np.zeros(0, dtype=np.bool_), z)


def concat(blocks: list[AggBlock]) -> AggBlock:
    """Join consecutive blocks (ids must already be contiguous)."""
    blocks = [b for b in blocks if len(b)]
    if not blocks:
        return empty_block()
    if len(blocks) == 1:
        return blocks[0]
    cat = np.concatenate
    return AggBlock(
        cat([b.a for b in blocks]),
        cat([b.price for b in blocks]),
        cat([b.qty for b in blocks]),
        cat([b.first for b in blocks]),
        cat([b.last for b in blocks]),
        cat([b.t_us for b in blocks]),
        cat([b.e_ms for b in blocks]),
        cat([b.maker for b in blocks]),
        cat([b.trade_qty for b in blocks]),
    )


def genesis_hour(spec: SymbolSpec) -> int:
    """Index of the first hour with trades."""
    return -(-spec.genesis_ms // MS_HOUR)


def first_agg_id(spec: SymbolSpec, hour: int) -> int:
    """Id of the first aggTrade of ``hour`` (closed-form)."""
    return spec.agg_id_origin + (max(hour, genesis_hour(spec)) - genesis_hour(spec)) * (
        spec.aggs_per_hour
    )


def hour_of_agg_id(spec: SymbolSpec, agg_id: int) -> int:
    """The hour that holds aggTrade ``agg_id`` (ids before the origin map to genesis)."""
    return genesis_hour(spec) + max(0, agg_id - spec.agg_id_origin) // spec.aggs_per_hour


def hour_of_trade_id(spec: SymbolSpec, trade_id: int) -> int:
    """The hour that holds trade ``trade_id`` (every hour has ``trades_per_hour`` trades)."""
    return genesis_hour(spec) + max(0, trade_id - spec.trade_id_origin) // spec.trades_per_hour


def generate_hour(seed: int, spec: SymbolSpec, path: PricePath, hour: int) -> AggBlock:
    """All aggTrades (and their trades) of one symbol-hour."""
    if hour < genesis_hour(spec):
        return empty_block()
    n, k = spec.aggs_per_hour, spec.trades_per_agg
    g = rng(seed, spec.market_key, S_TRADES, hour)
    h0_ms = hour * MS_HOUR
    t_us = h0_ms * 1000 + np.sort(g.integers(0, MS_HOUR * 1000, n))
    counts = np.ones(n, dtype=np.int64)
    if k > 1:
        counts += np.bincount(g.integers(0, n, (k - 1) * n), minlength=n)
    lots_mean = max(1.0, spec.mean_qty * 10**spec.qty_dec)
    mu = np.log(lots_mean) - _QTY_SIGMA**2 / 2
    trade_qty = np.maximum(1, np.rint(g.lognormal(mu, _QTY_SIGMA, k * n))).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    qty = np.add.reduceat(trade_qty, starts)
    maker = g.random(n) < 0.5
    t_ms = t_us // 1000
    mid = path.mark(t_ms) if spec.market == "um" else path.spot_mid(t_ms)
    tick = spec.tick_units
    bid = np.floor(mid * 10**spec.price_dec / tick).astype(np.int64)
    # Most fills hit the touch; a few sweep one or more levels.
    sweep = g.geometric(0.85, n) - 1
    price = np.where(maker, bid - sweep, bid + 1 + sweep) * tick
    lat = g.integers(1, _MAX_LATENCY_MS, n)
    # Event times never run backwards, and never before the previous hour's last event.
    e_ms = np.maximum.accumulate(np.maximum(t_ms + lat, h0_ms + _MAX_LATENCY_MS))
    a0 = first_agg_id(spec, hour)
    f0 = spec.trade_id_origin + (hour - genesis_hour(spec)) * n * k
    first = f0 + starts
    return AggBlock(
        a=np.arange(a0, a0 + n, dtype=np.int64),
        price=price.astype(np.int64),
        qty=qty,
        first=first,
        last=first + counts - 1,
        t_us=t_us,
        e_ms=e_ms,
        maker=maker,
        trade_qty=trade_qty,
    )
