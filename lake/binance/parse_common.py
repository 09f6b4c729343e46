"""Small pieces every parser shares: time normalisation, lineage columns, frame assembly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from lake.schemas import TableSpec

US = pl.Datetime("us", "UTC")

US_THRESHOLD = 10**15
"""Epoch values at or above this are microseconds, below it milliseconds. 10**15 µs is
2001-09-09 and 10**15 ms is year 33658, so the two ranges cannot be confused."""


def epoch_us(expr: pl.Expr) -> pl.Expr:
    """An epoch integer in ms or µs (decided per value) as ``Datetime("us","UTC")``.

    Spot archives switched to µs on 2025-01-01 and spot REST/WS can opt into µs, so the unit is
    decided by magnitude, never by market or date.
    """
    return pl.when(expr >= US_THRESHOLD).then(expr).otherwise(expr * 1000).cast(pl.Int64).cast(US)


def epoch_us_column(name: str) -> pl.Expr:
    return epoch_us(pl.col(name)).alias(name)


def epoch_us_series(values: Sequence[int | None] | pl.Series) -> pl.Series:
    """:func:`epoch_us` for one eager column (no query plan: cheaper on small batches)."""
    s = values if isinstance(values, pl.Series) else pl.Series(values, dtype=pl.Int64)
    return s.zip_with(s >= US_THRESHOLD, s * 1000).cast(US)


def ns_to_us(values: Sequence[int]) -> pl.Series:
    """Local receive times in ns as ``Datetime("us","UTC")`` (truncated to the microsecond)."""
    return (pl.Series(values, dtype=pl.Int64) // 1000).cast(US)


def finish(
    spec: TableSpec,
    columns: Mapping[str, Any],
    constants: Mapping[str, Any],
    *,
    times: Sequence[str] = (),
) -> pl.DataFrame:
    """Assemble a table from column values, constants and nulls, then conform it to ``spec``.

    Epoch integers in the ``times`` columns become µs datetimes (ms or µs per value). Columns
    are built eagerly in the spec's order with their final dtypes, so ``conform`` casts nothing;
    on the live path batches can be small and a query plan per column would dominate.
    """
    height = len(next(iter(columns.values()))) if columns else 0
    series: list[pl.Series] = []
    for col in spec.columns:
        name = col.name
        if name in columns:
            values = columns[name]
            if name in times:
                s = epoch_us_series(values)
            elif isinstance(values, pl.Series):
                s = values
            else:
                s = pl.Series(values, dtype=col.dtype)
        else:
            value = constants.get(name)
            s = pl.Series([value], dtype=col.dtype).new_from_index(0, height)
        series.append(s.alias(name))
    return spec.conform(pl.DataFrame(series))


def drop_exact_duplicates(frame: pl.DataFrame, key: Sequence[str]) -> pl.DataFrame:
    """Sort by ``key`` and drop rows repeated exactly (archives repeat rows; page edges overlap).

    The strictly increasing case, by far the most common for id-keyed archives, costs one pass.
    """
    if frame.height < 2:
        return frame
    if len(key) == 1:
        diffs = frame.get_column(key[0]).to_physical().diff().drop_nulls()
        if bool((diffs > 0).all()):
            return frame
    return frame.unique(maintain_order=True).sort(key, maintain_order=True)
