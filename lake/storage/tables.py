"""The lake: where tables live, how they are created, read, described and written.

A :class:`Lake` is a root (a local folder or an ``s3://`` URI) plus storage options. Tables live at
``{root}/{layer}/{name}``. Reads return frames in each table's *logical* schema (see
:mod:`lake.schemas`); watermarks are computed from the tables themselves, never kept aside.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import TableNotFoundError

from lake.schemas import ALL_TABLES, DATE, TableSpec, delta_arrow_schema
from lake.settings import Settings
from lake.storage import writes
from lake.storage.lineage import lineage_of


@dataclass(frozen=True)
class TableStats:
    """One line of ``cryptolake tables``."""

    table: str
    layer: str
    name: str
    exists: bool
    rows: int
    version: int | None
    files: int
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "layer": self.layer,
            "name": self.name,
            "exists": self.exists,
            "rows": self.rows,
            "version": self.version,
            "files": self.files,
            "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True)
class Lake:
    """A handle on the lake's root. Cheap to create; holds no open files."""

    root: str
    storage_options: dict[str, str] | None = field(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        return cls(settings.storage.uri, dict(settings.storage.options) or None)

    def uri(self, spec: TableSpec) -> str:
        return f"{self.root.rstrip('/')}/{spec.layer}/{spec.name}"

    # --- lifecycle --------------------------------------------------------------------------

    def exists(self, spec: TableSpec) -> bool:
        return DeltaTable.is_deltatable(self.uri(spec), storage_options=self.storage_options)

    def create(self, spec: TableSpec) -> bool:
        """Create the table if it does not exist. Returns whether it was created now."""
        if self.exists(spec):
            return False
        DeltaTable.create(
            self.uri(spec),
            delta_arrow_schema(spec),
            mode="ignore",
            partition_by=list(spec.partition_by) or None,
            name=spec.key,
            description=spec.description or None,
            storage_options=self.storage_options,
            commit_properties=CommitProperties(
                custom_metadata={"cryptolake.operation": "create", "cryptolake.table": spec.key}
            ),
        )
        return True

    def create_all(self, specs: Iterable[TableSpec] = ALL_TABLES) -> list[str]:
        """Create every missing table; idempotent. Returns the keys of tables created now."""
        return [spec.key for spec in specs if self.create(spec)]

    def open(self, spec: TableSpec, version: int | None = None) -> DeltaTable:
        """Open a table at its latest (or a given) version.

        Raises:
            LookupError: the table does not exist (run ``cryptolake init``).
        """
        try:
            return DeltaTable(self.uri(spec), version=version, storage_options=self.storage_options)
        except TableNotFoundError:
            raise LookupError(
                f"table {spec.key} does not exist at {self.uri(spec)} (run `cryptolake init`)"
            ) from None

    # --- reads ------------------------------------------------------------------------------

    def scan(
        self,
        spec: TableSpec,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        with_partitions: bool = False,
    ) -> pl.LazyFrame:
        """A lazy read in the logical schema, optionally as of a version or a timestamp."""
        if version is not None and as_of is not None:
            raise ValueError("give a version or a timestamp, not both")
        snapshot = self.open(spec, version)  # a clear error when the table is missing
        if as_of is not None:
            snapshot.load_as_version(as_of)
        return self.scan_snapshot(spec, snapshot, with_partitions=with_partitions)

    def scan_snapshot(
        self, spec: TableSpec, snapshot: DeltaTable, *, with_partitions: bool = False
    ) -> pl.LazyFrame:
        """:meth:`scan` of a table already open at the version to read."""
        lf = pl.scan_delta(snapshot)
        cols: list[pl.Expr] = [pl.col(c.name).cast(c.dtype) for c in spec.columns]
        if with_partitions:
            cols += [pl.col(p) for p in spec.derived_partitions]
        return lf.select(cols)

    def read(
        self,
        spec: TableSpec,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        where: pl.Expr | None = None,
    ) -> pl.DataFrame:
        """Read a table (or part of it) in its logical schema; see :meth:`scan`."""
        lf = self.scan(spec, version=version, as_of=as_of, with_partitions=True)
        if where is not None:
            lf = lf.filter(where)
        return lf.drop(list(spec.derived_partitions)).collect()

    def history(self, spec: TableSpec, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits newest first: version, time, Delta operation and the cryptolake lineage."""
        out = []
        for commit in self.open(spec).history(limit):
            metrics = commit.get("operationMetrics") or {}
            out.append(
                {
                    "version": commit.get("version"),
                    "timestamp": _ms_to_iso(commit.get("timestamp")),
                    "operation": commit.get("operation"),
                    "rows_added": metrics.get("num_added_rows")
                    or metrics.get("num_target_rows_inserted"),
                    "rows_updated": metrics.get("num_target_rows_updated"),
                    "lineage": lineage_of(commit),
                }
            )
        return out

    def stats(self, spec: TableSpec) -> TableStats:
        """Rows, files, size and version from the Delta log (no data file is read)."""
        if not self.exists(spec):
            return TableStats(spec.key, spec.layer, spec.name, False, 0, None, 0, 0)
        dt = self.open(spec)
        actions = pl.DataFrame(dt.get_add_actions(flatten=True))
        rows = int(actions["num_records"].sum()) if actions.height else 0
        size = int(actions["size_bytes"].sum()) if actions.height else 0
        return TableStats(
            spec.key, spec.layer, spec.name, True, rows, dt.version(), actions.height, size
        )

    def watermarks(self, spec: TableSpec) -> pl.DataFrame:
        """Latest event time and row count per ``spec.watermark_by`` group, read from the table."""
        if not spec.time_columns:
            raise ValueError(f"{spec.key} has no time column")
        return (
            self.scan(spec)
            .group_by(list(spec.watermark_by))
            .agg(spec.time_expr().max().alias("watermark"), pl.len().alias("rows"))
            .sort(list(spec.watermark_by))
            .collect()
        )

    # --- writes (see lake.storage.writes) ---------------------------------------------------

    def merge(self, spec: TableSpec, frame: pl.DataFrame, **kw: Any) -> writes.WriteResult:
        return writes.merge(self, spec, frame, **kw)

    def append(self, spec: TableSpec, frame: pl.DataFrame, **kw: Any) -> writes.WriteResult:
        return writes.append(self, spec, frame, **kw)

    def replace(
        self,
        spec: TableSpec,
        frame: pl.DataFrame,
        *,
        where: Mapping[str, Iterable[Any]] | None = None,
        date_range: tuple[date, date] | None = None,
        **kw: Any,
    ) -> writes.WriteResult:
        return writes.replace(self, spec, frame, where=where, date_range=date_range, **kw)

    def replace_where(
        self, spec: TableSpec, frame: pl.DataFrame, *, scope: str, **kw: Any
    ) -> writes.WriteResult:
        return writes.replace_where(self, spec, frame, scope=scope, **kw)


def _ms_to_iso(ms: Any) -> str | None:
    if ms is None:
        return None
    moment = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["DATE", "Lake", "TableStats"]
