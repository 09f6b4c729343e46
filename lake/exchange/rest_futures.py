"""USD-M REST routes: ``/fapi/v1/*`` and ``/futures/data/*`` (BINANCE.md §2.1)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lake.exchange import rest_replay as replayed
from lake.exchange.derivs import SLOT_MS
from lake.exchange.fmt import dec, float_units
from lake.exchange.info import um_exchange_info
from lake.exchange.limits import kline_weight
from lake.exchange.market import slot_times
from lake.exchange.prices import FUNDING_MS
from lake.exchange.rest import Params, Route
from lake.exchange.rest_rows import agg_trades, historical_trades, kline_opens, kline_rows
from lake.exchange.state import ExchangeState

HISTORY_MS = 30 * 86_400_000  # /futures/data/* serves only the last 30 days


def _klines(kind: str) -> Any:
    def handler(p: Params, s: ExchangeState) -> Any:
        spec = p.spec("pair" if kind == "index" else "symbol")
        interval = p.interval(spot=False)
        opens = kline_opens(p, spec, interval, p.limit(500, 1500))
        if kind == "trade":
            bars = s.market.trade_klines(spec, interval, opens, p.now)
        else:
            bars = s.market.sample_klines(spec, kind, interval, opens, p.now)
        return kline_rows(spec, bars, interval, kind != "trade", False)

    return handler


def _kline_weight(p: Params) -> int:
    return kline_weight(p.int_opt("limit") or 500)


def _premium_index_body(p: Params, s: ExchangeState, symbol: str) -> dict[str, Any]:
    spec = s.market.spec("um", symbol)
    path = s.market.path(spec)
    t = np.array([p.now])
    mark_units = float_units(path.mark(t), spec.price_dec)[0] // spec.tick_units * spec.tick_units
    index = float(path.index(t)[0])
    return {
        "symbol": spec.symbol,
        "markPrice": dec(mark_units, spec.price_dec, 8),
        "indexPrice": dec(round(index * 1e8), 8),
        "estimatedSettlePrice": dec(round(index * (1 + path.premium(t)[0] / 2) * 1e8), 8),
        "lastFundingRate": dec(round(path.funding_rate(t)[0] * 1e8), 8),
        "interestRate": "0.00010000",
        "nextFundingTime": (p.now // FUNDING_MS + 1) * FUNDING_MS,
        "time": p.now,
    }


def _premium_index(p: Params, s: ExchangeState) -> Any:
    if p.q.get("symbol"):
        return _premium_index_body(p, s, p.spec().symbol)
    simulated = [_premium_index_body(p, s, x.symbol) for x in s.simulated_specs("um")]
    return simulated + replayed.replayed_premiums(p, s)


def _open_interest(p: Params, s: ExchangeState) -> Any:
    spec = p.spec()
    m = s.market.metrics(spec, np.array([p.now // SLOT_MS * SLOT_MS]))
    return {
        "openInterest": dec(int(float_units(m.oi, spec.qty_dec)[0]), spec.qty_dec),
        "symbol": spec.symbol,
        "time": p.now,
    }


def _funding_rate(p: Params, s: ExchangeState) -> Any:
    limit = p.limit(100, 1000)
    start, end = p.time_range()
    specs = [p.spec()] if p.q.get("symbol") else s.simulated_specs("um")
    hi = p.now if end is None else min(end, p.now)
    rows: list[dict[str, Any]] = []
    for spec in specs:
        f = s.market.funding(spec, 0 if start is None else start - 100, hi)
        for i in range(len(f.settle_ms)):
            ft = int(f.funding_time[i])
            if (start is None or ft >= start) and ft <= hi:
                rate = dec(round(f.rate[i] * 1e8), 8)
                mark = dec(round(f.mark[i] * 1e8), 8)
                rows.append(
                    {
                        "symbol": spec.symbol,
                        "fundingRate": rate,
                        "fundingTime": ft,
                        "markPrice": mark,
                    }
                )
    rows.sort(key=lambda r: (r["fundingTime"], r["symbol"]))
    if start is None and end is None:
        # Without a range Binance returns the latest 200 (or ``limit`` if one is sent).
        return rows[-(limit if p.q.get("limit") else 200) :]
    return rows[:limit]


def _data_rows(p: Params, s: ExchangeState, kind: str) -> Any:
    spec = p.spec()
    step = p.period_ms()
    limit = p.limit(30, 500)
    start, end = p.time_range()
    lo = max(p.now - HISTORY_MS, spec.genesis_ms + step, start or 0)
    t = slot_times(lo, p.now if end is None else min(end, p.now), step)
    t = t[:limit] if start is not None else t[-limit:]
    ts = [str(x) for x in t.tolist()]
    if kind == "taker":
        buy, sell = s.market.taker_volumes(spec, t, step)
        qd = spec.qty_dec
        return [
            {
                "buySellRatio": f"{(b / sl if sl else 0):.4f}",
                "buyVol": dec(b, qd, 4) if qd <= 4 else dec(b, qd),
                "sellVol": dec(sl, qd, 4) if qd <= 4 else dec(sl, qd),
                "timestamp": ts[i],
            }
            for i, (b, sl) in enumerate(zip(buy.tolist(), sell.tolist(), strict=True))
        ]
    m = s.market.metrics(spec, t)
    if kind == "oi":
        rows = []
        for i in range(len(t)):
            row = {
                "symbol": spec.symbol,
                "sumOpenInterest": f"{m.oi[i]:.8f}",
                "sumOpenInterestValue": f"{m.oi_value[i]:.8f}",
            }
            if int(t[i]) >= 1_751_414_400_000:  # CMCCirculatingSupply appeared on 2025-07-02
                row["CMCCirculatingSupply"] = f"{m.oi[i] * 37:.3f}"
            row["timestamp"] = ts[i]
            rows.append(row)
        return rows
    ratio = {
        "top_account": m.top_account,
        "top_position": m.top_position,
        "global": m.global_account,
    }[kind]
    out = []
    for i in range(len(t)):
        r = float(ratio[i])
        long_share = round(r / (1 + r), 4)
        out.append(
            {
                "symbol": spec.symbol,
                "longShortRatio": f"{r:.4f}",
                "longAccount": f"{long_share:.4f}",
                "shortAccount": f"{1 - long_share:.4f}",
                "timestamp": ts[i],
            }
        )
    return out


DATA_ROUTES = {
    "openInterestHist": "oi",
    "topLongShortAccountRatio": "top_account",
    "topLongShortPositionRatio": "top_position",
    "globalLongShortAccountRatio": "global",
    "takerlongshortRatio": "taker",
}


SAMPLE_KLINES = {
    "markPriceKlines": "mark",
    "indexPriceKlines": "index",
    "premiumIndexKlines": "premium",
}


def _data_handler(kind: str) -> Any:
    return lambda p, s: _data_rows(p, s, kind)


UM_ROUTES = [
    Route("/fapi/v1/ping", "um", 1, lambda p, s: {}),
    Route("/fapi/v1/time", "um", 1, lambda p, s: {"serverTime": p.server_ms()}),
    Route("/fapi/v1/exchangeInfo", "um", 1, lambda p, s: um_exchange_info(s, p.server_ms())),
    Route("/fapi/v1/klines", "um", _kline_weight, _klines("trade"), replay=replayed.klines),
    *(
        Route(f"/fapi/v1/{name}", "um", _kline_weight, _klines(kind), replay=replayed.no_klines)
        for name, kind in SAMPLE_KLINES.items()
    ),
    Route(
        "/fapi/v1/aggTrades",
        "um",
        20,
        lambda p, s: agg_trades(p, p.spec(), one_hour_rule=True),
        replay=replayed.agg_handler(one_hour_rule=True),
    ),
    Route(
        "/fapi/v1/historicalTrades",
        "um",
        20,
        lambda p, s: historical_trades(p, p.spec()),
        api_key=True,
        replay=replayed.historical_trades,
    ),
    Route(
        "/fapi/v1/fundingRate", "um", 0, _funding_rate, quota="funding", replay=replayed.no_funding
    ),
    Route("/fapi/v1/fundingInfo", "um", 0, lambda p, s: [], quota="funding"),
    Route(
        "/fapi/v1/premiumIndex",
        "um",
        lambda p: 1 if p.q.get("symbol") else 10,
        _premium_index,
        replay=replayed.premium_index,
    ),
    Route("/fapi/v1/openInterest", "um", 1, _open_interest, replay=replayed.open_interest),
    *(
        Route(
            f"/futures/data/{path}",
            "um",
            0,
            _data_handler(kind),
            quota="futures_data",
            replay=replayed.no_data,
        )
        for path, kind in DATA_ROUTES.items()
    ),
]
