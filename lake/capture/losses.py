"""(pure) What landing writes down about what it could not land: ``ops.gaps`` and
``ops.quarantine`` rows.

* the collector's own records in the landing stream (:class:`Control`): a break in coverage
  gives ``disconnect`` rows, a stream reported silent a ``silent`` row;
* frames that do not parse are quarantined verbatim;
* a damaged segment (:mod:`lake.capture.damage`) gives ``damaged`` rows for every stream it may
  have held, and its unreadable bytes are quarantined as base64 text.

Every window is bounded by exchange facts (ids and exchange times read from frames), never the
local clock, except where no exchange time exists at all, which the row's detail says.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
import polars as pl

from lake.binance.endpoints import KIND_TABLE, stream_kind
from lake.binance.parse import RejectedFrame
from lake.capture.damage import SegmentDamage
from lake.gaps import GapStatus, ledger_rows
from lake.schemas import GAPS, QUARANTINE

REST_REFILLABLE = frozenset({"bronze.agg_trades", "bronze.trades", "bronze.klines"})
TRADE_TABLES = frozenset({"bronze.agg_trades", "bronze.trades"})


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


CONTROL = msgspec.json.Decoder(Control)


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
    return _ledger(rows, market, detected)


def damage_gap_rows(
    damage: Sequence[SegmentDamage], market: str, detected: datetime
) -> pl.DataFrame:
    """``damaged`` ledger rows: one per stretch and stream a damaged segment may have held.

    Streams REST cannot refill (bookTicker, markPrice, forceOrder) are ``capture_loss``; trade
    and kline streams are ``open`` with the window from the stream's neighbouring frames (for
    trade tables ``start_id`` is the id after the last one held), which repair fills like a
    ``disconnect``. A window that cannot be placed (nothing with an exchange time was held
    before the damage: the lake's first data, or only the collector's clock is known) is a
    ``capture_loss`` too.
    """
    rows: list[dict[str, object]] = []
    for seg in damage:
        for s in seg.stretches:
            for w in s.windows:
                where = _table_of(w.stream)
                if where is None:
                    continue
                table, symbol = where
                placed = w.held_before and not w.local
                status: GapStatus = (
                    "open" if placed and table in REST_REFILLABLE else "capture_loss"
                )
                note = " (local clock)" if w.local else ""
                if not w.held_before:
                    note += " (nothing held before it)"
                by_id = table in TRADE_TABLES and w.last_id is not None
                rows.append(
                    {
                        "table": table,
                        "kind": "damaged",
                        "status": status,
                        "detail": f"{w.stream}: {seg.segment} bytes {s.offset}..{s.end} {s.why}"
                        + note,
                        "symbol": symbol,
                        "start_id": w.last_id + 1 if by_id and w.last_id is not None else None,
                        "start_time": _at(w.start_ms),
                        "end_time": _at(w.end_ms),
                    }
                )
    return _ledger(rows, market, detected)


def _ledger(rows: list[dict[str, object]], market: str, detected: datetime) -> pl.DataFrame:
    """``ops.gaps`` rows from rows of :data:`_ROW_SCHEMA` (one gap each, duplicates dropped)."""
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


def quarantine_rows(
    rejected: Sequence[RejectedFrame], market: str, batch_id: str, detected: datetime
) -> pl.DataFrame:
    """``ops.quarantine`` rows for frames that did not parse, verbatim."""
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


QUARANTINE_PIECE_BYTES = 1 << 20
"""Unreadable bytes are quarantined in pieces of at most this many bytes (one row each)."""


def damage_quarantine_rows(
    damage: Sequence[SegmentDamage], market: str, batch_id: str, detected: datetime
) -> pl.DataFrame:
    """``ops.quarantine`` rows for the unreadable bytes of damaged segments.

    ``payload`` is the raw bytes as base64 text (``base64.b64decode`` gives them back), one row
    per piece of at most :data:`QUARANTINE_PIECE_BYTES`; ``reason`` names the segment and the
    byte offset of the piece. The id is a hash of market, segment and offset, so quarantining
    the same segment again adds nothing.
    """
    rows = []
    for seg in damage:
        for s in seg.stretches:
            for at in range(0, len(s.data), QUARANTINE_PIECE_BYTES):
                piece = s.data[at : at + QUARANTINE_PIECE_BYTES]
                offset = s.offset + at
                rows.append(
                    {
                        "record_id": hashlib.sha256(
                            f"{market}|{seg.segment}|{offset}".encode()
                        ).hexdigest()[:24],
                        "table_name": "landing",
                        "market": market,
                        "symbol": None,
                        "reason": (
                            f"damaged landing segment {seg.segment} at byte {offset}: "
                            f"{len(piece)} byte(s) unreadable ({s.why}); payload is base64"
                        ),
                        "payload": base64.b64encode(piece).decode("ascii"),
                        "source": "ws",
                        "batch_id": batch_id,
                        "detected_at": detected,
                    }
                )
    return QUARANTINE.conform(pl.DataFrame(rows, schema=QUARANTINE.polars_schema()))


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
        by_id = table in TRADE_TABLES and ident is not None
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
