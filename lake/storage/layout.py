"""(pure) How a table's logical schema is laid out in Delta: stored names and physical types.

Three things differ between a :class:`~lake.schemas.TableSpec` and what Delta stores, and only
this module and its callers in :mod:`lake.storage` know it:

* timestamps are microseconds and there are no unsigned integers (see :mod:`lake.schemas`);
* the derived ``date`` partition lives in the log and the paths, not in the data files;
* a column whose name is an SQL keyword is stored under another name (:data:`STORED_NAMES`).
  delta-rs writes the predicate of each MERGE into its commit by re-rendering it, quoting only
  names that are not lower-case snake case, and a writer that loses a race re-parses that text
  to check for conflicts; ``interval = '1m'`` does not parse, so the loser failed instead of
  retrying (docs/decisions.md, entry 24). Quoting on our side cannot help: delta-rs discards it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import polars as pl
import pyarrow as pa

from lake.schemas import TableSpec, delta_arrow_schema

STORED_NAMES: Mapping[str, str] = {"interval": "kline_interval"}
"""Logical column name -> the name Delta stores it under, for names delta-rs cannot re-parse."""


def stored_name(name: str) -> str:
    """The name column ``name`` has in the Delta table."""
    return STORED_NAMES.get(name, name)


def renamed(spec: TableSpec) -> dict[str, str]:
    """The columns of ``spec`` stored under another name (logical -> stored)."""
    return {c: STORED_NAMES[c] for c in spec.column_names if c in STORED_NAMES}


def stored_schema(spec: TableSpec) -> pa.Schema:
    """The Arrow schema Delta stores: physical types, stored names, derived partitions last."""
    schema = delta_arrow_schema(spec)
    return pa.schema([f.with_name(stored_name(f.name)) for f in schema])


def stored_partitions(spec: TableSpec) -> list[str] | None:
    return [stored_name(p) for p in spec.partition_by] or None


def to_stored(spec: TableSpec, frame: pl.DataFrame) -> pa.Table:
    """``frame`` (logical columns plus derived partitions) as Arrow in the stored schema."""
    target = stored_schema(spec)
    table = frame.select(delta_arrow_schema(spec).names).to_arrow()
    return table.rename_columns(target.names).cast(target)


def logical_columns(
    spec: TableSpec, stored: Collection[str], *, with_partitions: bool = False
) -> list[pl.Expr]:
    """Expressions that turn a stored table into ``spec``'s logical schema.

    ``stored`` are the column names of the version read: versions written before a column got its
    stored name still carry the logical one, and time travel reads them as they are.
    """
    cols: list[pl.Expr] = []
    for c in spec.columns:
        name = stored_name(c.name)
        source = name if name in stored else c.name
        cols.append(pl.col(source).cast(c.dtype).alias(c.name))
    if with_partitions:
        cols += [pl.col(stored_name(p)).alias(p) for p in spec.derived_partitions]
    return cols


def outdated(spec: TableSpec, stored: Collection[str]) -> list[str]:
    """The logical names still stored where :data:`STORED_NAMES` wants another name."""
    return [c for c in renamed(spec) if c in stored]
