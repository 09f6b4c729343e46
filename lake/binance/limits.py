"""REST market-data endpoints with their weights, limits and quotas (BINANCE.md §2.1, §2.3).

Data, not logic: one :class:`RestEndpoint` per route, and the per-IP weight budgets. The few
methods only read the table: the weight of a given ``limit`` and the ``limit`` that returns the
most rows per unit of weight.
"""

from __future__ import annotations

from dataclasses import dataclass

from lake.settings import Market

WEIGHT_BUDGET_PER_MINUTE: dict[Market, int] = {"spot": 6000, "um": 2400}
"""``REQUEST_WEIGHT`` per minute per IP: spot since 2023-08-25, USD-M per exchangeInfo."""

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
"""Response header carrying the weight used in the current minute (§2.3)."""

API_KEY_HEADER = "X-MBX-APIKEY"
"""Request header carrying the API key, for routes of security type MARKET_DATA."""


@dataclass(frozen=True)
class IpQuota:
    """A request-count quota kept apart from the weight budget, e.g. 1000 requests per 5 min."""

    name: str
    requests: int
    window_s: int


FUTURES_DATA_QUOTA = IpQuota("futures_data", 1000, 300)
FUNDING_QUOTA = IpQuota("funding", 500, 300)

# USD-M kline-type weight by limit: [1,100)→1, [100,500)→2, [500,1000]→5, >1000→10.
# Each pair is (exclusive upper bound of the limit, weight); None means unbounded.
KLINE_TIERS: tuple[tuple[int | None, int], ...] = ((100, 1), (500, 2), (1001, 5), (None, 10))


@dataclass(frozen=True)
class RestEndpoint:
    """One GET route and what it costs.

    Attributes:
        weight: a fixed weight, or tiers ``(exclusive upper limit, weight)`` keyed by ``limit``.
        weight_all_symbols: the weight when no symbol is sent, where that differs.
        symbol_param: ``pair`` for indexPriceKlines, else ``symbol``.
        max_window_ms: the widest ``startTime``–``endTime`` window the route accepts.
        history_days: how far back the route serves data, when limited.
        api_key: the route wants an API key (``X-MBX-APIKEY``; security type MARKET_DATA).
    """

    market: Market
    path: str
    weight: int | tuple[tuple[int | None, int], ...]
    limit_default: int | None = None
    limit_max: int | None = None
    quota: IpQuota | None = None
    weight_all_symbols: int | None = None
    symbol_param: str = "symbol"
    max_window_ms: int | None = None
    history_days: int | None = None
    api_key: bool = False

    def weight_for(self, limit: int | None = None) -> int:
        """The weight of one call with ``limit`` (the default limit when ``None``)."""
        if isinstance(self.weight, int):
            return self.weight
        n = limit if limit is not None else self.limit_default
        if n is None:
            raise ValueError(f"{self.path}: weight depends on limit, and none was given")
        for upper, weight in self.weight:
            if upper is None or n < upper:
                return weight
        raise AssertionError("weight tiers end with an unbounded tier")

    def best_limit(self) -> int:
        """The ``limit`` giving the most rows per unit of weight; the larger one on a tie.

        Weight-0 routes cost nothing against the budget, so their maximum is best. For USD-M
        klines this is 499 (249.5 rows per weight at weight 2), not 1000 (200) or 1500 (150).
        """
        if self.limit_max is None:
            raise ValueError(f"{self.path} takes no limit")
        if isinstance(self.weight, int):
            return self.limit_max
        best_n, best_w = 0, 1
        for n in range(1, self.limit_max + 1):
            w = self.weight_for(n)
            if n * best_w >= best_n * w:  # n/w >= best_n/best_w without fractions
                best_n, best_w = n, w
        return best_n


_UM: Market = "um"
_HOUR_MS = 3_600_000

SPOT_KLINES = RestEndpoint("spot", "/api/v3/klines", 2, 500, 1000)
# Not in BINANCE.md §2.1: weight and limits from the spot REST docs (compressed/aggregate trades).
SPOT_AGG_TRADES = RestEndpoint("spot", "/api/v3/aggTrades", 4, 500, 1000, max_window_ms=_HOUR_MS)
UM_KLINES = RestEndpoint(_UM, "/fapi/v1/klines", KLINE_TIERS, 500, 1500)
UM_MARK_PRICE_KLINES = RestEndpoint(_UM, "/fapi/v1/markPriceKlines", KLINE_TIERS, 500, 1500)
UM_INDEX_PRICE_KLINES = RestEndpoint(
    _UM, "/fapi/v1/indexPriceKlines", KLINE_TIERS, 500, 1500, symbol_param="pair"
)
UM_PREMIUM_INDEX_KLINES = RestEndpoint(_UM, "/fapi/v1/premiumIndexKlines", KLINE_TIERS, 500, 1500)
# The docs state only the shared 500/5 min quota for fundingRate and fundingInfo, no weight.
UM_FUNDING_RATE = RestEndpoint(_UM, "/fapi/v1/fundingRate", 0, 100, 1000, quota=FUNDING_QUOTA)
UM_FUNDING_INFO = RestEndpoint(_UM, "/fapi/v1/fundingInfo", 0, quota=FUNDING_QUOTA)
UM_PREMIUM_INDEX = RestEndpoint(_UM, "/fapi/v1/premiumIndex", 1, weight_all_symbols=10)
UM_OPEN_INTEREST = RestEndpoint(_UM, "/fapi/v1/openInterest", 1)
UM_AGG_TRADES = RestEndpoint(_UM, "/fapi/v1/aggTrades", 20, 500, 1000, max_window_ms=_HOUR_MS)
# Old trade lookup, paged by trade id (not in BINANCE.md §2.1: weights from the spot REST docs
# and the USD-M "Old Trades Lookup" page). USD-M asks for an API key here (MARKET_DATA); spot
# no longer does.
SPOT_HISTORICAL_TRADES = RestEndpoint("spot", "/api/v3/historicalTrades", 25, 500, 1000)
UM_HISTORICAL_TRADES = RestEndpoint(_UM, "/fapi/v1/historicalTrades", 20, 100, 500, api_key=True)


def _futures_data(name: str) -> RestEndpoint:
    # Weight 0 (topLongShortAccountRatio states none; its siblings state 0), own 1000/5 min quota,
    # and only about the last 30 days are served.
    return RestEndpoint(
        _UM, f"/futures/data/{name}", 0, 30, 500, quota=FUTURES_DATA_QUOTA, history_days=30
    )


UM_OPEN_INTEREST_HIST = _futures_data("openInterestHist")
UM_TOP_LONG_SHORT_ACCOUNT_RATIO = _futures_data("topLongShortAccountRatio")
UM_TOP_LONG_SHORT_POSITION_RATIO = _futures_data("topLongShortPositionRatio")
UM_GLOBAL_LONG_SHORT_ACCOUNT_RATIO = _futures_data("globalLongShortAccountRatio")
UM_TAKER_LONG_SHORT_RATIO = _futures_data("takerlongshortRatio")

REST_ENDPOINTS: tuple[RestEndpoint, ...] = (
    SPOT_KLINES,
    SPOT_AGG_TRADES,
    UM_KLINES,
    UM_MARK_PRICE_KLINES,
    UM_INDEX_PRICE_KLINES,
    UM_PREMIUM_INDEX_KLINES,
    UM_FUNDING_RATE,
    UM_FUNDING_INFO,
    UM_PREMIUM_INDEX,
    UM_OPEN_INTEREST,
    UM_AGG_TRADES,
    SPOT_HISTORICAL_TRADES,
    UM_HISTORICAL_TRADES,
    UM_OPEN_INTEREST_HIST,
    UM_TOP_LONG_SHORT_ACCOUNT_RATIO,
    UM_TOP_LONG_SHORT_POSITION_RATIO,
    UM_GLOBAL_LONG_SHORT_ACCOUNT_RATIO,
    UM_TAKER_LONG_SHORT_RATIO,
)

METRICS_ENDPOINTS: dict[str, RestEndpoint] = {
    "open_interest_hist": UM_OPEN_INTEREST_HIST,
    "top_account_ratio": UM_TOP_LONG_SHORT_ACCOUNT_RATIO,
    "top_position_ratio": UM_TOP_LONG_SHORT_POSITION_RATIO,
    "global_account_ratio": UM_GLOBAL_LONG_SHORT_ACCOUNT_RATIO,
    "taker_ratio": UM_TAKER_LONG_SHORT_RATIO,
}
"""The five ``/futures/data`` routes joined into one bronze ``metrics`` row per timestamp."""

_KLINE_ENDPOINTS: dict[tuple[Market, str], RestEndpoint] = {
    ("spot", "trade"): SPOT_KLINES,
    ("um", "trade"): UM_KLINES,
    ("um", "mark"): UM_MARK_PRICE_KLINES,
    ("um", "index"): UM_INDEX_PRICE_KLINES,
    ("um", "premium"): UM_PREMIUM_INDEX_KLINES,
}


def kline_endpoint(market: Market, kind: str) -> RestEndpoint:
    """The klines route of a market and kind (trade, mark, index, premium).

    Raises:
        ValueError: spot has only trade klines.
    """
    try:
        return _KLINE_ENDPOINTS[(market, kind)]
    except KeyError:
        raise ValueError(f"no {kind} klines on {market}") from None


def agg_trades_endpoint(market: Market) -> RestEndpoint:
    return SPOT_AGG_TRADES if market == "spot" else UM_AGG_TRADES


def historical_trades_endpoint(market: Market) -> RestEndpoint:
    return SPOT_HISTORICAL_TRADES if market == "spot" else UM_HISTORICAL_TRADES
