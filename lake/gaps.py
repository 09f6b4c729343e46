"""The gap ledger: discontinuities as rows of ``ops.gaps``, and what can repair them.

A gap's id is a hash of where it is (table, market, symbol, kind and its start), so finding the
same gap twice updates one row instead of adding another, and a repair marks that same row.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

import polars as pl

from lake.schemas import GAPS

GapStatus = Literal["open", "repaired", "capture_loss", "unrepairable"]

# Which bronze tables REST can refill by id or time, and through which endpoint family.
REST_REPAIRABLE = {
    "bronze.agg_trades": "aggTrades",
    "bronze.klines": "klines",
}


def gap_id(table: str, market: str, symbol: str, kind: str, start: object) -> str:
    """A stable id for one gap."""
    raw = f"{table}|{market}|{symbol}|{kind}|{start}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def ledger_rows(
    breaks: pl.DataFrame,
    *,
    table: str,
    kind: str,
    detected_at: datetime,
    status: GapStatus = "open",
    market: str | None = None,
    detail: str | None = None,
) -> pl.DataFrame:
    """Rows for ``ops.gaps`` from the output of a :mod:`lake.quality.continuity` function.

    ``breaks`` needs ``symbol``, ``start_time``, ``end_time`` and, for id gaps, ``start_id`` and
    ``end_id``; ``market`` comes from the frame or from the argument.
    """
    if breaks.height == 0:
        return GAPS.empty()
    frame = breaks
    if "market" not in frame.columns:
        frame = frame.with_columns(pl.lit(market or "um").alias("market"))
    for col in ("start_id", "end_id"):
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.Int64).alias(col))
    start_key = pl.coalesce(
        pl.col("start_id").cast(pl.String), pl.col("start_time").cast(pl.String)
    )
    ids = [
        gap_id(table, m, s, kind, k)
        for m, s, k in frame.select("market", "symbol", start_key.alias("k")).iter_rows()
    ]
    out = frame.select(
        pl.Series("gap_id", ids, pl.String),
        pl.lit(table).alias("table_name"),
        "market",
        "symbol",
        pl.lit(kind).alias("kind"),
        "start_id",
        "end_id",
        "start_time",
        "end_time",
        pl.lit(detected_at).alias("detected_at"),
        pl.lit(status).alias("status"),
        pl.lit(None, pl.Datetime("ms", "UTC")).alias("repaired_at"),
        pl.lit(None, pl.String).alias("repair_source"),
        pl.lit(None, pl.Int64).alias("rows_repaired"),
        pl.lit(detail, pl.String).alias("detail"),
    )
    return GAPS.conform(out)


def mark_repaired(
    gaps: pl.DataFrame, *, source: str, repaired_at: datetime, rows: int | None = None
) -> pl.DataFrame:
    """The same gaps with status ``repaired`` (merge them back into ``ops.gaps``)."""
    return gaps.with_columns(
        pl.lit("repaired").alias("status"),
        pl.lit(repaired_at).cast(pl.Datetime("ms", "UTC")).alias("repaired_at"),
        pl.lit(source).alias("repair_source"),
        pl.lit(rows, pl.Int64).alias("rows_repaired"),
    )


def mark_unrepairable(
    gaps: pl.DataFrame, *, reason: str, at: datetime, rows: int | None = None
) -> pl.DataFrame:
    """The same gaps with status ``unrepairable``, the reason appended to their detail."""
    detail = pl.col("detail")
    return gaps.with_columns(
        pl.lit("unrepairable").alias("status"),
        pl.lit(at).cast(pl.Datetime("ms", "UTC")).alias("repaired_at"),
        pl.lit("rest").alias("repair_source"),
        pl.lit(rows, pl.Int64).alias("rows_repaired"),
        pl.when(detail.is_null() | (detail == ""))
        .then(pl.lit(reason))
        .otherwise(pl.concat_str(detail, pl.lit(f"; {reason}")))
        .alias("detail"),
    )
