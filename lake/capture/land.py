"""Land closed segments into bronze, then find every discontinuity the new rows reveal.

Landing is idempotent: rows are merged on their natural keys and a segment is moved aside only
after its rows are committed, so a crash at any point means the segment is landed again and
nothing changes the second time. Frames that do not parse go to ``ops.quarantine``.

After the merge, continuity is checked *on bronze* (which also holds earlier captures and REST
fills) over the span each batch touched, reaching back to the last stored row:

* agg_trades / trades: holes in ``a`` / ``t`` ids (kind ``id``, repairable by REST);
* klines: missing minutes (kind ``cadence``, repairable by REST);
* mark_price: missing seconds (kind ``cadence``, capture loss);
* coverage gaps the collector wrote (drops, recycles) for streams REST cannot refill
  (bookTicker, markPrice, forceOrder): kind ``disconnect``, capture loss.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import polars as pl

from lake.binance.endpoints import KIND_TABLE, stream_kind
from lake.binance.parse import (
    ParsedFrames,
    RejectedFrame,
    combine,
    parse_ws_frames,
    parse_ws_lines,
)
from lake.binance.ws import CONTROL_PREFIX
from lake.capture.segments import Chunk, closed_segments, mark_landed, read_segment
from lake.gaps import GapStatus, ledger_rows
from lake.quality.continuity import cadence_gaps, id_gaps
from lake.schemas import (
    AGG_TRADES,
    DATE,
    GAPS,
    KLINES,
    MARK_PRICE,
    QUARANTINE,
    TABLES,
    TRADES,
    TableSpec,
)
from lake.settings import Market
from lake.storage import Lake

ID_TABLES: dict[str, tuple[TableSpec, str, str]] = {
    "agg_trades": (AGG_TRADES, "agg_trade_id", "transact_time"),
    "trades": (TRADES, "trade_id", "trade_time"),
}
REST_REFILLABLE = frozenset({"bronze.agg_trades", "bronze.trades", "bronze.klines"})


class Control(msgspec.Struct):
    """A record the collector wrote into the landing stream about its own coverage.

    ``coverage_gap``: the streams' coverage broke; ``before`` holds, per stream, the id and
    exchange time of the last frame held before the break, and ``after_ms`` the exchange time
    when coverage resumed (or the run ended). ``silent``: streams reported silent, with the
    reason per stream and the exchange time ``at_ms`` of the report. ``from_ns``/``to_ns`` are
    the collector's clock, kept for the record only: windows are bounded by exchange facts.
    """

    cryptolake: str
    streams: list[str] = []
    from_ns: int = 0
    to_ns: int = 0
    cause: str = ""
    before: dict[str, list[int | None]] = {}
    after_ms: int | None = None
    reasons: dict[str, str] = {}
    at_ms: int | None = None


_CONTROL = msgspec.json.Decoder(Control)


@dataclass
class LandResult:
    """What one land run did: frames read, rows they held, and rows new to bronze."""

    segments: int = 0
    frames: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    gaps: int = 0
    batches: list[str] = field(default_factory=list)

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
    committed.
    """
    result = LandResult()
    detected = now or datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="land") as writer:
        pending: Future[None] | None = None
        for unit in _units(market, closed_segments(directory), unit_frames):
            parsed = parse_chunks(market, unit.chunks, unit.batch_id)
            if pending is not None:
                pending.result()
            pending = writer.submit(_commit, lake, market, parsed, unit, detected, result)
        if pending is not None:
            pending.result()
    return result


@dataclass
class _Unit:
    """Chunks landed in one commit per table, and the segments it finishes."""

    batch_id: str
    chunks: list[Chunk] = field(default_factory=list)
    frames: int = 0
    finishes: list[Path] = field(default_factory=list)


def _units(market: Market, paths: Iterable[Path], unit_frames: int) -> Iterator[_Unit]:
    """Chunks of consecutive segments in units of about ``unit_frames`` frames; the batch id
    names where a unit starts (segment and chunk), so landing again gives the same ids."""
    unit: _Unit | None = None
    for path in paths:
        for i, chunk in enumerate(read_segment(path).chunks):
            if unit is not None and unit.frames >= unit_frames:
                yield unit
                unit = None
            if unit is None:
                unit = _Unit(f"ws:{market}:{path.stem}:{i}")
            unit.chunks.append(chunk)
            unit.frames += len(chunk)
        if unit is None:  # a segment with no whole chunk is landed (moved aside) all the same
            unit = _Unit(f"ws:{market}:{path.stem}:0")
        unit.finishes.append(path)
    if unit is not None:
        yield unit


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
        _CONTROL.decode(r.payload) for r in parsed.rejected if r.payload.startswith(CONTROL_PREFIX)
    ]
    rejected = [r for r in parsed.rejected if not r.payload.startswith(CONTROL_PREFIX)]
    for name, rows in parsed.tables().items():
        # live rows never overwrite stored ones (an archive or REST row for a key wins)
        written = lake.merge(
            TABLES[f"bronze.{name}"], rows, source="ws", batch_id=batch_id, update="never"
        )
        result.add_rows(name, rows.height, written.inserted)
    if rejected:
        lake.merge(QUARANTINE, quarantine_rows(rejected, market, batch_id, detected), source="ws")
    gaps = pl.concat(
        [*scan_continuity(lake, parsed, detected), coverage_gap_rows(controls, market, detected)],
        how="vertical",
    )
    if gaps.height:
        lake.merge(GAPS, gaps, source="ws", update="never")
    for path in unit.finishes:
        mark_landed(path)
        result.segments += 1
    result.frames += unit.frames - len(controls)
    result.rejected += len(rejected)
    result.gaps += gaps.height
    result.batches.append(batch_id)


def quarantine_rows(
    rejected: Sequence[RejectedFrame], market: str, batch_id: str, detected: datetime
) -> pl.DataFrame:
    rows = [
        {
            "record_id": hashlib.sha256(f"{market}|{r.recv_ns}|".encode() + r.payload).hexdigest()[
                :24
            ],
            "table_name": "landing",
            "market": market,
            "symbol": None,
            "reason": r.reason,
            "payload": r.payload.decode("utf-8", "replace"),
            "source": "ws",
            "batch_id": batch_id,
            "detected_at": detected,
        }
        for r in rejected
    ]
    return QUARANTINE.conform(pl.DataFrame(rows, schema=QUARANTINE.polars_schema()))


def scan_continuity(lake: Lake, parsed: ParsedFrames, detected: datetime) -> list[pl.DataFrame]:
    """Ledger rows for every discontinuity on bronze around what ``parsed`` brought in."""
    out: list[pl.DataFrame] = []
    for name, (spec, id_col, time_col) in ID_TABLES.items():
        frame: pl.DataFrame = getattr(parsed, name)
        if frame.height:
            holes = id_holes_around(lake, spec, frame, id_col=id_col, time_col=time_col)
            out.append(ledger_rows(holes, table=spec.key, kind="id", detected_at=detected))
    klines = parsed.klines
    if klines.height:
        for (_, kind, interval), part in klines.partition_by(
            ["market", "kind", "interval"], as_dict=True
        ).items():
            stored = _around(
                lake,
                KLINES,
                part,
                "open_time",
                timedelta(minutes=5),
                extra=(pl.col("kind") == kind) & (pl.col("interval") == interval),
            )
            step = timedelta(minutes=1) if interval == "1m" else None
            if step is None:
                continue
            holes = cadence_gaps(stored, time_col="open_time", every=step, by=("market", "symbol"))
            out.append(
                ledger_rows(
                    holes,
                    table=KLINES.key,
                    kind="cadence",
                    detected_at=detected,
                    detail=f"{kind} {interval}",
                )
            )
    marks = parsed.mark_price
    if marks.height:
        stored = _around(lake, MARK_PRICE, marks, "event_time", timedelta(seconds=10))
        holes = cadence_gaps(stored, time_col="event_time", every=timedelta(seconds=1))
        out.append(
            ledger_rows(
                holes,
                table=MARK_PRICE.key,
                kind="cadence",
                detected_at=detected,
                status="capture_loss",
                market="um",
            )
        )
    return out


def id_holes_around(
    lake: Lake, spec: TableSpec, frame: pl.DataFrame, *, id_col: str, time_col: str
) -> pl.DataFrame:
    """Id holes on bronze from the last stored id before ``frame`` to the end of ``frame``.

    Holes are found in the batch itself (plus the last stored row before it); bronze is read
    back only inside those holes, since earlier batches or REST fills may already hold them.
    """
    out = []
    ranges = frame.group_by("market", "symbol").agg(
        pl.col(id_col).min().alias("lo"),
        pl.col(id_col).max().alias("hi"),
        pl.col(id_col).n_unique().alias("ids"),
        pl.col(time_col).min().alias("first"),
    )
    table = lake.scan(spec, with_partitions=True)
    cols = ["market", "symbol", id_col, time_col]
    first = ranges.get_column("first").min()
    recent = table.filter(pl.col(DATE) >= first.date() - timedelta(days=1))  # type: ignore[union-attr]
    # A batch nearly always continues the stored ids: the row at lo - 1 of every symbol, in one
    # read of the files of the last minutes; only symbols without one are searched further.
    near = recent.filter(pl.col(time_col) >= first - PREDECESSOR_WINDOW)  # type: ignore[operator]
    continuing = near.filter(
        pl.any_horizontal(
            (pl.col("market") == m) & (pl.col("symbol") == s) & (pl.col(id_col) == lo - 1)
            for m, s, lo in ranges.select("market", "symbol", "lo").iter_rows()
        )
    )
    found = continuing.select(cols).collect()
    for market, symbol, lo, hi, n_ids in ranges.drop("first").iter_rows():
        key = (pl.col("market") == market) & (pl.col("symbol") == symbol)
        before = found.filter(key)
        if before.height == 0:
            before = _last_before(table.filter(key), recent.filter(key), cols, id_col, lo)
        if hi - lo + 1 == n_ids and (before.height == 0 or before.item(0, id_col) == lo - 1):
            continue  # the usual case: dense ids continuing the stored ones; nothing to sort
        part = frame.filter(key) if ranges.height > 1 else frame
        holes = id_gaps(part, id_col=id_col, time_col=time_col, after=before)
        for hole in holes.iter_rows(named=True):
            stored = (
                table.filter(key & pl.col(id_col).is_between(hole["start_id"], hole["end_id"]))
                .select("market", "symbol", id_col, time_col)
                .collect()
            )
            if stored.height == hole["missing"]:
                continue  # already filled
            edges = pl.DataFrame(
                {
                    "market": [market] * 2,
                    "symbol": [symbol] * 2,
                    id_col: [hole["start_id"] - 1, hole["end_id"] + 1],
                    time_col: [hole["start_time"], hole["end_time"]],
                },
                schema={
                    "market": pl.String,
                    "symbol": pl.String,
                    id_col: pl.Int64,
                    time_col: part.schema[time_col],
                },
            )
            out.append(
                id_gaps(
                    pl.concat([edges, stored.cast(edges.schema)]), id_col=id_col, time_col=time_col
                )
            )
    return pl.concat(out) if out else pl.DataFrame()


PREDECESSOR_WINDOW = timedelta(minutes=10)
"""How far back of a batch the stored row before each symbol's first new id is looked for in one
read; a symbol whose last stored trade is older is searched on its own."""


def _last_before(
    table: pl.LazyFrame, recent: pl.LazyFrame, cols: list[str], id_col: str, lo: int
) -> pl.DataFrame:
    """The stored row (of one symbol) with the largest id below ``lo``: looked for in the
    batch's first day and the day before, then in the whole table."""
    for lf in (recent, table):
        row = lf.filter(pl.col(id_col) < lo).select(cols).top_k(1, by=id_col).collect()
        if row.height:
            return row
    return row


def _around(
    lake: Lake,
    spec: TableSpec,
    frame: pl.DataFrame,
    time_col: str,
    margin: timedelta,
    extra: pl.Expr | None = None,
) -> pl.DataFrame:
    lo, hi = frame.select(
        pl.col(time_col).min().alias("lo"), pl.col(time_col).max().alias("hi")
    ).row(0)
    symbols = frame.get_column("symbol").unique().to_list()
    cond = pl.col("symbol").is_in(symbols) & pl.col(time_col).is_between(lo - margin, hi)
    if extra is not None:
        cond = cond & extra
    return lake.scan(spec).filter(cond).collect()


def coverage_gap_rows(controls: Sequence[Control], market: str, detected: datetime) -> pl.DataFrame:
    """Ledger rows for the collector's own records: one per table and symbol of each.

    A ``coverage_gap`` gives a ``disconnect`` row whose window runs from the exchange time of a
    stream's last frame before the break to the exchange time coverage resumed; for trade
    tables ``start_id`` is the first id that may be missing. A window that is empty or runs
    backwards (a replay that started over) cannot hide anything and gives no row, and neither
    does a stream that had not delivered before the break. A ``silent`` record gives a
    ``silent`` row, capture loss, with the reason.
    """
    rows: list[dict[str, object]] = []
    for c in controls:
        if c.cryptolake == "coverage_gap":
            rows += _disconnect_rows(c)
        elif c.cryptolake == "silent":
            rows += _silent_rows(c)
    if not rows:
        return GAPS.empty()
    frames = []
    for (table, kind, status, detail), part in (
        pl.DataFrame(rows, schema=_ROW_SCHEMA)
        .partition_by(["table", "kind", "status", "detail"], as_dict=True)
        .items()
    ):
        frames.append(
            ledger_rows(
                part.drop("table", "kind", "status", "detail").unique(keep="first"),
                table=str(table),
                kind=str(kind),
                detected_at=detected,
                status=status,
                market=market,
                detail=str(detail),
            )
        )
    return pl.concat(frames).unique("gap_id", keep="first")


_ROW_SCHEMA: dict[str, pl.DataType] = {
    "table": pl.String(),
    "kind": pl.String(),
    "status": pl.String(),
    "detail": pl.String(),
    "symbol": pl.String(),
    "start_id": pl.Int64(),
    "start_time": pl.Datetime("us", "UTC"),
    "end_time": pl.Datetime("us", "UTC"),
}


def _table_of(stream: str) -> tuple[str, str] | None:
    """``(bronze table key, SYMBOL)`` of a stream name such as ``btcusdt@aggTrade``."""
    symbol, _, name = stream.partition("@")
    kind = stream_kind(name)
    table = KIND_TABLE.get(kind) if kind else None
    return (f"bronze.{table}", symbol.upper()) if table else None


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _disconnect_rows(c: Control) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for stream, (ident, ms) in sorted(c.before.items()):
        where = _table_of(stream)
        if where is None or ms is None or c.after_ms is None or c.after_ms <= ms:
            continue
        table, symbol = where
        status: GapStatus = "open" if table in REST_REFILLABLE else "capture_loss"
        by_id = table in ("bronze.agg_trades", "bronze.trades") and ident is not None
        out.append(
            {
                "table": table,
                "kind": "disconnect",
                "status": status,
                "detail": c.cause,
                "symbol": symbol,
                "start_id": ident + 1 if by_id and ident is not None else None,
                "start_time": _at(ms),
                "end_time": _at(c.after_ms),
            }
        )
    return out


def _silent_rows(c: Control) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for stream in c.streams:
        where = _table_of(stream)
        if where is None:
            continue
        table, symbol = where
        last = c.before.get(stream, [None, None])[1]
        start = last if last is not None else c.at_ms
        reason = c.reasons.get(stream, "silent")
        if start is None:  # nothing timed was seen at all: the collector's clock, said so
            at, detail = datetime.fromtimestamp(c.from_ns / 1e9, UTC), f"{reason} (local clock)"
            start_time = end_time = at
        else:
            start_time, end_time, detail = _at(start), _at(max(start, c.at_ms or start)), reason
        out.append(
            {
                "table": table,
                "kind": "silent",
                "status": "capture_loss",
                "detail": f"{stream}: {detail}",
                "symbol": symbol,
                "start_id": None,
                "start_time": start_time,
                "end_time": end_time,
            }
        )
    return out


def land_all(
    lake: Lake, landing_root: Path, markets: Iterable[Market], *, now: datetime | None = None
) -> dict[str, LandResult]:
    """Land every market's closed segments."""
    return {m: land_market(lake, landing_root / m, m, now=now) for m in markets}
