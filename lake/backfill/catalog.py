"""What can be backfilled, as data: datasets, their tables, archive keys, REST routes, row scopes.

Dataset names are Vision's ``type`` folders (BINANCE.md §3.1). Each one lands in one bronze table
(:data:`lake.binance.vision_paths.VISION_DATASETS`) and may have a REST route for the days the
archive does not hold yet. Kline-type datasets are backfilled at 1 minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import polars as pl

from lake import schemas
from lake.binance.vision_paths import (
    KLINE_KIND_BY_DATASET,
    VISION_DATASETS,
    Period,
    vision_available,
    vision_key,
)
from lake.settings import Market

KLINE_INTERVAL = "1m"
DAY_MS = 86_400_000

RestKind = Literal["klines", "agg_trades", "trades", "funding", "metrics"]

DATASETS: tuple[str, ...] = (
    "klines",
    "aggTrades",
    "trades",
    "markPriceKlines",
    "indexPriceKlines",
    "premiumIndexKlines",
    "fundingRate",
    "metrics",
    "bookTicker",
    "liquidationSnapshot",
)
"""Every dataset ``cryptolake backfill`` knows, in the order plans list them."""

_REST: dict[str, RestKind] = {
    "klines": "klines",
    "markPriceKlines": "klines",
    "indexPriceKlines": "klines",
    "premiumIndexKlines": "klines",
    "aggTrades": "agg_trades",
    "trades": "trades",
    "fundingRate": "funding",
    "metrics": "metrics",
}
MONTHLY_MAX_BYTES = 128 * 2**20
"""A file is parsed whole in memory, so a monthly file above this (a month of a major's trades
is gigabytes of CSV) is fetched as daily files instead."""
METRICS_REST_DAYS = 30
"""``/futures/data/*`` serves only about the last 30 days (BINANCE.md §2.1)."""


def dataset_markets(dataset: str) -> tuple[Market, ...]:
    """The markets (of spot and USD-M) on which ``dataset`` exists."""
    markets = VISION_DATASETS[dataset].markets
    return tuple(m for m in ("spot", "um") if m in markets)


def table_of(dataset: str) -> schemas.TableSpec:
    """The bronze table a dataset lands in."""
    name = VISION_DATASETS[dataset].table
    assert name is not None, f"{dataset} is not ingested"
    return schemas.get_table(f"bronze.{name}")


@dataclass(frozen=True, order=True)
class Series:
    """One dataset of one symbol on one market: the unit the planner walks day by day."""

    market: Market
    dataset: str
    symbol: str

    @property
    def interval(self) -> str | None:
        return KLINE_INTERVAL if self.dataset in KLINE_KIND_BY_DATASET else None

    @property
    def table(self) -> schemas.TableSpec:
        return table_of(self.dataset)

    @property
    def label(self) -> str:
        return f"{self.market} {self.dataset} {self.symbol}"

    def periods(self) -> frozenset[Period]:
        """The Vision periods of this series (fundingRate is monthly only, metrics daily only)."""
        return VISION_DATASETS[self.dataset].periods

    def in_vision(self, period: Period, day: date) -> bool:
        """Whether Vision publishes this series for ``day`` at all (§3.1 availability rules)."""
        return vision_available(self.market, self.dataset, period, day, self.interval)

    def key(self, period: Period, day: date) -> str:
        """The archive key of the daily file of ``day`` or the monthly file of its month."""
        return vision_key(self.market, self.dataset, self.symbol, period, day, self.interval)

    def listing_prefix(self, period: Period, year: int) -> str:
        """A listing prefix narrowed to one year's files, e.g. ``…/1m/BTCUSDT-1m-2024``."""
        folder = self.key(period, date(year, 1, 1)).rsplit("/", 1)[0]
        middle = self.interval or self.dataset
        return f"{folder}/{self.symbol}-{middle}-{year}"

    def rest_kind(self) -> RestKind | None:
        """The REST route family serving this series, or None (bookTicker, liquidations)."""
        kind = _REST.get(self.dataset)
        if kind in ("funding", "metrics") and self.market != "um":
            return None
        return kind

    def rest_serves(self, day: date, today: date) -> bool:
        """Whether REST can serve ``day`` (metrics: only the last 30 days)."""
        if self.rest_kind() is None or day > today:
            return False
        return self.dataset != "metrics" or day > today - timedelta(days=METRICS_REST_DAYS)

    def rest_key(self, day: date) -> str:
        """The ``ops.sources`` key of a day fetched from REST (it has no archive key)."""
        parts = [self.market, self.dataset, self.symbol]
        if self.interval:
            parts.append(self.interval)
        return f"rest:{'/'.join(parts)}/{day.isoformat()}"

    def expects_header(self, day: date) -> bool:
        """Whether the archive's files carry a header row for ``day`` (BINANCE.md §3.2).

        Spot files never do; USD-M kline-type files from 2022-05, trades and aggTrades after
        2022-08-10, everything else always. A file that disagrees is reported as header drift.
        """
        if self.market == "spot":
            return False
        if self.dataset in KLINE_KIND_BY_DATASET:
            return day >= date(2022, 5, 1)
        if self.dataset in ("trades", "aggTrades"):
            return day > date(2022, 8, 10)
        return True

    def scope(self, first_day: date, last_day: date) -> pl.Expr:
        """The rows of this series between two days (inclusive): what one file holds."""
        spec = self.table
        cond = pl.col("symbol") == self.symbol
        if "market" in spec.column_names:
            cond &= pl.col("market") == self.market
        if spec is schemas.KLINES:
            cond &= pl.col("kind") == KLINE_KIND_BY_DATASET[self.dataset]
            cond &= pl.col("interval") == KLINE_INTERVAL
        lo, hi = day_start(first_day), day_start(last_day + timedelta(days=1))
        return cond & spec.time_expr().is_between(lo, hi, closed="left")

    def partition_values(self) -> dict[str, list[str]]:
        """The non-date partition values of this series' rows (e.g. market and kind)."""
        spec = self.table
        out: dict[str, list[str]] = {}
        if "market" in spec.partition_by:
            out["market"] = [self.market]
        if "kind" in spec.partition_by:
            out["kind"] = [KLINE_KIND_BY_DATASET[self.dataset]]
        return out


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def day_ms(day: date) -> int:
    """Midnight UTC of ``day`` in Unix ms."""
    return int(day_start(day).timestamp() * 1000)


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    nxt = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def days(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, inclusive."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
