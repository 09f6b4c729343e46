"""Tiny deterministic frames for storage tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from lake.schemas import AGG_TRADES, TableSpec

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DAY0 = T0.date()


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


def rows_for(spec: TableSpec, ids: range, *, day: date = DAY0, tag: str = "x") -> pl.DataFrame:
    """Rows of any table, one per id, whose keys differ exactly when the ids do.

    Id ``i`` gives ``i`` in integer columns, ``day`` + ``i`` seconds in time columns (+ ``i``
    days in date columns), and ``{column}-{i}`` in string keys when no key is a number or a
    time. String keys otherwise, and partition columns, hold a fixed value; other strings hold
    ``tag``, so two writers' rows for one key can differ. Ids below 86 400 stay on ``day``.
    """
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    int_keys = any(
        spec.column(k).dtype.is_integer() or spec.column(k).dtype.is_temporal()
        for k in spec.merge_keys
    )
    data: dict[str, list[object]] = {}
    for col in spec.columns:
        dtype = col.dtype
        if col.name == "source":
            values: list[object] = ["rest"] * len(ids)
        elif col.name in spec.partition_by or col.name in ("market", "kind", "interval"):
            values = [_FIXED.get(col.name, col.name)] * len(ids)
        elif isinstance(dtype, pl.Datetime):
            values = [start + timedelta(seconds=i) for i in ids]
        elif isinstance(dtype, pl.Date):
            values = [day + timedelta(days=i) for i in ids]
        elif dtype == pl.Boolean:
            values = [i % 2 == 0 for i in ids]
        elif dtype.is_integer():
            values = [i % 100 for i in ids] if dtype in (pl.Int8, pl.UInt8) else list(ids)
        elif dtype.is_float():
            values = [float(i) for i in ids]
        elif col.name in spec.merge_keys:
            values = [col.name if int_keys else f"{col.name}-{i}" for i in ids]
        else:
            values = [tag] * len(ids)
        data[col.name] = values
    return spec.conform(pl.DataFrame(data, schema=spec.polars_schema()))


_FIXED = {"market": "um", "kind": "trade", "interval": "1m"}
