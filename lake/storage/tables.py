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
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from lake.schemas import ALL_TABLES, DATE, TableSpec
from lake.settings import Settings
from lake.storage import changes, writes
from lake.storage.layout import (
    logical_columns,
    outdated,
    renamed,
    stored_partitions,
    stored_schema,
)
from lake.storage.lineage import PREFIX, Partition, lineage_of
from lake.storage.log import check_log
from lake.storage.scope import Scope


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
        """Create the table if it does not exist, or bring an existing one to the current
        layout (:meth:`migrate`). Returns whether it was created now."""
        if self.exists(spec):
            self.migrate(spec)
            return False
        DeltaTable.create(
            self.uri(spec),
            stored_schema(spec),
            mode="ignore",
            partition_by=stored_partitions(spec),
            name=spec.key,
            description=spec.description or None,
            storage_options=self.storage_options,
            commit_properties=CommitProperties(
                custom_metadata={"cryptolake.operation": "create", "cryptolake.table": spec.key}
            ),
        )
        return True

    def create_all(self, specs: Iterable[TableSpec] = ALL_TABLES) -> list[str]:
        """Create every missing table and migrate the others; idempotent. Returns the keys of
        tables created now."""
        return [spec.key for spec in specs if self.create(spec)]

    def migrate(self, spec: TableSpec) -> bool:
        """Rewrite a table whose columns are stored under names :mod:`lake.storage.layout` has
        since changed (``bronze.klines``' ``interval``); returns whether it did.

        One overwrite commit, streamed batch by batch; the old layout stays reachable by time
        travel, and reads of those versions see it in the logical schema.

        Raises:
            DamagedTableError: the table to migrate has a damaged log.
        """
        if not renamed(spec):
            return False
        self.check(spec)
        table = DeltaTable(self.uri(spec), storage_options=self.storage_options)
        old = outdated(spec, {f.name for f in table.schema().fields})
        if not old:
            return False
        names = {c: renamed(spec)[c] for c in old}
        target = stored_schema(spec)
        source = table.to_pyarrow_dataset()
        batches = (
            b.rename_columns([names.get(n, n) for n in b.schema.names]).select(target.names)
            for b in source.to_batches()
        )
        note = ", ".join(f"{c} stored as {n}" for c, n in names.items())
        write_deltalake(
            table,
            pa.RecordBatchReader.from_batches(target, (b.cast(target) for b in batches)),
            mode="overwrite",
            schema_mode="overwrite",
            partition_by=stored_partitions(spec),
            storage_options=self.storage_options,
            writer_properties=writes.writer_properties(spec),
            commit_properties=CommitProperties(
                custom_metadata={
                    PREFIX + "operation": "migrate",
                    PREFIX + "table": spec.key,
                    PREFIX + "note": note,
                }
            ),
        )
        return True

    def check(self, spec: TableSpec, version: int | None = None) -> None:
        """Raise :class:`~lake.storage.log.DamagedTableError` when the log a read of
        ``version`` (default: the latest) would replay is damaged; cheap when nothing changed."""
        check_log(spec.key, self.uri(spec), self.storage_options, upto=version)

    def open(self, spec: TableSpec, version: int | None = None) -> DeltaTable:
        """Open a table at its latest (or a given) version, its log checked first.

        Raises:
            LookupError: the table does not exist (run ``cryptolake init``).
            DamagedTableError: the log is damaged (one line naming the table and the file).
        """
        self.check(spec, version)
        try:
            return DeltaTable(self.uri(spec), version=version, storage_options=self.storage_options)
        except TableNotFoundError:
            raise LookupError(
                f"table {spec.key} does not exist at {self.uri(spec)} (run `cryptolake init`)"
            ) from None

    def open_for_write(self, spec: TableSpec) -> DeltaTable:
        """:meth:`open` at the latest version, which must be in the current layout.

        Raises:
            ValueError: the table stores a column under an old name (run ``cryptolake init``).
        """
        table = self.open(spec)
        if renamed(spec):
            old = outdated(spec, {f.name for f in table.schema().fields})
            if old:
                raise ValueError(
                    f"table {spec.key} stores {', '.join(old)} under an old name: "
                    "run `cryptolake init` to migrate it"
                )
        return table

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
        stored = [f.name for f in snapshot.schema().fields] if renamed(spec) else ()
        columns = logical_columns(spec, stored, with_partitions=with_partitions)
        return pl.scan_delta(snapshot).select(columns)

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
        """Commits newest first: version, time, Delta operation and the cryptolake lineage.

        ``lineage`` holds the commit's ``cryptolake.*`` keys without the prefix, as text, except
        ``partitions`` (a list of ``{partition column: value}``) and ``inputs`` (``{table key:
        version}``), parsed.
        """
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

    def changed_partitions(self, spec: TableSpec, since: int) -> list[Partition]:
        """See :func:`lake.storage.changes.changed_partitions`."""
        return changes.changed_partitions(self, spec, since)

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

    def merge(
        self,
        spec: TableSpec,
        frame: pl.DataFrame,
        *,
        source: str,
        batch_id: str | None = None,
        update: writes.UpdateMode = "changed",
        keep: writes.Keep | None = None,
        note: str | None = None,
        inputs: Mapping[str, int] | None = None,
    ) -> writes.WriteResult:
        """See :func:`lake.storage.writes.merge`."""
        return writes.merge(
            self,
            spec,
            frame,
            source=source,
            batch_id=batch_id,
            update=update,
            keep=keep,
            note=note,
            inputs=inputs,
        )

    def append(
        self,
        spec: TableSpec,
        frame: pl.DataFrame,
        *,
        source: str,
        batch_id: str | None = None,
        note: str | None = None,
        inputs: Mapping[str, int] | None = None,
    ) -> writes.WriteResult:
        """See :func:`lake.storage.writes.append`."""
        return writes.append(
            self, spec, frame, source=source, batch_id=batch_id, note=note, inputs=inputs
        )

    def replace(
        self,
        spec: TableSpec,
        frame: pl.DataFrame,
        *,
        source: str,
        where: Mapping[str, Iterable[Any]] | None = None,
        date_range: tuple[date, date] | None = None,
        batch_id: str | None = None,
        note: str | None = None,
        keep_batch_ids: bool = False,
        inputs: Mapping[str, int] | None = None,
    ) -> writes.WriteResult:
        """See :func:`lake.storage.writes.replace`."""
        return writes.replace(
            self,
            spec,
            frame,
            source=source,
            where=where,
            date_range=date_range,
            batch_id=batch_id,
            note=note,
            keep_batch_ids=keep_batch_ids,
            inputs=inputs,
        )

    def replace_where(
        self,
        spec: TableSpec,
        frame: pl.DataFrame,
        *,
        scope: Scope,
        source: str,
        batch_id: str | None = None,
        note: str | None = None,
        inputs: Mapping[str, int] | None = None,
    ) -> writes.WriteResult:
        """See :func:`lake.storage.writes.replace_where`."""
        return writes.replace_where(
            self,
            spec,
            frame,
            scope=scope,
            source=source,
            batch_id=batch_id,
            note=note,
            inputs=inputs,
        )


def _ms_to_iso(ms: Any) -> str | None:
    if ms is None:
        return None
    moment = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["DATE", "Lake", "TableStats"]
