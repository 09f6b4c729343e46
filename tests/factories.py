"""Tiny deterministic frames for storage tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from lake.schemas import AGG_TRADES

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def agg_trades(
    ids: range,
    *,
    market: str = "um",
    symbol: str = "BTCUSDT",
    start: datetime = T0,
    step: timedelta = timedelta(seconds=7),
    price: str = "42000.10",
    source: str = "rest",
    batch_id: str = "test",
) -> pl.DataFrame:
    """Aggregate trades with the given ids; id ``i`` trades at ``start + i * step``."""
    n = len(ids)
    frame = pl.DataFrame(
        {
            "market": [market] * n,
            "symbol": [symbol] * n,
            "agg_trade_id": list(ids),
            "price": [price] * n,
            "quantity": ["0.001"] * n,
            "first_trade_id": [i * 3 for i in ids],
            "last_trade_id": [i * 3 + 2 for i in ids],
            "transact_time": [start + step * i for i in ids],
            "is_buyer_maker": [i % 2 == 0 for i in ids],
            "is_best_match": [None] * n,
            "event_time": [None] * n,
            "ts_recv": [None] * n,
            "source": [source] * n,
            "batch_id": [batch_id] * n,
        }
    )
    return AGG_TRADES.conform(frame)
