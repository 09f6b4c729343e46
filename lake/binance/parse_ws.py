"""WebSocket frames → bronze frames: the hot path of live capture (BINANCE.md §1.2).

Frames are routed by their stream name or ``e`` read from the bytes, decoded per kind by one
typed msgspec call (and frame by frame only when that fails, so that only the bad ones are
rejected), then turned into columns once per table (:mod:`.parse_ws_tables`).

Measured and rejected: decoding a whole USD-M batch in one call as a union tagged by ``e``. It
skips the routing loop, but leaves the structs of every kind interleaved in memory, and building
columns from them then cost twice as much; the batch was ~30% slower overall.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
import polars as pl

from lake.binance import parse_ws_tables as tables
from lake.binance import ws_route as wr
from lake.binance.ws_route import RejectedFrame
from lake.settings import Market

__all__ = ["ParsedFrames", "RejectedFrame", "parse_ws_frames"]


@dataclass(frozen=True)
class ParsedFrames:
    """One frame per bronze table (empty ones conform too), the rejects and how many were
    ignored on purpose (subscription replies, depth, unclosed klines, server notices)."""

    TABLES: ClassVar[tuple[str, ...]] = (
        "agg_trades",
        "trades",
        "book_ticker",
        "mark_price",
        "klines",
        "liquidations",
    )

    agg_trades: pl.DataFrame
    trades: pl.DataFrame
    book_ticker: pl.DataFrame
    mark_price: pl.DataFrame
    klines: pl.DataFrame
    liquidations: pl.DataFrame
    rejected: tuple[RejectedFrame, ...] = ()
    ignored: int = 0

    def tables(self) -> dict[str, pl.DataFrame]:
        """Bronze table name → its rows, for every table that got at least one row."""
        frames = {name: getattr(self, name) for name in self.TABLES}
        return {name: f for name, f in frames.items() if f.height}


def parse_ws_frames(
    market: Market,
    frames: Sequence[bytes | str],
    recv_ns: Sequence[int],
    *,
    batch_id: str,
) -> ParsedFrames:
    """Parse a batch of raw WebSocket frames into bronze rows.

    Routes: spot ``wss://stream.binance.com:9443/{ws,stream}``; USD-M
    ``wss://fstream.binance.com/public`` (bookTicker) and ``/market`` (the rest). A frame::

        {"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1626992741017,"s":"BTCUSDT",
         "a":5933014,"p":"0.001","q":"100","f":100,"l":105,"T":1626992741012,"m":true}}

    Raw payloads (``/ws/<stream>``) are accepted too. Subscription replies
    (``{"result":null,"id":1}``), depth, unclosed klines (``x=false``) and server notices are
    ignored; frames that are malformed, of an unknown stream or event, or of the wrong shape are
    returned in ``rejected`` with a reason. Unknown keys (``ps``, ``st``, …) are ignored.

    Args:
        market: ``spot`` or ``um``: selects the payload shapes.
        frames: raw frame bytes (text frames as ``str`` are accepted).
        recv_ns: local receive time of each frame, Unix ns.
        batch_id: written to every row.

    Raises:
        ValueError: ``frames`` and ``recv_ns`` differ in length.
    """
    if len(frames) != len(recv_ns):
        raise ValueError(f"{len(frames)} frames but {len(recv_ns)} receive times")
    if len(frames) <= CHUNK:
        return _parse_chunk(market, frames, recv_ns, batch_id)
    return combine(
        [
            _parse_chunk(market, frames[a : a + CHUNK], recv_ns[a : a + CHUNK], batch_id, offset=a)
            for a in range(0, len(frames), CHUNK)
        ]
    )


def combine(parts: Sequence[ParsedFrames]) -> ParsedFrames:
    """One result from several (their rows concatenated, rejects and ignores added up)."""
    merged = {
        name: pl.concat([getattr(p, name) for p in parts], rechunk=False)
        for name in ParsedFrames.TABLES
    }
    rejected = tuple(r for p in parts for r in p.rejected)
    return ParsedFrames(**merged, rejected=rejected, ignored=sum(p.ignored for p in parts))


def parse_ws_lines(
    market: Market,
    stream: bytes,
    lines: bytes,
    recv_ns: Sequence[int],
    *,
    count: int,
    batch_id: str,
) -> ParsedFrames | None:
    """One stream's combined-stream frames, each followed by ``\\n``, decoded in one call.

    The fast path of landing: no per-frame routing or splitting. Returns ``None`` when it does
    not apply — an unknown stream, a frame that does not decode, or a line count that differs
    from ``count`` — and the caller parses the frames one by one with :func:`parse_ws_frames`,
    which rejects exactly the bad ones.
    """
    kind = wr.kind_of_stream(market, stream)
    decoders = wr.DECODERS[market]
    if kind not in decoders or len(recv_ns) != count:
        return None
    try:
        items = decoders[kind].wrapped_one.decode_lines(lines)
    except msgspec.DecodeError:
        return None
    if len(items) != count:
        return None
    out: dict[str, pl.DataFrame] = {}
    ignored = 0
    for each in decoders:
        data = [e.data for e in items] if each == kind else []
        table, frame, skipped = tables.build(each, market, data, recv_ns if data else [], batch_id)
        out[table] = frame
        ignored += skipped
    return ParsedFrames(**out, rejected=(), ignored=ignored)


CHUNK = 16_384
"""Frames parsed at a time. Past a few tens of thousands of frames the decoded structs no
longer fit in cache and throughput drops by a fifth (measured 5k–20k best, 200k slowest)."""


def _parse_chunk(
    market: Market,
    frames: Sequence[bytes | str],
    recv_ns: Sequence[int],
    batch_id: str,
    offset: int = 0,
) -> ParsedFrames:
    batch = wr.route(market, frames, recv_ns)
    ignored = batch.ignored
    out: dict[str, pl.DataFrame] = {}
    # Decode and build one kind at a time: only that kind's structs are alive at once.
    for kind in wr.DECODERS[market]:
        items, idx = _decode_kind(market, kind, batch, frames, recv_ns)
        recv = [recv_ns[j] for j in idx]
        table, frame, skipped = tables.build(kind, market, items, recv, batch_id)
        out[table] = frame
        ignored += skipped
    ordered = sorted(batch.rejected, key=lambda r: r.index)
    if offset:
        ordered = [dataclasses.replace(r, index=r.index + offset) for r in ordered]
    return ParsedFrames(**out, rejected=tuple(ordered), ignored=ignored)


def _decode_kind(
    market: Market,
    kind: str,
    batch: wr.Routed,
    frames: Sequence[bytes | str],
    recv_ns: Sequence[int],
) -> tuple[list[Any], list[int]]:
    decs = wr.DECODERS[market][kind]
    idx_w = batch.wrapped[kind]
    payloads_w = [frames[j] for j in idx_w]
    items_w, idx_w = wr.decode(
        decs.wrapped_batch,
        decs.wrapped_one,
        payloads_w,
        idx_w,
        kind,
        frames,
        recv_ns,
        batch.rejected,
    )
    payloads_p, idx_p = batch.plain[kind]
    items_p, idx_p = wr.decode(
        decs.plain_batch, decs.plain_one, payloads_p, idx_p, kind, frames, recv_ns, batch.rejected
    )
    if not items_p:  # the usual case: every frame came wrapped
        return [e.data for e in items_w], idx_w
    return [e.data for e in items_w] + items_p, idx_w + idx_p
