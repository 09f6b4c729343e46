"""Outcomes of a backfill and the ``ops.sources`` rows that record them (pure).

Every archive file the planner touched ends as one row of ``ops.sources`` keyed by its Vision key:
its size and ``LastModified`` from the listing, the SHA-256 of its ``.CHECKSUM`` and of the bytes
received, the rows ingested, the batch id stamped on them, and a status. Days fetched from REST
have no archive key; they are recorded under ``rest:<market>/<dataset>/<symbol>[/<interval>]/<day>``
so a re-run knows they landed.

==================  ==========================================================================
status              meaning
==================  ==========================================================================
ingested            verified against its CHECKSUM, parsed and written
header_drift        ingested; its header row disagrees with the archive's rule for its date
replaced            the file changed (LastModified, size or checksum) and its rows were replaced
checksum_mismatch   the bytes never matched the CHECKSUM (retried); nothing ingested
truncated           the bytes are not a complete zip (retried); nothing ingested
missing             absent from the archive although later days are published
partial             REST rows of a day not over yet; fetched again next run
error               anything else (unparseable file, REST failure); the detail says what
==================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import polars as pl

from lake.backfill.catalog import Series
from lake.binance.vision_paths import Period
from lake.schemas import SOURCES_TABLE
from lake.storage.writes import Keep

Status = Literal[
    "ingested",
    "header_drift",
    "replaced",
    "checksum_mismatch",
    "truncated",
    "missing",
    "partial",
    "error",
]
HELD: frozenset[str] = frozenset({"ingested", "header_drift", "replaced"})
"""Statuses whose rows are in the lake: a file recorded so, unchanged, is never fetched again."""
FAILED: frozenset[str] = frozenset({"checksum_mismatch", "truncated", "error"})
"""Statuses that make a run exit non-zero; the next run tries these files again."""
KEEP_HELD = Keep("status", HELD)
"""How ``ops.sources`` rows are merged: a row whose file is held in the lake is only replaced by
another held row. Two runs that race on one file cannot leave the loser's ``error`` (or
``missing``, ``partial``, …) over the winner's ``ingested``; a file that changed since is still
fetched again, since the planner compares the stored size, LastModified and checksum with the
listing."""


@dataclass(frozen=True)
class Outcome:
    """What became of one plan item (or one missing archive file)."""

    key: str
    series: Series
    source: Literal["vision", "rest"]
    period: Period
    period_start: date
    status: Status
    rows: int = 0
    bytes: int = 0
    size: int | None = None
    last_modified: datetime | None = None
    sha256: str | None = None
    computed_sha256: str | None = None
    batch_id: str | None = None
    detail: str = ""
    requests: int = 0
    weight: int = 0

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    def line(self) -> str:
        """One line for the output: status, key, rows, and what happened."""
        rows = f"{self.rows:,} rows" if self.status in HELD or self.status == "partial" else ""
        parts = [p for p in (rows, self.detail) if p]
        return f"{self.status:<17} {self.key}" + (f"  {'; '.join(parts)}" if parts else "")

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "market": self.series.market,
            "dataset": self.series.dataset,
            "symbol": self.series.symbol,
            "source": self.source,
            "status": self.status,
            "rows": self.rows,
            "bytes": self.bytes,
            "detail": self.detail,
            "batch_id": self.batch_id,
        }


def vision_batch_id(key: str, sha256: str) -> str:
    """``vision:<key>:<sha256 prefix>``: the same file bytes always give the same batch id."""
    return f"vision:{key}:{sha256[:16]}"


def rest_batch_id(key: str, content_hash: str) -> str:
    """``rest:<market>/<dataset>/…/<day>:<content hash prefix>``."""
    return f"{key}:{content_hash[:16]}"


def sources_frame(outcomes: Iterable[Outcome], recorded_at: datetime) -> pl.DataFrame:
    """The ``ops.sources`` rows of ``outcomes`` (one per key; the last outcome of a key wins)."""
    latest = {o.key: o for o in outcomes}
    rows = [
        {
            "key": o.key,
            "market": o.series.market,
            "dataset": o.series.dataset,
            "symbol": o.series.symbol,
            "period": o.period,
            "period_start": o.period_start,
            "size": o.size,
            "last_modified": o.last_modified,
            "sha256": o.sha256,
            "computed_sha256": o.computed_sha256,
            "rows": o.rows if o.status in HELD or o.status == "partial" else None,
            "status": o.status,
            "detail": o.detail or None,
            "batch_id": o.batch_id,
            "recorded_at": recorded_at,
        }
        for o in latest.values()
    ]
    return SOURCES_TABLE.conform(pl.DataFrame(rows, schema=SOURCES_TABLE.polars_schema()))
