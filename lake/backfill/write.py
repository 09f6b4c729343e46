"""Writing one file's rows to bronze, and recording outcomes in ``ops.sources`` (I/O).

* :func:`write_rows` merges a file's rows on the table's natural key (``mode="merge"``), or
  replaces the file's *scope* — its series' rows over its period — in one atomic MERGE that
  updates every matched row, inserts the new ones and deletes the scope's rows the file no longer
  holds (``mode="replace"``). The scope is narrower than a partition (other symbols share a
  ``market/date`` partition), so their rows and batch ids are left alone; the replaced rows stay
  reachable by time travel. Each attempt re-reads the table, so a retry after a concurrent commit
  is safe.
* Writes to one table are serialised in-process (threads of one run would only conflict);
  :class:`Ledger` group-commits ``ops.sources`` rows: callers block until their rows are
  committed, and rows of callers arriving meanwhile share the next commit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime

import polars as pl

from lake.backfill.catalog import Series
from lake.backfill.model import Mode
from lake.backfill.provenance import KEEP_HELD, Outcome, sources_frame
from lake.schemas import DATE, KLINES, SOURCES_TABLE, TableSpec
from lake.storage import Lake, Scope, WriteResult, day_range
from lake.storage.writes import has_duplicate_keys

APPEND_MIN_ROWS = 100_000
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LEDGERS: dict[str, Ledger] = {}
_REGISTRY = threading.Lock()


def table_lock(lake: Lake, spec: TableSpec) -> threading.Lock:
    """The process-wide lock of one table of one lake."""
    with _REGISTRY:
        return _LOCKS.setdefault((lake.root, spec.key), threading.Lock())


def write_rows(
    lake: Lake,
    series: Series,
    frame: pl.DataFrame,
    *,
    mode: Mode,
    first_day: date,
    last_day: date,
    source: str,
    batch_id: str,
    note: str | None = None,
    append_if_new: bool = False,
) -> WriteResult:
    """Write one file's (or one REST day's) rows of ``series`` covering ``first_day..last_day``.

    With ``append_if_new``, a large file (:data:`APPEND_MIN_ROWS`) whose scope holds nothing yet
    is appended, which costs half a merge; a count afterwards catches a writer that raced into the
    same scope, and a scoped replace then leaves exactly these rows. Small files are merged: two
    counts would cost more than the merge saves.
    """
    spec = series.table
    fresh = mode == "merge" and append_if_new and frame.height >= APPEND_MIN_ROWS
    # an append, unlike a merge, would keep both copies of a repeated key
    fresh = fresh and not has_duplicate_keys(frame, spec.merge_keys)
    if fresh and not scope_rows(lake, series, first_day, last_day):
        result = lake.append(spec, frame, source=source, batch_id=batch_id, note=note)
        if scope_rows(lake, series, first_day, last_day) == frame.height:
            return result
        mode = "replace"
    with table_lock(lake, spec):
        if mode == "merge":
            return lake.merge(spec, frame, source=source, batch_id=batch_id, note=note)
        return replace_scope(
            lake, series, frame, first_day, last_day, source=source, batch_id=batch_id, note=note
        )


def scope_rows(lake: Lake, series: Series, first_day: date, last_day: date) -> int:
    """How many rows of ``series`` the table holds between the two days."""
    # the scope's date range prunes partitions before a data file is opened
    scope = file_scope(series, first_day, last_day)
    lf = lake.scan(series.table, with_partitions=True).filter(scope.expr())
    count: int = lf.select(pl.len()).collect().item()
    return count


def file_scope(series: Series, first_day: date, last_day: date) -> Scope:
    """The rows of ``series`` between the two days (inclusive): what one file holds."""
    spec = series.table
    members: dict[str, list[str]] = {**series.partition_values(), "symbol": [series.symbol]}
    if spec is KLINES and series.interval is not None:
        members["interval"] = [series.interval]
    if DATE in spec.partition_by:
        return Scope.of(members, dates=(first_day, last_day))
    return Scope.of(members, time=day_range(spec.time_columns[0], first_day, last_day))


def replace_scope(
    lake: Lake,
    series: Series,
    frame: pl.DataFrame,
    first_day: date,
    last_day: date,
    *,
    source: str,
    batch_id: str,
    note: str | None = None,
) -> WriteResult:
    """Make the rows of ``series`` between the two days exactly ``frame``, in one commit."""
    spec = series.table
    if frame.height:  # rows past the file's period widen the scope rather than duplicate
        t = spec.time_expr()
        lo, hi = spec.conform(frame).select(t.min().alias("lo"), t.max().alias("hi")).row(0)
        first_day, last_day = min(first_day, lo.date()), max(last_day, hi.date())
    scope = file_scope(series, first_day, last_day)
    return lake.replace_where(
        spec, frame, scope=scope, source=source, batch_id=batch_id, note=note or str(scope)
    )


class Ledger:
    """Group commit of ``ops.sources`` rows for one lake (one per lake root per process)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._cv = threading.Condition()
        self._pending: list[Outcome] = []
        self._queued = 0
        self._done = 0
        self._flushing = False
        self.commits = 0

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Return once ``outcomes`` are committed (a commit only when some row changed)."""
        if not outcomes:
            return
        with self._cv:
            self._pending.extend(outcomes)
            self._queued += 1
            mine = self._queued
            while self._done < mine:
                if self._flushing:
                    self._cv.wait()
                    continue
                batch, upto = self._pending, self._queued
                self._pending, self._flushing = [], True
                self._cv.release()
                try:
                    self._write(batch)
                except BaseException:
                    with self._cv:  # put the rows back for the next flusher, then give up
                        self._pending[:0] = batch
                    raise
                finally:
                    self._cv.acquire()
                    self._flushing = False
                    self._cv.notify_all()
                self._done = max(self._done, upto)

    def _write(self, batch: list[Outcome]) -> None:
        frame = sources_frame(batch, datetime.now(UTC))
        with table_lock(self.lake, SOURCES_TABLE):
            result = self.lake.merge(SOURCES_TABLE, frame, source="backfill", keep=KEEP_HELD)
        self.commits += result.committed


def ledger_for(lake: Lake) -> Ledger:
    """The process-wide ledger of ``lake``."""
    with _REGISTRY:
        if lake.root not in _LEDGERS:
            _LEDGERS[lake.root] = Ledger(lake)
        return _LEDGERS[lake.root]
