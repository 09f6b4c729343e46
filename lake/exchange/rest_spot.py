"""Spot REST routes: ``/api/v3/*`` (BINANCE.md §2.1); a replayed symbol is answered by
:mod:`lake.exchange.rest_replay`."""

from __future__ import annotations

from typing import Any

from lake.exchange import rest_replay as replayed
from lake.exchange.info import spot_exchange_info
from lake.exchange.rest import Params, Route
from lake.exchange.rest_rows import agg_trades, historical_trades, kline_opens, kline_rows
from lake.exchange.state import ExchangeState


def _klines(p: Params, s: ExchangeState) -> Any:
    spec = p.spec()
    interval = p.interval(spot=True)
    opens = kline_opens(p, spec, interval, p.limit(500, 1000))
    bars = s.market.trade_klines(spec, interval, opens, p.now)
    return kline_rows(spec, bars, interval, False, p.micros)


SPOT_ROUTES = [
    Route("/api/v3/ping", "spot", 1, lambda p, s: {}),
    Route("/api/v3/time", "spot", 1, lambda p, s: {"serverTime": p.server_ms()}),
    Route(
        "/api/v3/exchangeInfo",
        "spot",
        20,
        lambda p, s: spot_exchange_info(s, p.server_ms(), p.q.get("symbol")),
    ),
    Route("/api/v3/klines", "spot", 2, _klines, replay=replayed.klines),
    Route(
        "/api/v3/aggTrades",
        "spot",
        4,
        lambda p, s: agg_trades(p, p.spec(), one_hour_rule=False),
        replay=replayed.agg_handler(one_hour_rule=False),
    ),
    Route(
        "/api/v3/historicalTrades",
        "spot",
        25,
        lambda p, s: historical_trades(p, p.spec()),
        replay=replayed.historical_trades,
    ),
]
