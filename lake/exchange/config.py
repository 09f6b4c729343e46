"""Configuration of the built-in exchange: symbols, activity, connection rules, REST budgets.

Everything here is plain data. The market is a pure function of ``(seed, SymbolSpec, time)``, so two
processes built from equal configs serve the same history on every surface.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

Market = Literal["spot", "um"]
MARKETS: tuple[Market, ...] = ("spot", "um")

_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,16}$")

# Known symbols get realistic prices and precisions; anything else gets a price derived from its
# name, so the set of tradable symbols is open-ended but still deterministic.
_KNOWN: dict[str, tuple[float, int, int, int]] = {
    # symbol: (base price, um price decimals, um tick units, um qty decimals)
    "BTCUSDT": (60_000.0, 2, 10, 3),
    "ETHUSDT": (3_000.0, 2, 1, 3),
    "BNBUSDT": (550.0, 3, 10, 2),
    "SOLUSDT": (150.0, 4, 100, 0),
    "XRPUSDT": (0.6, 4, 1, 1),
    "DOGEUSDT": (0.15, 5, 1, 0),
    "ADAUSDT": (0.45, 4, 1, 0),
    "SUIUSDT": (1.2, 4, 1, 1),
}

GENESIS_MS = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One tradable instrument of one market.

    Prices are integers in units of ``10**-price_dec``; quantities in units of ``10**-qty_dec``.
    ``price_out_dec``/``qty_out_dec`` are the decimals printed on the wire (spot pads to 8).
    """

    market: Market
    symbol: str
    base_price: float
    price_dec: int
    tick_units: int
    qty_dec: int
    price_out_dec: int
    qty_out_dec: int
    agg_rate: float = 15.0
    trades_per_agg: int = 3
    book_rate: float = 5.0
    liq_per_hour: int = 30
    mean_qty: float = 0.0
    genesis_ms: int = GENESIS_MS

    @property
    def key(self) -> int:
        """A stable 32-bit key of the symbol (the same on both markets, so prices agree)."""
        return zlib.crc32(self.symbol.encode())

    @property
    def market_key(self) -> int:
        """A stable 32-bit key of (market, symbol), used to seed per-market randomness."""
        return zlib.crc32(f"{self.market}:{self.symbol}".encode())

    @property
    def aggs_per_hour(self) -> int:
        """The exact number of aggTrades in every hour (constant, so ids are closed-form)."""
        return max(1, round(self.agg_rate * 3600))

    @property
    def trades_per_hour(self) -> int:
        """The exact number of trades in every hour."""
        return self.aggs_per_hour * self.trades_per_agg

    @property
    def books_per_hour(self) -> int:
        """The exact number of book ticker updates in every hour."""
        return max(1, round(self.book_rate * 3600))

    @property
    def agg_id_origin(self) -> int:
        """The aggTrade id of the first aggTrade at genesis."""
        return 10_000_000 + (self.market_key % 997) * 1_000_000

    @property
    def trade_id_origin(self) -> int:
        """The trade id of the first trade at genesis."""
        return 30_000_000 + (self.market_key % 991) * 3_000_000

    @property
    def pair(self) -> str:
        """The underlying pair (equal to the symbol for perpetuals)."""
        return self.symbol

    @property
    def base_asset(self) -> str:
        """Base asset, e.g. ``BTC`` for ``BTCUSDT``."""
        return self.symbol[: -len(self.quote_asset)]

    @property
    def quote_asset(self) -> str:
        """Quote asset, e.g. ``USDT`` for ``BTCUSDT``."""
        return next(q for q in _QUOTES if self.symbol.endswith(q))


def split_symbol(symbol: str) -> tuple[str, str]:
    """``(base, quote)`` by the known quote assets: ``BTCUSDT`` → ``("BTC", "USDT")``.

    The quote is ``""`` when the symbol ends in none of them.
    """
    sym = symbol.upper()
    quote = next((q for q in _QUOTES if sym.endswith(q) and len(sym) > len(q)), "")
    return sym[: len(sym) - len(quote)], quote


def make_spec(market: Market, symbol: str, **overrides: float | int) -> SymbolSpec:
    """Build the spec of ``symbol`` on ``market`` with realistic precisions.

    Args:
        market: ``"spot"`` or ``"um"``.
        symbol: upper-case symbol such as ``BTCUSDT``.
        **overrides: any SymbolSpec field (e.g. ``agg_rate=2.0``).

    Raises:
        ValueError: if the symbol is not a plausible Binance symbol, or an activity override is
            out of range (rates must be more than 0; ``trades_per_agg`` at least 1).
    """
    _check_activity(overrides)
    sym = symbol.upper()
    if not _SYMBOL_RE.match(sym) or not any(sym.endswith(q) and len(sym) > len(q) for q in _QUOTES):
        raise ValueError(
            f"bad symbol {symbol!r}: expected letters/digits ending in a quote asset "
            f"({', '.join(_QUOTES)}), e.g. BTCUSDT"
        )
    if sym in _KNOWN:
        base, um_pd, um_tick, um_qd = _KNOWN[sym]
    else:
        # Unknown symbols: a price between 0.01 and 1000 derived from the name.
        base = 10 ** ((zlib.crc32(sym.encode()) % 500) / 100 - 2)
        um_pd = max(1, min(6, 5 - int(f"{base:e}".split("e")[1])))
        um_tick, um_qd = 1, max(0, min(3, 3 - um_pd + 2))
    if market == "um":
        spec = SymbolSpec("um", sym, base, um_pd, um_tick, um_qd, um_pd, um_qd)
    else:
        # Spot trades on a finer tick and lot than USD-M and prints every number with 8 decimals.
        pd = min(8, um_pd)
        qd = min(8, um_qd + 2)
        spec = SymbolSpec("spot", sym, base, pd, 1, qd, 8, 8)
    mean_qty = overrides.pop("mean_qty", 0.0) or 2_000.0 / base  # about 2,000 USDT a trade
    return replace(spec, mean_qty=float(mean_qty), **overrides)  # type: ignore[arg-type]


_LEAST: dict[str, tuple[float, bool]] = {
    # field: (bound, whether the bound itself is allowed)
    "agg_rate": (0, False),
    "book_rate": (0, False),
    "trades_per_agg": (1, True),
    "liq_per_hour": (0, True),
}


def _check_activity(overrides: dict[str, float | int]) -> None:
    for name, (bound, inclusive) in _LEAST.items():
        value = overrides.get(name)
        if value is None:
            continue
        ok = math.isfinite(value) and (value >= bound if inclusive else value > bound)
        if not ok:
            least = f"at least {bound}" if inclusive else f"more than {bound}"
            raise ValueError(f"{name} {value!r} is out of range: it must be {least}")


def parse_symbols(text: str, **overrides: float | int) -> tuple[SymbolSpec, ...]:
    """Parse ``--symbols``: ``BTCUSDT,ETHUSDT`` (both markets) or ``spot:X,um:Y``.

    Raises:
        ValueError: on an empty list, an unknown market prefix or a bad symbol.
    """
    specs: list[SymbolSpec] = []
    for raw in (s.strip() for s in text.split(",")):
        if not raw:
            continue
        markets: tuple[Market, ...] = MARKETS
        if ":" in raw:
            prefix, raw = raw.split(":", 1)
            if prefix not in MARKETS:
                raise ValueError(f"bad market {prefix!r} in --symbols: use spot: or um:")
            markets = ("spot",) if prefix == "spot" else ("um",)
        for m in markets:
            spec = make_spec(m, raw, **overrides)
            if all((s.market, s.symbol) != (spec.market, spec.symbol) for s in specs):
                specs.append(spec)
    if not specs:
        raise ValueError("--symbols is empty: give at least one symbol, e.g. BTCUSDT")
    return tuple(specs)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """REST budgets (BINANCE.md §2.3). ``window_scale`` shrinks every window for tests."""

    spot_weight: int = 6000
    um_weight: int = 2400
    futures_data_requests: int = 1000  # /futures/data/* per 5 min
    funding_requests: int = 500  # /fapi/v1/fundingRate + fundingInfo per 5 min
    window_scale: float = 1.0  # 1.0 = real windows (1 min / 5 min)
    ban_after_429: int = 3  # further requests answered 429 in one window before a 418 ban
    ban_seconds: float = 120.0  # first ban; doubles per repeat, capped at 3 days


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """Everything that defines one exchange instance."""

    seed: int = 42
    symbols: tuple[SymbolSpec, ...] = field(
        default_factory=lambda: parse_symbols("BTCUSDT,ETHUSDT")
    )
    host: str = "127.0.0.1"
    port: int = 0
    ws_lifetime_s: float = 24 * 3600.0
    spot_ping_s: float = 20.0
    spot_pong_timeout_s: float = 60.0
    um_ping_s: float = 180.0
    um_pong_timeout_s: float = 600.0
    spot_inbound_per_s: int = 5
    um_inbound_per_s: int = 10
    max_streams: int = 1024
    limits: RateLimits = field(default_factory=RateLimits)
    vision_delay_s: float = 900.0  # a daily file appears this long after the day ends (+ jitter)
    vision_jitter_s: float = 3600.0
    # API keys accepted by routes of security type MARKET_DATA (USD-M historicalTrades), which
    # then answer 401 without one of them, as Binance does; empty: those routes are open.
    api_keys: tuple[str, ...] = ()

    def spec(self, market: str, symbol: str) -> SymbolSpec | None:
        """The spec of ``symbol`` on ``market``, or None if it is not listed."""
        sym = symbol.upper()
        return next((s for s in self.symbols if s.market == market and s.symbol == sym), None)

    def market_specs(self, market: str) -> list[SymbolSpec]:
        """All specs of one market, in config order."""
        return [s for s in self.symbols if s.market == market]
