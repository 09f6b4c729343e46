"""``exchangeInfo`` bodies for spot and USD-M: the simulated symbols, then the replayed ones.

A replayed symbol is listed as TRADING with the decimals its recording prints and no filters
(a recording does not say what its tick and lot sizes were).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from lake.exchange.config import GENESIS_MS, RateLimits, SymbolSpec, split_symbol
from lake.exchange.fmt import dec
from lake.exchange.state import ExchangeState


class _Listing(NamedTuple):
    symbol: str
    base: str
    quote: str
    price_dec: int  # USD-M pricePrecision
    qty_dec: int  # USD-M quantityPrecision
    onboard_ms: int
    filters: list[dict[str, Any]]


def _listings(state: ExchangeState, market: str) -> list[_Listing]:
    """Simulated symbols in config order, then the replayed ones by name."""
    out = [
        _Listing(
            s.symbol, s.base_asset, s.quote_asset, s.price_dec, s.qty_dec, s.genesis_ms, _filters(s)
        )
        for s in state.simulated_specs(market)
    ]
    tables = state.replay.tables if state.replay is not None else {}
    for m, sym in sorted(tables):
        if m == market:
            base, quote = split_symbol(sym)
            rec = tables[(m, sym)]
            out.append(_Listing(sym, base, quote, rec.price_dec, rec.qty_dec, GENESIS_MS, []))
    return out


def _filters(spec: SymbolSpec) -> list[dict[str, Any]]:
    out = spec.price_out_dec
    tick = dec(spec.tick_units, spec.price_dec, out)
    step = dec(1, spec.qty_dec, spec.qty_out_dec)
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": tick,
            "maxPrice": dec(10**6 * 10**spec.price_dec, spec.price_dec, out),
            "tickSize": tick,
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": step,
            "maxQty": dec(10**4 * 10**spec.qty_dec, spec.qty_dec, spec.qty_out_dec),
            "stepSize": step,
        },
    ]


def _weight_window(limits: RateLimits) -> dict[str, Any]:
    """The weight window as exchangeInfo states it: one minute, or the scaled window in seconds
    when tests shrink it (so a client that reads its limits from here paces itself right)."""
    if limits.window_scale == 1:
        return {"interval": "MINUTE", "intervalNum": 1}
    return {"interval": "SECOND", "intervalNum": max(1, round(60 * limits.window_scale))}


def spot_exchange_info(state: ExchangeState, now_ms: int, symbol: str | None) -> dict[str, Any]:
    """``GET /api/v3/exchangeInfo`` (optionally one ``symbol``)."""
    lim = state.config.limits
    specs = [s for s in _listings(state, "spot") if symbol is None or s.symbol == symbol.upper()]
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", **_weight_window(lim), "limit": lim.spot_weight},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": 61000,
            },
        ],
        "exchangeFilters": [],
        "symbols": [
            {
                "symbol": s.symbol,
                "status": "TRADING",
                "baseAsset": s.base,
                "baseAssetPrecision": 8,
                "quoteAsset": s.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": [
                    "LIMIT",
                    "LIMIT_MAKER",
                    "MARKET",
                    "STOP_LOSS_LIMIT",
                    "TAKE_PROFIT_LIMIT",
                ],
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": s.filters,
                "permissions": [],
                "permissionSets": [["SPOT"]],
            }
            for s in specs
        ],
    }


def um_exchange_info(state: ExchangeState, now_ms: int) -> dict[str, Any]:
    """``GET /fapi/v1/exchangeInfo``."""
    lim = state.config.limits
    specs = _listings(state, "um")
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", **_weight_window(lim), "limit": lim.um_weight},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [
            {
                "symbol": s.symbol,
                "pair": s.symbol,
                "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000,
                "onboardDate": s.onboard_ms,
                "status": "TRADING",
                "baseAsset": s.base,
                "quoteAsset": s.quote,
                "marginAsset": s.quote,
                "pricePrecision": s.price_dec,
                "quantityPrecision": s.qty_dec,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "settlePlan": 0,
                "triggerProtect": "0.0500",
                "filters": s.filters,
                "orderTypes": [
                    "LIMIT",
                    "MARKET",
                    "STOP",
                    "STOP_MARKET",
                    "TAKE_PROFIT",
                    "TAKE_PROFIT_MARKET",
                    "TRAILING_STOP_MARKET",
                ],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }
            for s in specs
        ],
    }
