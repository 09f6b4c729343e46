"""Pre-framed WebSocket text messages and a batched writer with backpressure.

An hour of one stream is encoded once into a single buffer of complete server frames (unmasked,
FIN, opcode 1) plus offsets, so sending any run of due messages is one slice and one
``transport.write``: no per-message Python work on the hot path, which is what lets one core push
well over 150,000 messages/s. aiohttp still owns the connection (handshake, pings, close); our
frames are whole, so they never interleave with its own.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]

HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1024 * 1024


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final, unmasked server frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


@dataclass(frozen=True, slots=True)
class Framed:
    """Messages of one stream-hour: event times, one buffer of frames, frame offsets."""

    e_ms: I64
    buf: bytes
    offsets: I64  # len(e_ms) + 1 entries
    header: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.e_ms)

    def span(self, i: int, j: int) -> memoryview:
        """Frames ``i:j`` as one slice."""
        return memoryview(self.buf)[int(self.offsets[i]) : int(self.offsets[j])]

    def payload(self, i: int) -> bytes:
        """The text of message ``i`` (without its frame header)."""
        return self.buf[int(self.offsets[i]) + int(self.header[i]) : int(self.offsets[i + 1])]


def build(e_ms: I64, payloads: list[bytes], stream: str | None) -> Framed:
    """Frame ``payloads``, wrapped as ``{"stream":..,"data":..}`` when ``stream`` is given."""
    if stream is not None:
        head = b'{"stream":"' + stream.encode() + b'","data":'
        payloads = [head + p + b"}" for p in payloads]
    frames = [frame(p) for p in payloads]
    lengths = np.fromiter((len(f) for f in frames), dtype=np.int64, count=len(frames))
    plen = np.fromiter((len(p) for p in payloads), dtype=np.int64, count=len(payloads))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Framed(e_ms, b"".join(frames), offsets, (lengths - plen).astype(np.int8))


class Counters(Protocol):
    """Where a writer adds what it sent (the exchange's Stats)."""

    ws_messages: int
    ws_bytes: int


class Writer:
    """Writes pre-built frames straight to the transport, pausing above the high-water mark."""

    def __init__(self, transport: asyncio.Transport, stats: Counters | None = None) -> None:
        """Wrap the connection's transport; ``stats`` (if given) counts live across connections."""
        self.transport = transport
        self.stats = stats
        self.messages = 0
        self.bytes = 0

    @property
    def closing(self) -> bool:
        """True once the transport is closing or gone."""
        return self.transport.is_closing()

    async def write(self, data: bytes | memoryview, messages: int) -> None:
        """Write ``data`` (whole frames) and wait while the peer is slow."""
        if self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        self.transport.write(data)
        self.messages += messages
        self.bytes += len(data)
        if self.stats is not None:
            self.stats.ws_messages += messages
            self.stats.ws_bytes += len(data)
        if self.transport.get_write_buffer_size() > HIGH_WATER:
            await self.drain()

    async def drain(self) -> None:
        """Wait until the write buffer is below the low-water mark."""
        while self.transport.get_write_buffer_size() > LOW_WATER:
            if self.transport.is_closing():
                raise ConnectionResetError("connection closed")
            await asyncio.sleep(0.001)
