"""USD-M derivatives data: liquidations, funding settlements and 5-minute metrics.

Metrics and funding are closed-form in time (hashed noise on slow waves); liquidations are drawn
per hour like trades. The taker buy/sell volumes of the metrics come from the trades themselves
(the caller passes them in), so every surface tells one story.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lake.exchange.config import SymbolSpec
from lake.exchange.prices import (
    FUNDING_MS,
    MS_HOUR,
    MS_SECOND,
    S_JITTER,
    S_LIQ,
    S_METRICS,
    PricePath,
    hashed_normal,
    hashed_uniform,
    rng,
)
from lake.exchange.trades import genesis_hour

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]

SLOT_MS = 300_000  # metrics cadence


@dataclass(frozen=True, slots=True)
class LiqBlock:
    """Forced liquidations: at most one per symbol-second, like the ``forceOrder`` snapshot stream.

    ``sell`` True means side SELL (a long was liquidated).
    """

    t_ms: I64
    e_ms: I64
    sell: BOOL
    qty: I64
    price: I64
    avg_price: I64

    def __len__(self) -> int:
        return len(self.t_ms)

    def take(self, start: int, stop: int) -> LiqBlock:
        """Rows ``start:stop``."""
        s = slice(start, stop)
        return LiqBlock(
            self.t_ms[s], self.e_ms[s], self.sell[s], self.qty[s], self.price[s], self.avg_price[s]
        )


def generate_liq_hour(seed: int, spec: SymbolSpec, path: PricePath, hour: int) -> LiqBlock:
    """All liquidations of one symbol-hour (USD-M)."""
    n = spec.liq_per_hour if hour >= genesis_hour(spec) else 0
    g = rng(seed, spec.market_key, S_LIQ, hour)
    secs = np.sort(g.choice(3600, size=min(n, 3600), replace=False)).astype(np.int64)
    t = hour * MS_HOUR + secs * MS_SECOND + g.integers(0, 900, len(secs))
    sell = g.random(len(secs)) < 0.5
    mark = path.mark(t)
    lots_mean = max(1.0, spec.mean_qty * 10**spec.qty_dec) * 5
    qty = np.maximum(1, np.rint(g.lognormal(np.log(lots_mean) - 0.8, 1.3, len(secs))))
    # The order is priced through the book (bankruptcy price); the fills average near the mark.
    slip = g.uniform(0.002, 0.012, len(secs))
    sign = np.where(sell, -1.0, 1.0)
    scale = 10**spec.price_dec / spec.tick_units
    price = np.rint(mark * (1 + sign * slip) * scale) * spec.tick_units
    avg = np.rint(mark * (1 + sign * slip / 4) * scale) * spec.tick_units
    return LiqBlock(
        t_ms=t.astype(np.int64),
        e_ms=(t + g.integers(1, 40, len(secs))).astype(np.int64),
        sell=sell,
        qty=qty.astype(np.int64),
        price=price.astype(np.int64),
        avg_price=avg.astype(np.int64),
    )


@dataclass(frozen=True, slots=True)
class Funding:
    """Funding settlements: jittered ``fundingTime`` (ms), rate, mark price."""

    settle_ms: I64
    funding_time: I64
    rate: F64
    mark: F64


def funding_between(seed: int, spec: SymbolSpec, path: PricePath, start: int, end: int) -> Funding:
    """Settlements with nominal time in ``[start, end]`` (and not before genesis)."""
    lo = max(start, spec.genesis_ms + FUNDING_MS)
    first = -(-lo // FUNDING_MS) * FUNDING_MS
    s = np.arange(first, end + 1, FUNDING_MS, dtype=np.int64)
    # Observed calc_time/fundingTime carry a few ms of jitter (…003, …008); half land on …000.
    u = hashed_uniform(seed, spec.key, S_JITTER, s // FUNDING_MS)
    jitter = np.where(u < 0.5, 0, np.floor((u - 0.5) * 2 * 20)).astype(np.int64)
    return Funding(s, s + jitter, path.funding_rate(s), path.mark(s))


@dataclass(frozen=True, slots=True)
class Metrics:
    """Five-minute metrics snapshots at ``t_ms`` (open interest in coins; ratios to 4 dp)."""

    t_ms: I64
    oi: F64
    oi_value: F64
    top_account: F64
    top_position: F64
    global_account: F64


def metrics_at(seed: int, spec: SymbolSpec, path: PricePath, t_ms: I64) -> Metrics:
    """Metrics snapshots at slot times ``t_ms`` (multiples of five minutes)."""
    k = t_ms // SLOT_MS
    day = k / 288.0

    def wave(stream: int, amp: float, period_days: float, noise: float) -> F64:
        phase = float(hashed_uniform(seed, spec.key, stream, [0])[0]) * 2 * np.pi
        n = hashed_normal(seed, spec.key, stream, k)
        return np.asarray(amp * np.sin(2 * np.pi * day / period_days + phase) + noise * n)

    oi = 4e8 / spec.base_price * np.exp(wave(S_METRICS, 0.15, 9.1, 0.003))
    oi = np.round(oi, spec.qty_dec)
    ratio = [
        np.asarray(np.round(np.exp(wave(S_METRICS + 10 * i, 0.3, 3.3 + i, 0.02)), 4), np.float64)
        for i in (1, 2, 3)
    ]
    return Metrics(
        t_ms=t_ms,
        oi=oi,
        oi_value=np.round(oi * path.mark(t_ms), 8),
        top_account=ratio[0],
        top_position=ratio[1],
        global_account=ratio[2],
    )
