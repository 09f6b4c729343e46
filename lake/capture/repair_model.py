"""(pure) What the repair works with: a ledger row typed, what became of it, a request budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from lake.binance.rest import RestClient
from lake.schemas import GAPS
from lake.settings import Market

TRADE_TABLES = ("bronze.agg_trades", "bronze.trades")
WINDOW_KINDS = ("disconnect", "damaged")
"""Gaps that are windows of exchange time after the last frame held: a break in coverage, and
frames lost in a damaged landing segment."""
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Gap:
    """One ledger row, typed."""

    row: dict[str, Any]
    table: str
    market: Market
    symbol: str
    kind: str
    start_id: int | None
    end_id: int | None
    start_time: datetime
    end_time: datetime
    detail: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Gap:
        market = row["market"]
        if market not in ("spot", "um"):
            raise ValueError(f"unknown market {market!r} in gap {row['gap_id']}")
        return cls(
            row,
            row["table_name"],
            market,
            row["symbol"],
            row["kind"],
            row["start_id"],
            row["end_id"],
            row["start_time"],
            row["end_time"],
            row["detail"],
        )

    @property
    def gap_id(self) -> str:
        return str(self.row["gap_id"])

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame([self.row], schema=GAPS.polars_schema())

    def key(self) -> pl.Expr:
        return (pl.col("market") == self.market) & (pl.col("symbol") == self.symbol)


@dataclass(frozen=True)
class Outcome:
    """What became of one gap in a pass: ``repaired``, ``unrepairable`` (with the reason) or
    ``open`` (left for a later pass or the archive)."""

    status: str
    rows: int = 0
    reason: str = ""
    refused: int = 0


class RequestBudget:
    """REST requests one pass may still send."""

    def __init__(self, client: RestClient, max_requests: int) -> None:
        self.client, self.start, self.max = client, client.requests, max_requests

    @property
    def spent(self) -> int:
        return self.client.requests - self.start

    def left(self) -> bool:
        return self.spent < self.max


def ms(value: datetime) -> int:
    """Epoch milliseconds of a UTC datetime."""
    return int(value.timestamp() * 1000)


def iso(value: datetime) -> str:
    """A UTC datetime as ISO text with milliseconds and a Z."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
