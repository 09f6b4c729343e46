"""(I/O) SQL over the lake: DuckDB, in memory, over the Delta tables a query names.

Each table is a view under two names, ``bronze_trades`` and ``bronze.trades``, over
``DeltaTable.to_pyarrow_dataset()`` (DuckDB pushes filters and projections into the scan), with
the table's logical column names (``bronze.klines``' ``interval``) and its ``date`` partition.
Two views follow the seed's: ``bars_1m`` (``silver.bars_1s`` rolled up to minutes, the columns
of :func:`lake.reader.bars`) and ``latest_price`` (the last trade of each market and symbol in
``bronze.trades``, the one trade table captured on both markets).

Only the tables the query names are opened. A table that was never created reads as empty. The
connection cannot touch the filesystem (``enable_external_access=false``, configuration locked):
a query reads the lake and writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from lake.reader import AsOf, ReadError, open_as_of
from lake.schemas import ALL_TABLES, BARS_1S, TRADES, TableSpec, delta_arrow_schema
from lake.storage.layout import stored_name

if TYPE_CHECKING:
    from lake.storage import Lake


class QueryError(ValueError):
    """SQL that does not parse or bind, or names a table or version the lake does not have."""


BARS_1M_SQL = """
SELECT market, symbol, time_bucket(INTERVAL 1 minute, window_start) AS window_start,
  arg_min(open, window_start) FILTER (WHERE open IS NOT NULL) AS open,
  max(high) AS high,
  min(low) AS low,
  arg_max(close, window_start) FILTER (WHERE close IS NOT NULL) AS close,
  sum(volume) AS volume,
  sum(quote_volume) AS quote_volume,
  sum(taker_buy_volume) AS taker_buy_volume,
  CAST(sum(trade_count) AS BIGINT) AS trade_count,
  CASE WHEN sum(volume) > 0 THEN sum(quote_volume) / sum(volume) END AS vwap,
  min(first_trade_id) AS first_trade_id,
  max(last_trade_id) AS last_trade_id,
  arg_max(bid_last, window_start) FILTER (WHERE bid_last IS NOT NULL) AS bid_last,
  arg_max(ask_last, window_start) FILTER (WHERE ask_last IS NOT NULL) AS ask_last,
  arg_max(bid_qty_last, window_start) FILTER (WHERE bid_qty_last IS NOT NULL) AS bid_qty_last,
  arg_max(ask_qty_last, window_start) FILTER (WHERE ask_qty_last IS NOT NULL) AS ask_qty_last,
  CAST(sum(quote_count) AS BIGINT) AS quote_count
FROM silver_bars_1s
GROUP BY ALL
ORDER BY market, symbol, window_start
"""

LATEST_PRICE_SQL = """
SELECT market, symbol, CAST(price AS DOUBLE) AS price, trade_time, trade_id
FROM bronze_trades
QUALIFY row_number() OVER (
  PARTITION BY market, symbol ORDER BY trade_time DESC, trade_id DESC) = 1
ORDER BY market, symbol
"""

VIEWS: Mapping[str, tuple[TableSpec, str]] = {
    "bars_1m": (BARS_1S, BARS_1M_SQL),
    "latest_price": (TRADES, LATEST_PRICE_SQL),
}
"""The derived views: what each reads and its SQL."""


def run_query(lake: Lake, sql: str, *, as_of: AsOf | None = None) -> pl.DataFrame:
    """Run ``sql`` (DuckDB's dialect) over the lake and return its result.

    Args:
        lake: the lake to read.
        sql: one or more statements; the result is the last one's.
        as_of: read every table the query names as of this Delta version, or as of this
            moment (the version current then).

    Raises:
        QueryError: the SQL does not parse or bind, names an unknown table, or ``as_of`` is
            outside the history of a table it names (or names a table never created).
    """
    try:
        names = duckdb.get_table_names(sql, qualified=True)
    except duckdb.ParserException as exc:
        raise QueryError(_message(exc)) from None
    except duckdb.Error:  # parsed, but the name lookup binds a little: open every table
        names = {spec.key for spec in ALL_TABLES}
    specs = _tables_named(names)
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        con.execute("SET TimeZone = 'UTC'")
        for layer in sorted({spec.layer for spec in specs}):
            con.execute(f"CREATE SCHEMA {layer}")
        for spec in specs:
            _register(con, lake, spec, as_of)
        for name in [v for v in VIEWS if _view_wanted(v, names)]:
            con.execute(f"CREATE VIEW {name} AS {VIEWS[name][1]}")
        con.execute("SET lock_configuration = true")
        try:
            result = con.sql(sql)
            if result is None:
                return pl.DataFrame()
            frame: pl.DataFrame = result.pl()
            return frame
        except duckdb.CatalogException as exc:
            known = ", ".join([*(_flat(s) for s in ALL_TABLES), *VIEWS])
            raise QueryError(f"{_message(exc)} (tables and views: {known})") from None
        except duckdb.Error as exc:
            raise QueryError(_message(exc)) from None
    finally:
        con.close()


def json_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """(pure) A result as JSON-ready rows: times as ISO text, decimals as exact text, NaN and
    infinities as null, bytes as hex."""
    return [{k: _jsonable(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | dt_time):
        return value.isoformat()
    if isinstance(value, Decimal | timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _tables_named(names: set[str]) -> list[TableSpec]:
    out: list[TableSpec] = []
    for spec in ALL_TABLES:
        views = [v for v, (source, _) in VIEWS.items() if source is spec and _view_wanted(v, names)]
        if spec.key in names or _flat(spec) in names or views:
            out.append(spec)
    return out


def _view_wanted(view: str, names: set[str]) -> bool:
    return view in names or f"main.{view}" in names


def _flat(spec: TableSpec) -> str:
    return f"{spec.layer}_{spec.name}"


def _register(
    con: duckdb.DuckDBPyConnection, lake: Lake, spec: TableSpec, as_of: AsOf | None
) -> None:
    """``spec`` as the views ``layer_name`` and ``layer.name``, in its logical column names."""
    source: Any  # an Arrow dataset, or an empty Arrow table
    if as_of is None and not lake.exists(spec):
        source = delta_arrow_schema(spec).empty_table()  # never created: empty, same columns
        stored: set[str] = set()
    else:
        try:
            source = open_as_of(lake, spec, as_of).to_pyarrow_dataset()
        except ReadError as exc:
            raise QueryError(str(exc)) from None
        stored = set(source.schema.names)
    raw = f"_delta_{_flat(spec)}"
    con.register(raw, source)
    columns = [*spec.column_names, *spec.derived_partitions]
    select = ", ".join(
        f'"{stored_name(c) if stored_name(c) in stored else c}" AS "{c}"' for c in columns
    )
    con.execute(f'CREATE VIEW {_flat(spec)} AS SELECT {select} FROM "{raw}"')
    con.execute(f"CREATE VIEW {spec.layer}.{spec.name} AS SELECT * FROM {_flat(spec)}")


def _message(exc: duckdb.Error) -> str:
    """DuckDB's first line (the caret drawing below it does not fit one error line)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    first = lines[0] if lines else type(exc).__name__
    return first.rstrip("!.")


__all__ = ["BARS_1M_SQL", "LATEST_PRICE_SQL", "VIEWS", "QueryError", "json_rows", "run_query"]
