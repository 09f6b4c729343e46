"""Routing and decoding of WebSocket frames by kind: the general path of :mod:`.parse_ws`.

A frame is routed by a byte check on its first bytes (the combined wrapper's ``stream`` name, or
a raw payload's ``e``), never by building a dict. Frames of one kind are then decoded together
by one typed msgspec decoder over ``[frame,frame,…]``; only when that fails is each decoded
alone, so that the bad ones are rejected with a reason and the rest kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from lake.binance import wire
from lake.binance.endpoints import MARKET_KINDS, split_stream, stream_kind
from lake.settings import Market

IGNORE: Final = "ignore"
_WRAP: Final = b'{"stream":"'
_EVENT: Final = b'{"e":"'
_SPOT_BOOK: Final = b'{"u":'

EVENT_KINDS: dict[str, str] = {
    "aggTrade": "agg_trade",
    "trade": "trade",
    "bookTicker": "book_ticker",
    "markPriceUpdate": "mark_price",
    "kline": "kline",
    "forceOrder": "force_order",
    "depthUpdate": IGNORE,  # known, not a bronze table
    "serverShutdown": IGNORE,  # a notice for the connection, not market data
}


@dataclass(frozen=True)
class RejectedFrame:
    """A frame that could not be parsed, kept verbatim for ``ops.quarantine``."""

    index: int  # position in the batch
    recv_ns: int  # local receive time
    payload: bytes  # the frame as received
    reason: str  # one line: what was wrong


def payload_types(market: Market) -> dict[str, type[Any]]:
    """Payload struct per stream kind with a bronze table."""
    spot = market == "spot"
    return {
        "agg_trade": wire.SpotAggTrade if spot else wire.UmAggTrade,
        "trade": wire.SpotTrade if spot else wire.UmTrade,
        "book_ticker": wire.SpotBookTicker if spot else wire.UmBookTicker,
        "mark_price": wire.MarkPriceUpdate,
        "kline": wire.KlineEvent,
        "force_order": wire.ForceOrderEvent,
    }


@dataclass(frozen=True)
class _Decoders:
    wrapped_batch: msgspec.json.Decoder[Any]
    wrapped_one: msgspec.json.Decoder[Any]
    plain_batch: msgspec.json.Decoder[Any]
    plain_one: msgspec.json.Decoder[Any]


# Built once at import: per (market, kind), wrapped and raw payloads, alone and in a batch.
DECODERS: dict[Market, dict[str, _Decoders]] = {
    market: {
        kind: _Decoders(
            msgspec.json.Decoder(list[wire.Envelope[tp]]),  # type: ignore[valid-type]
            msgspec.json.Decoder(wire.Envelope[tp]),  # type: ignore[valid-type]
            msgspec.json.Decoder(list[tp]),  # type: ignore[valid-type]
            msgspec.json.Decoder(tp),
        )
        for kind, tp in payload_types(market).items()
    }
    for market in ("spot", "um")
}
_STREAM_KINDS: dict[Market, dict[bytes, str | None]] = {"spot": {}, "um": {}}


def kind_of_stream(market: Market, stream: bytes) -> str | None:
    """The kind of a stream name; ``ignore`` for depth, ``None`` for unknown or off-market."""
    cache = _STREAM_KINDS[market]
    if stream in cache:
        return cache[stream]
    kind: str | None = stream_kind(split_stream(stream.decode(errors="replace"))[1])
    if kind == "depth":
        kind = IGNORE
    elif kind is not None and kind not in MARKET_KINDS[market]:
        kind = None
    if len(cache) < 100_000:  # stream names are few; odd input must not grow it without bound
        cache[stream] = kind
    return kind


@dataclass
class Routed:
    """Frame indices per kind. ``wrapped`` frames are decoded whole as an :class:`Envelope`;
    ``plain`` ones as their payload bytes."""

    wrapped: dict[str, list[int]]
    plain: dict[str, tuple[list[bytes], list[int]]]
    rejected: list[RejectedFrame] = field(default_factory=list)
    ignored: int = 0


def route(market: Market, frames: Sequence[bytes | str], recv_ns: Sequence[int]) -> Routed:
    """Sort a batch into kinds by looking at bytes only."""
    kinds = DECODERS[market]
    batch = Routed({k: [] for k in kinds}, {k: ([], []) for k in kinds})
    wrap = _WRAP
    # stream name bytes → the append of its kind's bucket; filled as names are first seen.
    known: dict[bytes, Any] = {}
    get = known.get
    for i, frame in enumerate(frames):
        if frame[:11] == wrap:  # the shape Binance sends, byte for byte
            key = frame[11 : frame.find(b'"', 11)]  # type: ignore[arg-type]
            target = get(key)  # type: ignore[arg-type]
            if target is not None:
                target(i)
                continue
            kind = kind_of_stream(market, key)  # type: ignore[arg-type]
            if kind in kinds:
                known[key] = target = batch.wrapped[kind].append  # type: ignore[index]
                target(i)
            elif kind == IGNORE:
                batch.ignored += 1
            else:
                reason = f"unknown stream {key.decode(errors='replace')!r}"  # type: ignore[union-attr]
                batch.rejected.append(RejectedFrame(i, recv_ns[i], as_bytes(frame), reason))
            continue
        outcome = _route_plain(market, frame)
        if isinstance(outcome, tuple):
            payloads, idxs = batch.plain[outcome[0]]
            payloads.append(outcome[1])
            idxs.append(i)
        elif outcome == IGNORE:
            batch.ignored += 1
        else:
            batch.rejected.append(RejectedFrame(i, recv_ns[i], as_bytes(frame), outcome))
    return batch


def as_bytes(frame: bytes | str) -> bytes:
    return frame.encode() if isinstance(frame, str) else bytes(frame)


def _route_plain(market: Market, frame: bytes | str) -> tuple[str, bytes] | str:
    """Route a frame the byte check did not: ``(kind, payload)``, ``"ignore"`` or a reason."""
    raw = as_bytes(frame)
    if raw[:6] == _EVENT:  # a raw payload: take its event type without decoding it
        kind = EVENT_KINDS.get(raw[6 : raw.find(b'"', 6)].decode(errors="replace"))
        if kind is not None:
            return _accept(market, kind, raw)
    elif raw[:5] == _SPOT_BOOK:
        return _accept(market, "book_ticker", raw)
    try:
        c = wire.CONTROL.decode(raw)
    except msgspec.ValidationError:
        return "not a JSON object"
    except msgspec.DecodeError as exc:
        return f"malformed JSON: {exc}"
    if c.stream is not None:
        if not c.data:
            return "combined frame without data"
        kind = kind_of_stream(market, c.stream.encode())
        if kind is None:
            return f"unknown stream {c.stream!r}"
        return _accept(market, kind, bytes(c.data))
    if c.e is not None:
        kind = EVENT_KINDS.get(c.e)
        return f"unknown event {c.e!r}" if kind is None else _accept(market, kind, raw)
    if c.error is not None:
        return f"subscription error: {msgspec.json.encode(c.error).decode()}"
    if c.id is not None:
        return IGNORE  # {"result":null,"id":1} and other replies to our own requests
    if c.u is not None:
        return _accept(market, "book_ticker", raw)
    if c.lastUpdateId is not None:
        return IGNORE  # partial depth: known, not stored
    return "unknown frame shape: no stream, e or id"


def _accept(market: Market, kind: str, payload: bytes) -> tuple[str, bytes] | str:
    if kind == IGNORE:
        return IGNORE
    if kind not in MARKET_KINDS[market]:
        return f"{kind} is not a {market} stream"
    return kind, payload


def decode(
    batch: msgspec.json.Decoder[Any],
    one: msgspec.json.Decoder[Any],
    payloads: list[Any],
    idxs: list[int],
    kind: str,
    frames: Sequence[bytes | str],
    recv_ns: Sequence[int],
    rejected: list[RejectedFrame],
) -> tuple[list[Any], list[int]]:
    """Decode payloads in one call; on failure decode each alone and reject the bad ones."""
    if not payloads:
        return [], []
    try:
        items: list[Any] = batch.decode(b"[" + b",".join(payloads) + b"]")
        # A truncated frame could merge with its neighbour into valid JSON: counts must match.
        if len(items) == len(payloads):
            return items, idxs
    except msgspec.DecodeError:
        pass
    good: list[Any] = []
    kept: list[int] = []
    for payload, j in zip(payloads, idxs, strict=True):
        try:
            good.append(one.decode(payload))
            kept.append(j)
        except msgspec.DecodeError as exc:
            reason = f"{kind}: {exc}"
            rejected.append(RejectedFrame(j, recv_ns[j], as_bytes(frames[j]), reason))
    return good, kept
