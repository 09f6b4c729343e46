"""Continuity invariants, pure: where ids jump, where a cadence breaks, where order goes back.

Every function takes a frame (any order), groups it by ``by`` and returns one row per break with
the two rows around it, so callers can turn breaks into gap-ledger entries or repair requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import polars as pl


def id_gaps(
    frame: pl.DataFrame,
    *,
    id_col: str,
    time_col: str,
    by: Sequence[str] = ("market", "symbol"),
    after: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Holes in a run of consecutive integer ids (aggTrade ``a``, trade ``t``).

    Args:
        frame: rows with ``by``, ``id_col`` and ``time_col``.
        after: optional last known row per group (same columns) from before ``frame`` — e.g. the
            table's latest id — so a hole between stored data and a new batch is found too.

    Returns:
        ``by…, start_id, end_id, missing, start_time, end_time``: ids ``start_id..end_id``
        (inclusive) are absent; they fall between ``start_time`` and ``end_time``.
    """
    keys = list(by)
    cols = [*keys, id_col, time_col]
    rows = frame.select(cols)
    if after is not None and after.height:
        rows = pl.concat([after.select(cols).cast(rows.schema), rows])
    ordered = rows.unique(subset=[*keys, id_col]).sort([*keys, id_col])
    prev_id = pl.col(id_col).shift(1).over(keys)
    prev_time = pl.col(time_col).shift(1).over(keys)
    return (
        ordered.with_columns(prev_id.alias("_prev_id"), prev_time.alias("_prev_time"))
        .filter(pl.col(id_col) - pl.col("_prev_id") > 1)
        .select(
            *keys,
            (pl.col("_prev_id") + 1).alias("start_id"),
            (pl.col(id_col) - 1).alias("end_id"),
            (pl.col(id_col) - pl.col("_prev_id") - 1).alias("missing"),
            pl.col("_prev_time").alias("start_time"),
            pl.col(time_col).alias("end_time"),
        )
    )


def cadence_gaps(
    frame: pl.DataFrame,
    *,
    time_col: str,
    every: timedelta,
    by: Sequence[str] = ("symbol",),
    tolerance: float = 0.5,
) -> pl.DataFrame:
    """Breaks in a fixed cadence (markPrice each second, klines each minute).

    A break is two consecutive times more than ``every * (1 + tolerance)`` apart.

    Returns:
        ``by…, start_time, end_time, missing``: the last time before and the first after the
        break, and how many beats are missing between them.
    """
    keys = list(by)
    step_us = int(every / timedelta(microseconds=1))
    ordered = frame.select(*keys, time_col).unique().sort([*keys, time_col])
    prev = pl.col(time_col).shift(1).over(keys)
    delta_us = (pl.col(time_col) - pl.col("_prev")).dt.total_microseconds()
    return (
        ordered.with_columns(prev.alias("_prev"))
        .filter(delta_us > step_us * (1 + tolerance))
        .select(
            *keys,
            pl.col("_prev").alias("start_time"),
            pl.col(time_col).alias("end_time"),
            ((delta_us + step_us // 2) // step_us - 1).alias("missing"),
        )
    )


def order_breaks(
    frame: pl.DataFrame, *, id_col: str, order_col: str, by: Sequence[str] = ("market", "symbol")
) -> pl.DataFrame:
    """Places where ``id_col`` goes backwards in ``order_col`` order (bookTicker ``u``).

    Returns:
        ``by…, prev_id, id, at``: the id before, the smaller id after, and its ``order_col``.
    """
    keys = list(by)
    ordered = frame.select(*keys, id_col, order_col).sort([*keys, order_col])
    prev = pl.col(id_col).shift(1).over(keys)
    return (
        ordered.with_columns(prev.alias("prev_id"))
        .filter(pl.col(id_col) < pl.col("prev_id"))
        .select(*keys, "prev_id", pl.col(id_col).alias("id"), pl.col(order_col).alias("at"))
    )
