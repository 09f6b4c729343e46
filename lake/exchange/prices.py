"""Price paths: spot mid, index, premium, mark and funding; pure functions of (seed, symbol, time).

The log-price at each hour boundary (the *anchor*) is closed-form: a few slow sinusoids with seeded
phases plus hashed per-hour noise. Inside an hour the path is a Brownian bridge between the two
anchors at one-second resolution, so any second of history is computable without the hours
before it, and both markets of a symbol share one underlying price.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from lake.exchange.config import SymbolSpec

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

MS_SECOND = 1_000
MS_MINUTE = 60_000
MS_HOUR = 3_600_000
MS_DAY = 86_400_000
FUNDING_MS = 8 * MS_HOUR

# Stream tags keep each random quantity independent of the others.
S_ANCHOR, S_BRIDGE, S_TRADES, S_BOOK, S_LIQ, S_INDEX, S_PREMIUM, S_METRICS, S_JITTER = range(1, 10)

_PERIODS_H = np.array([24 * 3.0, 24 * 11.0, 24 * 37.0, 24 * 113.0, 24 * 367.0])
_AMPS = np.array([0.01, 0.025, 0.05, 0.1, 0.2])
_HOURLY_VOL = 0.004
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator seeded by ``(seed, *keys)``; equal keys give equal streams in every process."""
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *keys]))


def _splitmix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
        return x ^ (x >> np.uint64(31))


def hashed_uniform(seed: int, key: int, stream: int, idx: npt.ArrayLike) -> F64:
    """Counter-based uniforms in [0, 1): vectorised and random-access, unlike a Generator."""
    i = np.asarray(idx, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        salt = _splitmix(np.array([(seed * 1_000_003 + key) * 97 + stream], dtype=np.uint64))
        bits = _splitmix(i ^ salt)
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def hashed_normal(seed: int, key: int, stream: int, idx: npt.ArrayLike) -> F64:
    """Counter-based standard normals (Box-Muller over two hashed uniforms)."""
    u1 = hashed_uniform(seed, key, stream, idx)
    u2 = hashed_uniform(seed, key, stream + 1000, idx)
    return np.asarray(np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2 * np.pi * u2), dtype=np.float64)


class PricePath:
    """The shared price of one symbol (both markets) for one seed."""

    def __init__(self, seed: int, spec: SymbolSpec) -> None:
        """Build the path of ``spec.symbol``; only the symbol and base price matter."""
        self.seed = seed
        self.key = spec.key
        self.log_base = float(np.log(spec.base_price))
        g = rng(seed, self.key, S_ANCHOR)
        self._phases = g.uniform(0, 2 * np.pi, len(_PERIODS_H))
        self._p_phase = g.uniform(0, 2 * np.pi, 2)
        self._bridge = lru_cache(maxsize=4096)(self._bridge_hour)

    def log_anchor(self, hours: npt.ArrayLike) -> F64:
        """Log spot mid at the start of each hour index (closed-form)."""
        h = np.asarray(hours, dtype=np.float64)
        waves = _AMPS * np.sin(2 * np.pi * h[..., None] / _PERIODS_H + self._phases)
        noise = _HOURLY_VOL * hashed_normal(self.seed, self.key, S_ANCHOR, h.astype(np.int64))
        return np.asarray(self.log_base + waves.sum(axis=-1) + noise, dtype=np.float64)

    def _bridge_hour(self, hour: int) -> F64:
        ends = self.log_anchor(np.array([hour, hour + 1]))
        steps = rng(self.seed, self.key, S_BRIDGE, hour).normal(0.0, _HOURLY_VOL / 60, 3600)
        walk = np.concatenate([[0.0], np.cumsum(steps)])
        frac = np.arange(3601) / 3600.0
        bridge = walk - frac * walk[-1]
        path = np.asarray(ends[0] + frac * (ends[1] - ends[0]) + bridge, dtype=np.float64)
        path.setflags(write=False)
        return path

    def log_mid_seconds(self, hour: int) -> F64:
        """Log spot mid at each second of ``hour`` (3601 points; the last is the next hour's 0)."""
        return self._bridge(hour)

    def spot_mid(self, t_ms: npt.ArrayLike) -> F64:
        """Spot mid price at times ``t_ms`` (linear between the one-second points)."""
        t = np.asarray(t_ms, dtype=np.int64)
        out = np.empty(t.shape, dtype=np.float64)
        hours = t // MS_HOUR
        for h in np.unique(hours):
            sel = hours == h
            pos = (t[sel] - int(h) * MS_HOUR) / 1000.0
            out[sel] = np.exp(np.interp(pos, np.arange(3601.0), self._bridge(int(h))))
        return out

    def premium(self, t_ms: npt.ArrayLike) -> F64:
        """Premium index (a small signed ratio): two slow waves plus per-second noise."""
        t = np.asarray(t_ms, dtype=np.int64)
        return self._premium_wave(t) + 2e-5 * hashed_normal(
            self.seed, self.key, S_PREMIUM, t // MS_SECOND
        )

    def _premium_wave(self, t: npt.NDArray[np.int64]) -> F64:
        s = t / 1000.0
        return np.asarray(
            2e-4 * np.sin(2 * np.pi * s / 86_400 / 2.7 + self._p_phase[0])
            + 1e-4 * np.sin(2 * np.pi * s / 3_600 / 5.3 + self._p_phase[1]),
            dtype=np.float64,
        )

    def index(self, t_ms: npt.ArrayLike) -> F64:
        """Index price: the spot mid with a little venue noise."""
        t = np.asarray(t_ms, dtype=np.int64)
        noise = 1e-5 * hashed_normal(self.seed, self.key, S_INDEX, t // MS_SECOND)
        return np.asarray(self.spot_mid(t) * (1 + noise), dtype=np.float64)

    def mark(self, t_ms: npt.ArrayLike) -> F64:
        """Mark price (unrounded): index times one plus premium; USD-M trades around it."""
        t = np.asarray(t_ms, dtype=np.int64)
        return np.asarray(self.index(t) * (1 + self.premium(t)), dtype=np.float64)

    def funding_rate(self, t_ms: npt.ArrayLike) -> F64:
        """Estimated funding rate at ``t``: interest plus the mean premium since the last settlement

        The mean of the premium waves over ``[last settlement, t]`` is closed-form, so the rate of
        any instant (and every settled rate) is random-access.
        """
        t = np.asarray(t_ms, dtype=np.int64)
        start = (t - 1) // FUNDING_MS * FUNDING_MS
        a, b = start / 1000.0, np.maximum(t, start + 1) / 1000.0
        mean = np.zeros(t.shape)
        for amp, period, phase in (
            (2e-4, 86_400 * 2.7, self._p_phase[0]),
            (1e-4, 3_600 * 5.3, self._p_phase[1]),
        ):
            w = 2 * np.pi / period
            mean += amp * (np.cos(w * a + phase) - np.cos(w * b + phase)) / (w * (b - a))
        rate = np.clip(1e-4 * 0.25 + 0.75 * mean, -0.00375, 0.00375)
        return np.asarray(np.round(rate, 8), dtype=np.float64)


def next_funding_time(e_ms: npt.ArrayLike) -> I64:
    """``T`` of a markPrice frame: the next settlement, rolling over ~1 s after it (obs 2023-04)."""
    e = np.asarray(e_ms, dtype=np.int64)
    return np.asarray(((e - 1000) // FUNDING_MS + 1) * FUNDING_MS, dtype=np.int64)


def to_units(price: F64, dec: int, tick_units: int = 1) -> I64:
    """Round prices to the tick and return integer units of ``10**-dec``."""
    ticks = np.round(np.asarray(price) * 10**dec / tick_units)
    return np.asarray(ticks.astype(np.int64) * tick_units, dtype=np.int64)
