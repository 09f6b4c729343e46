"""(I/O) The reader's API: any table as a lazy, partition-pruned polars frame, and bars of any
interval rolled up from ``silver.bars_1s``.

```python
import lake

lake.read("bronze.trades", symbols=["BTCUSDT"], start="2024-03-01", end="2024-03-01")
lake.read("agg_trades", columns=["symbol", "price"], as_of=3, root="./data/lake")
lake.bars("BTCUSDT", "5m", start=date(2024, 3, 1)).collect()
```

Bad input (an unknown table or column, ``start`` not before ``end``, an ``as_of`` outside the
table's history) raises :class:`ReadError`, a ``ValueError`` with one line saying what to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

import polars as pl

from lake.schemas import BARS_1S, DATE, TableSpec, get_table

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from lake.storage import Lake

TimeBound = date | datetime | str
"""A ``start``/``end``: a day, a datetime (naive means UTC) or its ISO text."""
AsOf = int | datetime | str
"""A Delta version, or a moment (a datetime, naive means UTC, or its ISO text)."""

_INTERVAL = re.compile(r"([1-9][0-9]*)([smhd])")
_UNIT = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}


class ReadError(ValueError):
    """A read the lake cannot answer as asked; the message says what to change."""


def table_spec(table: str | TableSpec) -> TableSpec:
    """The table named ``layer.name`` or by its bare name when that is unique."""
    if not isinstance(table, str):
        return table
    try:
        return get_table(table)
    except KeyError as exc:
        raise ReadError(str(exc.args[0])) from None


def resolve_lake(root: str | os.PathLike[str] | Lake | None) -> Lake:
    """``root`` as a :class:`~lake.storage.Lake`; ``None`` means the configured storage root."""
    from lake.settings import load_settings
    from lake.storage import Lake

    if isinstance(root, Lake):
        return root
    if root is None:
        return Lake.from_settings(load_settings())
    return Lake(os.fspath(root))


def open_as_of(lake: Lake, spec: TableSpec, as_of: AsOf | None = None) -> DeltaTable:
    """The table open at ``as_of``: a version, or the version current at a moment.

    Raises:
        ReadError: the table does not exist, or ``as_of`` is outside its history (a version
            beyond the latest or below 0, a moment before its first commit).
    """
    if isinstance(as_of, bool):
        raise ReadError(f"as_of must be a version or a moment, not {as_of!r}")
    moment = None if as_of is None or isinstance(as_of, int) else _moment(as_of, "as_of")
    try:
        latest = lake.open(spec)
    except LookupError as exc:
        raise ReadError(str(exc)) from None
    if as_of is None:
        return latest
    if isinstance(as_of, int):
        newest = latest.version()
        if not 0 <= as_of <= newest:
            raise ReadError(
                f"as_of version {as_of} is outside the history of {spec.key} "
                f"(versions 0 to {newest})"
            )
        return lake.open(spec, version=as_of)
    assert moment is not None
    commits = latest.history()
    first_ms = min(int(c["timestamp"]) for c in commits)
    first = datetime.fromtimestamp(first_ms / 1000, tz=UTC)
    if moment < first:
        raise ReadError(
            f"as_of {_iso(moment)} is before the first commit of {spec.key} ({_iso(first)})"
        )
    latest.load_as_version(moment)
    return latest


def read(
    table: str | TableSpec,
    *,
    symbols: Iterable[str] | None = None,
    start: TimeBound | None = None,
    end: TimeBound | None = None,
    columns: Sequence[str] | None = None,
    as_of: AsOf | None = None,
    root: str | os.PathLike[str] | Lake | None = None,
) -> pl.LazyFrame:
    """A table as a lazy frame in its logical schema, filtered and pruned.

    Args:
        table: ``bronze.trades``, or a bare name that is unique (``trades``).
        symbols: keep only these symbols (upper-cased).
        start: keep rows whose time (the table's time column) is at or after it; a day means
            its midnight UTC.
        end: keep rows before it; a *day* is inclusive (the rows up to its end), a datetime
            exclusive. Both bounds also select the ``date`` partitions to read.
        columns: the columns to return, in this order (default: every column of the table).
        as_of: time travel: a Delta version, or a moment (the version current then).
        root: a :class:`~lake.storage.Lake` or a storage root; default the configured one.

    Raises:
        ReadError: an unknown table or column, a table without ``symbol`` given ``symbols``,
            ``start`` not before ``end``, ``as_of`` outside the table's history, a table that
            does not exist yet.
    """
    spec = table_spec(table)
    wanted = _columns(spec, columns)
    lo, hi = _window(start, end)
    if symbols is not None and "symbol" not in spec.column_names:
        raise ReadError(f"table {spec.key} has no symbol column: leave symbols out")
    lake = resolve_lake(root)
    snapshot = open_as_of(lake, spec, as_of)
    frame = lake.scan_snapshot(spec, snapshot, with_partitions=True)
    filters: list[pl.Expr] = []
    if lo is not None or hi is not None:
        filters += _time_filters(spec, lo, hi)
    if symbols is not None:
        filters.append(pl.col("symbol").is_in([s.upper() for s in symbols]))
    if filters:
        frame = frame.filter(*filters)
    return frame.select(wanted)


def bars(
    symbol: str,
    interval: str = "1m",
    *,
    market: str = "um",
    start: TimeBound | None = None,
    end: TimeBound | None = None,
    as_of: AsOf | None = None,
    root: str | os.PathLike[str] | Lake | None = None,
) -> pl.LazyFrame:
    """Bars of ``interval`` (``1s``, ``5s``, ``1m``, ``5m``, ``1h``, ``1d``, …) for one symbol,
    rolled up from ``silver.bars_1s``; see :func:`rollup` for the columns.

    ``start``/``end`` select seconds as :func:`read` does; give bounds on the interval's grid to
    get whole bars at the edges.

    Raises:
        ReadError: a bad interval, or what :func:`read` raises.
    """
    every = interval_of(interval)
    seconds = read(
        BARS_1S,
        symbols=[symbol],
        start=start,
        end=end,
        as_of=as_of,
        root=root,
    ).filter(pl.col("market") == market)
    return rollup(seconds, every)


def interval_of(interval: str) -> timedelta:
    """``5m`` as a duration (units ``s``, ``m``, ``h``, ``d``).

    Raises:
        ReadError: not a whole number of one of those units.
    """
    match = _INTERVAL.fullmatch(interval.strip())
    if match is None:
        raise ReadError(
            f"bad interval {interval!r}: expected a count and a unit s, m, h or d (e.g. 5m, 1h)"
        )
    return int(match.group(1)) * _UNIT[match.group(2)]


def rollup(seconds: pl.LazyFrame, every: timedelta) -> pl.LazyFrame:
    """(pure) Roll 1-second bars (``silver.bars_1s`` columns) up to windows of ``every``,
    aligned on the UTC epoch, labelled by their start (``window_start``).

    Open is the first second's open, close the last one's, high the max, low the min (seconds
    without trades, whose prices are null, are skipped); volumes and counts are summed; ``vwap``
    is recomputed as quote volume over base volume (null when nothing traded); the quote columns
    are the last quote seen in the window. Trade ids span the window.
    """

    def last(name: str) -> pl.Expr:
        return pl.col(name).drop_nulls().last().alias(name)

    return (
        seconds.sort("market", "symbol", "window_start")
        .group_by_dynamic(
            "window_start", every=every, closed="left", label="left", group_by=["market", "symbol"]
        )
        .agg(
            pl.col("open").drop_nulls().first().alias("open"),
            pl.col("high").max(),
            pl.col("low").min(),
            last("close"),
            pl.col("volume").sum(),
            pl.col("quote_volume").sum(),
            pl.col("taker_buy_volume").sum(),
            pl.col("trade_count").cast(pl.Int64).sum(),
            pl.col("first_trade_id").min(),
            pl.col("last_trade_id").max(),
            last("bid_last"),
            last("ask_last"),
            last("bid_qty_last"),
            last("ask_qty_last"),
            pl.col("quote_count").cast(pl.Int64).sum(),
        )
        .with_columns(
            pl.when(pl.col("volume") > 0)
            .then(pl.col("quote_volume") / pl.col("volume"))
            .alias("vwap")
        )
        .select(*BARS_COLUMNS)
    )


BARS_COLUMNS = (
    "market",
    "symbol",
    "window_start",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "taker_buy_volume",
    "trade_count",
    "vwap",
    "first_trade_id",
    "last_trade_id",
    "bid_last",
    "ask_last",
    "bid_qty_last",
    "ask_qty_last",
    "quote_count",
)
"""The columns of a bar from :func:`bars`, in order (also those of the ``bars_1m`` SQL view)."""


# --- arguments ------------------------------------------------------------------------------


def _columns(spec: TableSpec, columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        return spec.column_names
    if isinstance(columns, str):  # a bare string would be read as its letters
        columns = [columns]
    known = [*spec.column_names, *spec.derived_partitions]
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ReadError(
            f"table {spec.key} has no column {', '.join(map(repr, unknown))} "
            f"(columns: {', '.join(known)})"
        )
    return list(columns)


def _window(
    start: TimeBound | None, end: TimeBound | None
) -> tuple[datetime | None, datetime | None]:
    """``[lo, hi)`` in UTC: a day as ``end`` is inclusive, so it ends at the next midnight."""
    lo = _bound(start, "start", end_of_day=False)
    hi = _bound(end, "end", end_of_day=True)
    if lo is not None and hi is not None and lo >= hi:
        raise ReadError(f"start {_text(start)} is not before end {_text(end)}")
    return lo, hi


def _bound(value: TimeBound | None, name: str, *, end_of_day: bool) -> datetime | None:
    if value is None:
        return None
    day: date | None = None
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise ReadError(
                f"bad {name} {value!r}: expected an ISO day or datetime, e.g. 2024-03-01"
            ) from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        day = value
    if day is None:
        return _moment(value, name)
    return datetime.combine(day + timedelta(days=1 if end_of_day else 0), time(), tzinfo=UTC)


def _moment(value: datetime | date | str, name: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ReadError(
                f"bad {name} {value!r}: expected an ISO datetime, e.g. 2024-03-01T12:00:00Z"
            ) from None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time_filters(spec: TableSpec, lo: datetime | None, hi: datetime | None) -> list[pl.Expr]:
    """The row filter on the table's time, and the partition filter that prunes whole days."""
    if not spec.time_columns:
        raise ReadError(f"table {spec.key} has no time column: leave start and end out")
    first_day = lo.date() if lo is not None else None
    last_day = (hi - timedelta(microseconds=1)).date() if hi is not None else None
    when = spec.time_expr()
    if isinstance(spec.column(spec.time_columns[0]).dtype, pl.Date):  # a table of days
        return _days(when, first_day, last_day)
    out = _days(pl.col(DATE), first_day, last_day) if DATE in spec.partition_by else []
    if lo is not None:
        out.append(when >= lo)
    if hi is not None:
        out.append(when < hi)
    return out


def _days(expr: pl.Expr, first: date | None, last: date | None) -> list[pl.Expr]:
    out = [] if first is None else [expr >= first]
    return out if last is None else [*out, expr <= last]


def _text(value: TimeBound | None) -> str:
    return value if isinstance(value, str) else value.isoformat() if value else ""


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


__all__ = [
    "BARS_COLUMNS",
    "AsOf",
    "ReadError",
    "TimeBound",
    "bars",
    "interval_of",
    "open_as_of",
    "read",
    "resolve_lake",
    "rollup",
    "table_spec",
]
