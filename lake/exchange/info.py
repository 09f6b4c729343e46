"""``exchangeInfo`` bodies for spot and USD-M, built from the configured symbols."""

from __future__ import annotations

from typing import Any

from lake.exchange.config import RateLimits, SymbolSpec
from lake.exchange.fmt import dec
from lake.exchange.state import ExchangeState


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
    specs = [
        s for s in state.config.market_specs("spot") if symbol is None or s.symbol == symbol.upper()
    ]
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
                "baseAsset": s.base_asset,
                "baseAssetPrecision": 8,
                "quoteAsset": s.quote_asset,
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
                "filters": _filters(s),
                "permissions": [],
                "permissionSets": [["SPOT"]],
            }
            for s in specs
        ],
    }


def um_exchange_info(state: ExchangeState, now_ms: int) -> dict[str, Any]:
    """``GET /fapi/v1/exchangeInfo``."""
    lim = state.config.limits
    specs = state.config.market_specs("um")
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
                "pair": s.pair,
                "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000,
                "onboardDate": s.genesis_ms,
                "status": "TRADING",
                "baseAsset": s.base_asset,
                "quoteAsset": s.quote_asset,
                "marginAsset": s.quote_asset,
                "pricePrecision": s.price_dec,
                "quantityPrecision": s.qty_dec,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "settlePlan": 0,
                "triggerProtect": "0.0500",
                "filters": _filters(s),
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
