"""Land closed segments into bronze, then find every discontinuity the new rows reveal.

Landing is idempotent: rows are merged on their natural keys and a segment is moved aside only
after its rows are committed, so a crash at any point means the segment is landed again and
nothing changes the second time. Frames that do not parse go to ``ops.quarantine``.

A damaged segment (bytes no chunk can be read from: a flipped byte, a torn tail) is landed for
all its readable chunks; its unreadable bytes are quarantined (base64), ``damaged`` gaps are
recorded for every stream it may have held (:mod:`lake.capture.damage`), one warning is logged,
and only then is it moved aside, to ``damaged/`` instead of ``landed/``.

After the merge, continuity is checked *on bronze* (:mod:`lake.capture.continuity_scan`) over
the span each batch touched, reaching back to the last stored row:

* agg_trades / trades: holes in ``a`` / ``t`` ids (kind ``id``, repairable by REST);
* klines: missing minutes (kind ``cadence``, repairable by REST);
* mark_price: missing seconds (kind ``cadence``, capture loss);
* coverage gaps the collector wrote (drops, recycles) for streams REST cannot refill
  (bookTicker, markPrice, forceOrder): kind ``disconnect``, capture loss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from lake.binance.parse import (
    ParsedFrames,
    combine,
    parse_ws_frames,
    parse_ws_lines,
)
from lake.binance.ws_frames import CONTROL_PREFIX
from lake.capture.continuity_scan import scan_continuity
from lake.capture.damage import SegmentDamage, assess
from lake.capture.losses import (
    CONTROL,
    coverage_gap_rows,
    damage_gap_rows,
    damage_quarantine_rows,
    quarantine_rows,
)
from lake.capture.segments import (
    Chunk,
    SegmentContents,
    closed_segments,
    mark_damaged,
    mark_landed,
    read_segment,
    segment_after,
    segment_before,
)
from lake.schemas import (
    GAPS,
    QUARANTINE,
    TABLES,
)
from lake.settings import Market
from lake.storage import Lake

log = logging.getLogger("cryptolake.land")


@dataclass
class LandResult:
    """What one land run did: frames read, rows they held, and rows new to bronze.

    ``segments`` counts segments landed whole (moved to ``landed/``); ``damaged`` lists those
    landed in part (moved to ``damaged/``), with what each lost.
    """

    segments: int = 0
    frames: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    gaps: int = 0
    batches: list[str] = field(default_factory=list)
    damaged: list[SegmentDamage] = field(default_factory=list)

    def add_rows(self, table: str, n: int, stored: int = 0) -> None:
        self.rows[table] = self.rows.get(table, 0) + n
        self.stored[table] = self.stored.get(table, 0) + stored

    def add(self, other: LandResult) -> None:
        """Add ``other``'s figures to these."""
        self.segments += other.segments
        self.frames += other.frames
        self.rejected += other.rejected
        self.gaps += other.gaps
        self.batches += other.batches
        self.damaged += other.damaged
        for table, n in other.rows.items():
            self.add_rows(table, n, other.stored.get(table, 0))

    def as_dict(self) -> dict[str, object]:
        return {
            "segments": self.segments,
            "frames": self.frames,
            "rows": dict(self.rows),
            "stored": dict(self.stored),
            "rejected": self.rejected,
            "gaps": self.gaps,
            "damaged": [d.as_dict() for d in self.damaged],
        }


def land_market(
    lake: Lake,
    directory: Path,
    market: Market,
    *,
    now: datetime | None = None,
    unit_frames: int = 250_000,
) -> LandResult:
    """Land every closed segment under ``directory`` (one market), oldest first.

    Work goes in units of whole chunks, about ``unit_frames`` frames each, running on across
    segments so that every unit is about as large. Parsing a unit (Python) overlaps with
    committing the previous one (Delta, which releases the GIL) on a writer thread; commits keep
    their order, and a segment is moved aside only after the unit holding its last chunk is
    committed (with its damage, if any, recorded).
    """
    result = LandResult()
    detected = now or datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="land") as writer:
        pending: Future[None] | None = None
        for unit in _units(market, directory, unit_frames):
            parsed = parse_chunks(market, unit.chunks, unit.batch_id)
            if pending is not None:
                pending.result()
            pending = writer.submit(_commit, lake, market, parsed, unit, detected, result)
        if pending is not None:
            pending.result()
    return result


@dataclass
class _Unit:
    """Chunks landed in one commit per table, and the segments it finishes (with their damage,
    for a damaged one)."""

    batch_id: str
    chunks: list[Chunk] = field(default_factory=list)
    frames: int = 0
    finishes: list[tuple[Path, SegmentDamage | None]] = field(default_factory=list)


def _units(market: Market, directory: Path, unit_frames: int) -> Iterator[_Unit]:
    """Chunks of consecutive segments in units of about ``unit_frames`` frames; the batch id
    names where a unit starts (segment and chunk), so landing again gives the same ids.

    A damaged segment is assessed with the segments written just before and after it: the one
    before it in this run (or the last one moved aside earlier), the one after it in this run
    (or the one still being written).
    """
    paths = closed_segments(directory)
    unit: _Unit | None = None
    previous: list[Chunk] | None = None
    ahead: SegmentContents | None = None
    for n, path in enumerate(paths):
        contents = ahead if ahead is not None else read_segment(path)
        ahead = None
        damage = None
        if contents.damage:
            if n + 1 < len(paths):
                ahead = read_segment(paths[n + 1])
            after = (
                ahead.chunks
                if ahead is not None
                else _chunks_of(segment_after(directory, path.stem))
            )
            if previous is None:
                previous = _chunks_of(segment_before(directory, path.stem))
            damage = assess(path.name, contents, before=previous, after=after)
        for i, chunk in enumerate(contents.chunks):
            if unit is not None and unit.frames >= unit_frames:
                yield unit
                unit = None
            if unit is None:
                unit = _Unit(f"ws:{market}:{path.stem}:{i}")
            unit.chunks.append(chunk)
            unit.frames += len(chunk)
        if unit is None:  # a segment with no whole chunk is moved aside all the same
            unit = _Unit(f"ws:{market}:{path.stem}:0")
        unit.finishes.append((path, damage))
        previous = contents.chunks
    if unit is not None:
        yield unit


def _chunks_of(path: Path | None) -> list[Chunk]:
    """The readable chunks of a neighbouring segment (none when there is none, or it is gone)."""
    try:
        return read_segment(path).chunks if path is not None else []
    except FileNotFoundError:  # moved or deleted meanwhile
        return []


PIECE_FRAMES = 8192
"""Frames of one stream decoded in one call. Their structs then still sit in cache while their
columns are built (``python -m bench landing`` compares with whole chunks)."""


def parse_chunks(
    market: Market, chunks: list[Chunk], batch_id: str, *, piece_frames: int = PIECE_FRAMES
) -> ParsedFrames:
    """Parse landing chunks a piece at a time: a piece of one known stream in one call, others
    (and a piece that does not decode whole) frame by frame."""
    parts = []
    for chunk in chunks:
        for c in chunk.pieces(piece_frames):
            fast = None
            if c.label:
                fast = parse_ws_lines(
                    market, c.label, c.lines, c.recv_ns, count=len(c), batch_id=batch_id
                )
            parts.append(fast or parse_ws_frames(market, c.frames(), c.recv_ns, batch_id=batch_id))
    return combine(parts) if parts else parse_ws_frames(market, [], [], batch_id=batch_id)


def _commit(
    lake: Lake,
    market: Market,
    parsed: ParsedFrames,
    unit: _Unit,
    detected: datetime,
    result: LandResult,
) -> None:
    batch_id = unit.batch_id
    controls = [
        CONTROL.decode(r.payload) for r in parsed.rejected if r.payload.startswith(CONTROL_PREFIX)
    ]
    rejected = [r for r in parsed.rejected if not r.payload.startswith(CONTROL_PREFIX)]
    damage = [d for _, d in unit.finishes if d is not None]
    for name, rows in parsed.tables().items():
        # live rows never overwrite stored ones (an archive or REST row for a key wins)
        written = lake.merge(
            TABLES[f"bronze.{name}"], rows, source="ws", batch_id=batch_id, update="never"
        )
        result.add_rows(name, rows.height, written.inserted)
    quarantined = [
        *([quarantine_rows(rejected, market, batch_id, detected)] if rejected else []),
        *([damage_quarantine_rows(damage, market, batch_id, detected)] if damage else []),
    ]
    if quarantined:
        lake.merge(QUARANTINE, pl.concat(quarantined), source="ws")
    gaps = pl.concat(
        [
            *scan_continuity(lake, parsed, detected),
            coverage_gap_rows(controls, market, detected),
            damage_gap_rows(damage, market, detected),
        ],
        how="vertical",
    )
    if gaps.height:
        lake.merge(GAPS, gaps, source="ws", update="never")
    for path, damaged in unit.finishes:  # only now: rows, quarantine and gaps are committed
        if damaged is None:
            mark_landed(path)
            result.segments += 1
        else:
            moved = mark_damaged(path)
            result.damaged.append(damaged)
            log.warning("%s; moved to %s", damaged.describe(), moved.parent)
    result.frames += unit.frames - len(controls)
    result.rejected += len(rejected)
    result.gaps += gaps.height
    result.batches.append(batch_id)


def land_all(
    lake: Lake, landing_root: Path, markets: Iterable[Market], *, now: datetime | None = None
) -> dict[str, LandResult]:
    """Land every market's closed segments."""
    return {m: land_market(lake, landing_root / m, m, now=now) for m in markets}
