"""(pure) Which rows of a table a write covers, as data: rendered to Delta SQL and to polars here.

A :class:`Scope` names logical columns (``interval``, not the stored ``kline_interval``); only
this module turns it into SQL, quoting identifiers and mapping them to their stored names
(:mod:`lake.storage.layout`), so no SQL string crosses a package boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from lake.schemas import DATE, TableSpec
from lake.storage.layout import stored_name


def quote(name: str) -> str:
    """Column ``name`` in Delta SQL: its stored name (:mod:`lake.storage.layout`), quoted."""
    return '"' + stored_name(name).replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for a partition or column value (a datetime as ISO 8601 with its offset)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class TimeRange:
    """``start <= column < end`` on one time column; naive datetimes are taken as UTC."""

    column: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            moment: datetime = getattr(self, name)
            if moment.tzinfo is None:
                object.__setattr__(self, name, moment.replace(tzinfo=UTC))
        if self.end <= self.start:
            lo, hi = self.start, self.end
            msg = f"time range on {self.column} ends ({hi}) at or before it starts ({lo})"
            raise ValueError(msg)


@dataclass(frozen=True)
class Scope:
    """A set of rows: column values (``IN`` lists), a date range and a time range, all ANDed.

    The empty scope is every row. Build one with :meth:`of`; render it with :meth:`sql` and
    :meth:`expr`, which select the same rows.

    Attributes:
        members: (column, allowed values) pairs, values sorted and distinct.
        dates: an inclusive range on the derived ``date`` partition.
        time: a half-open range on a named time column.
    """

    members: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    dates: tuple[date, date] | None = None
    time: TimeRange | None = None

    @classmethod
    def of(
        cls,
        members: Mapping[str, Iterable[Any]] | None = None,
        *,
        dates: tuple[date, date] | None = None,
        time: TimeRange | None = None,
    ) -> Scope:
        """A scope from ``{column: values}`` plus optional ranges.

        Raises:
            ValueError: a value list is empty, or the date range ends before it starts.
        """
        pairs: list[tuple[str, tuple[Any, ...]]] = []
        for col, values in (members or {}).items():
            vals = tuple(sorted(set(values)))
            if not vals:
                raise ValueError(f"empty value list for {col!r}")
            pairs.append((col, vals))
        if dates is not None and dates[1] < dates[0]:
            raise ValueError(f"date range ends ({dates[1]}) before it starts ({dates[0]})")
        return cls(tuple(pairs), dates, time)

    @property
    def is_empty(self) -> bool:
        """Whether the scope has no condition at all (it covers the whole table)."""
        return not self.members and self.dates is None and self.time is None

    def columns(self) -> list[str]:
        """The logical columns the scope names (``date`` for a date range)."""
        cols = [c for c, _ in self.members]
        if self.dates is not None:
            cols.append(DATE)
        if self.time is not None:
            cols.append(self.time.column)
        return cols

    def check(self, spec: TableSpec) -> None:
        """Raise ``ValueError`` when the scope names a column ``spec`` does not have."""
        known = {*spec.column_names, *spec.derived_partitions}
        unknown = [c for c in self.columns() if c not in known]
        if unknown:
            raise ValueError(f"{spec.key}: the scope names unknown columns {unknown}")

    def sql(self, spec: TableSpec, alias: str | None = None) -> str:
        """The scope as a Delta SQL predicate on ``spec``'s stored columns (``""`` when empty).

        Raises:
            ValueError: the scope names a column ``spec`` does not have.
        """
        self.check(spec)
        prefix = f"{alias}." if alias else ""
        parts: list[str] = []
        for col, vals in self.members:
            ident = prefix + quote(col)
            if len(vals) == 1:
                parts.append(f"{ident} = {literal(vals[0])}")
            else:
                parts.append(f"{ident} IN ({', '.join(literal(v) for v in vals)})")
        if self.dates is not None:
            d = prefix + quote(DATE)
            lo, hi = self.dates
            parts.append(f"{d} >= {literal(lo)} AND {d} <= {literal(hi)}")
        if self.time is not None:
            t = prefix + quote(self.time.column)
            lo_t, hi_t = self.time.start, self.time.end
            parts.append(f"{t} >= {literal(lo_t)} AND {t} < {literal(hi_t)}")
        return " AND ".join(parts)

    def expr(self) -> pl.Expr:
        """The scope as a polars filter on logical columns (with derived partitions)."""
        cond = pl.lit(True)
        for col, vals in self.members:
            cond = cond & pl.col(col).is_in(list(vals))
        if self.dates is not None:
            cond = cond & pl.col(DATE).is_between(*self.dates)
        if self.time is not None:
            cond = cond & pl.col(self.time.column).is_between(
                self.time.start, self.time.end, closed="left"
            )
        return cond

    def __str__(self) -> str:
        parts = [f"{c} in {list(v)}" if len(v) > 1 else f"{c}={v[0]}" for c, v in self.members]
        if self.dates is not None:
            parts.append(f"date {self.dates[0]}..{self.dates[1]}")
        if self.time is not None:
            t = self.time
            parts.append(f"{t.column} [{t.start.isoformat()}, {t.end.isoformat()})")
        return ", ".join(parts) or "everything"


def day_range(column: str, first: date, last: date) -> TimeRange:
    """``first`` 00:00 UTC to the midnight after ``last``, on ``column``."""
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return TimeRange(column, start, end)
