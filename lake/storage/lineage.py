"""What every commit records: the lineage carried in Delta's commit metadata.

Delta's transaction log is the ledger. Each write adds a commit whose ``custom_metadata`` holds
the keys below (all prefixed ``cryptolake.``) so that ``cryptolake history`` can show, for any
version, which operation wrote it, from which source, in which batch and Prefect flow run, how
many rows, over which time range, and a hash of the content; and so that a derived table's next
run can find what changed: the partitions each commit touched (``partitions``) and the input
table versions a write consumed (``inputs``), both compact JSON.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from lake.schemas import TableSpec

PREFIX = "cryptolake."
JSON_KEYS = ("partitions", "inputs")
"""Lineage keys stored as JSON text and parsed back by :func:`lineage_of`."""

Partition = dict[str, str]
"""One partition: logical partition column -> its value as Delta writes it (``"2024-01-01"``).
An unpartitioned table has one partition, ``{}``."""

# Columns that say how or when a row arrived rather than what it is. They are left out of the
# content hash and of the "has this row changed?" test, so re-ingesting the same facts in a new
# batch is a no-op.
ARRIVAL_COLUMNS = frozenset(
    {"batch_id", "ingested_at", "recorded_at", "detected_at", "ts_recv", "event_time", "source"}
)


def new_batch_id(prefix: str) -> str:
    """A fresh batch id such as ``ws:3f2a…``; callers with natural ids pass their own."""
    return f"{prefix}:{uuid.uuid4().hex[:16]}"


def content_hash(frame: pl.DataFrame) -> str:
    """An order-independent SHA-256 of the rows, ignoring arrival columns.

    The same facts written in another order or another batch hash the same.
    """
    cols = [c for c in frame.columns if c not in ARRIVAL_COLUMNS]
    if not cols or frame.height == 0:
        return hashlib.sha256(b"").hexdigest()
    hashes = frame.select(cols).hash_rows(seed=0x5EED).sort()
    return hashlib.sha256(hashes.to_numpy().tobytes()).hexdigest()


def current_flow_run_id() -> str | None:
    """The Prefect flow-run id when called inside a flow or task run, else ``None``.

    Prefect is consulted only when something already imported it, so plain library and CLI use
    never pays its import cost.
    """
    if "prefect.context" not in sys.modules:
        return None
    from prefect.context import FlowRunContext, TaskRunContext

    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        return str(flow_ctx.flow_run.id)
    task_ctx = TaskRunContext.get()
    if task_ctx is not None and task_ctx.task_run.flow_run_id is not None:
        return str(task_ctx.task_run.flow_run_id)
    return None


@dataclass(frozen=True)
class CommitInfo:
    """The lineage of one write, as stored in the commit."""

    operation: str
    source: str
    batch_id: str
    rows: int
    content_hash: str
    time_min: str | None = None
    time_max: str | None = None
    flow_run_id: str | None = None
    note: str | None = None
    partitions: tuple[Partition, ...] = ()
    inputs: Mapping[str, int] = field(default_factory=dict)

    def touching(self, partitions: Sequence[Partition]) -> CommitInfo:
        """This lineage with the partitions the commit touches."""
        return replace(self, partitions=tuple(partitions))

    def to_metadata(self, spec: TableSpec) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "table": spec.key,
            "operation": self.operation,
            "source": self.source,
            "batch_id": self.batch_id,
            "rows": str(self.rows),
            "content_hash": self.content_hash,
            "written_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        for key in ("time_min", "time_max", "flow_run_id", "note"):
            value = getattr(self, key)
            if value is not None:
                meta[key] = value
        if self.partitions:
            meta["partitions"] = _compact(list(self.partitions))
        if self.inputs:
            meta["inputs"] = _compact(dict(sorted(self.inputs.items())))
        return {PREFIX + k: v for k, v in meta.items()}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def partitions_of(spec: TableSpec, frame: pl.DataFrame) -> list[Partition]:
    """The distinct partitions of ``frame`` (logical columns plus derived ones), sorted."""
    if not spec.partition_by:
        return [{}]
    cols = list(spec.partition_by)
    rows = frame.select(cols).unique().sort(cols).rows()
    return [{c: _partition_value(v) for c, v in zip(cols, row, strict=True)} for row in rows]


def _partition_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def check_inputs(inputs: Mapping[str, int] | None) -> dict[str, int]:
    """``inputs`` (table key -> version consumed) checked; raises ``ValueError`` on a bad one."""
    out: dict[str, int] = {}
    for table, version in (inputs or {}).items():
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise ValueError(f"input {table!r}: version must be an integer >= 0, not {version!r}")
        out[table] = version
    return out


def describe(
    spec: TableSpec,
    frame: pl.DataFrame,
    *,
    operation: str,
    source: str,
    batch_id: str,
    note: str | None = None,
    inputs: Mapping[str, int] | None = None,
) -> CommitInfo:
    """Build the lineage of writing ``frame`` (already conformed) to ``spec``; the partitions it
    touches are added by the write (:meth:`CommitInfo.touching`)."""
    tmin = tmax = None
    if spec.time_columns and frame.height:
        lo, hi = frame.select(
            spec.time_expr().min().alias("lo"), spec.time_expr().max().alias("hi")
        ).row(0)
        tmin, tmax = (str(v) if v is not None else None for v in (lo, hi))
    return CommitInfo(
        operation=operation,
        source=source,
        batch_id=batch_id,
        rows=frame.height,
        content_hash=content_hash(frame),
        time_min=tmin,
        time_max=tmax,
        flow_run_id=current_flow_run_id(),
        note=note,
        inputs=check_inputs(inputs),
    )


def lineage_of(commit: Mapping[str, Any]) -> dict[str, Any]:
    """The cryptolake keys of one history entry, without their prefix; ``partitions`` and
    ``inputs`` parsed from JSON (a list of partitions, a ``{table: version}`` mapping)."""
    out = {k.removeprefix(PREFIX): v for k, v in commit.items() if k.startswith(PREFIX)}
    for key in JSON_KEYS:
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out
