"""Best bid/ask updates (bookTicker) of one symbol-hour.

Every hour holds exactly ``books_per_hour`` updates; update ids ``u`` rise by a seeded jump of up
to ``_STRIDE`` each, so they are strictly increasing across hours and closed-form per hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lake.exchange.config import SymbolSpec
from lake.exchange.prices import MS_HOUR, S_BOOK, PricePath, rng
from lake.exchange.trades import genesis_hour

I64 = npt.NDArray[np.int64]

_STRIDE = 64


@dataclass(frozen=True, slots=True)
class BookBlock:
    """Consecutive book ticker updates: ids, times, and best levels in price units / lots."""

    u: I64
    t_ms: I64
    e_ms: I64
    bid: I64
    bid_qty: I64
    ask: I64
    ask_qty: I64

    def __len__(self) -> int:
        return len(self.u)

    def take(self, start: int, stop: int) -> BookBlock:
        """Rows ``start:stop``."""
        s = slice(start, stop)
        return BookBlock(
            self.u[s],
            self.t_ms[s],
            self.e_ms[s],
            self.bid[s],
            self.bid_qty[s],
            self.ask[s],
            self.ask_qty[s],
        )


def book_origin(spec: SymbolSpec) -> int:
    """Update id at genesis (spot ids are ~100x smaller than USD-M ones, as on Binance)."""
    base = 40_000_000_000 if spec.market == "spot" else 4_000_000_000_000
    return base + (spec.market_key % 1013) * 1_000_000_000


def generate_book_hour(seed: int, spec: SymbolSpec, path: PricePath, hour: int) -> BookBlock:
    """All book ticker updates of one symbol-hour."""
    z = np.zeros(0, dtype=np.int64)
    if hour < genesis_hour(spec):
        return BookBlock(z, z, z, z, z, z, z)
    m = spec.books_per_hour
    g = rng(seed, spec.market_key, S_BOOK, hour)
    h0 = hour * MS_HOUR
    t = h0 + np.sort(g.integers(0, MS_HOUR, m))
    mid = path.mark(t) if spec.market == "um" else path.spot_mid(t)
    tick = spec.tick_units
    bid_ticks = np.floor(mid * 10**spec.price_dec / tick).astype(np.int64)
    spread = 1 + (g.random(m) < 0.15)
    lots_mean = max(1.0, spec.mean_qty * 10**spec.qty_dec) * 20
    sizes = np.maximum(1, np.rint(g.lognormal(np.log(lots_mean) - 0.7, 1.2, (2, m))))
    u0 = book_origin(spec) + (hour - genesis_hour(spec)) * m * _STRIDE
    u = u0 + np.arange(m, dtype=np.int64) * _STRIDE + g.integers(0, _STRIDE, m)
    e = np.maximum.accumulate(np.maximum(t + g.integers(0, 6, m), h0 + 6))
    return BookBlock(
        u=u.astype(np.int64),
        t_ms=t.astype(np.int64),
        e_ms=e.astype(np.int64),
        bid=(bid_ticks * tick).astype(np.int64),
        bid_qty=sizes[0].astype(np.int64),
        ask=((bid_ticks + spread) * tick).astype(np.int64),
        ask_qty=sizes[1].astype(np.int64),
    )
