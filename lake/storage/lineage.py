"""What every commit records: the lineage carried in Delta's commit metadata.

Delta's transaction log is the ledger. Each write adds a commit whose ``custom_metadata`` holds
the keys below (all prefixed ``cryptolake.``) so that ``cryptolake history`` can show, for any
version, which operation wrote it, from which source, in which batch and Prefect flow run, how
many rows, over which time range, and a hash of the content.
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from lake.schemas import TableSpec

PREFIX = "cryptolake."

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
        return {PREFIX + k: v for k, v in meta.items()}


def describe(
    spec: TableSpec,
    frame: pl.DataFrame,
    *,
    operation: str,
    source: str,
    batch_id: str,
    note: str | None = None,
) -> CommitInfo:
    """Build the lineage of writing ``frame`` (already conformed) to ``spec``."""
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
    )


def lineage_of(commit: dict[str, Any]) -> dict[str, Any]:
    """The cryptolake keys of one history entry, without their prefix."""
    return {k.removeprefix(PREFIX): v for k, v in commit.items() if k.startswith(PREFIX)}
