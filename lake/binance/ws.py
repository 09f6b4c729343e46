"""WebSocket connections for capture: reconnect, rotation, liveness, and a lean read loop.

A :class:`StreamConnection` keeps one combined-stream connection alive for as long as it runs:

* it reconnects after any drop with exponential backoff and full jitter (reset once data flows);
* before the exchange's 24-hour limit it opens a new connection and closes the old one only when
  the new one delivers (make-before-break); the overlap's duplicates vanish when rows are merged
  on their natural keys;
* it watches every stream: one silent longer than its expected cadence while the connection is
  otherwise alive is reported and the connection recycled;
* every gap in its coverage (a drop, a recycle) is written into the landing stream itself as a
  control frame, so the land step records it in the gap ledger even after a crash.

The read loop only stamps and hands the raw bytes to its stream's landing buffer: no JSON, no
counter, no allocation beyond the stream name; pings are answered by aiohttp (``autoping``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

import aiohttp
import msgspec

from lake.binance.endpoints import WsConnection

log = logging.getLogger("cryptolake.ws")

CONTROL_PREFIX = b'{"cryptolake":'


class _EventTime(msgspec.Struct):
    E: int = 0


class _Wrapped(msgspec.Struct):
    data: _EventTime


_E_DECODER = msgspec.json.Decoder(_Wrapped)


def control_frame(kind: str, **fields: object) -> bytes:
    """A frame the collector writes into the landing stream about itself (not from Binance)."""
    return msgspec.json.encode({"cryptolake": kind, **fields})


class StreamBuffer:
    """One stream's frames since the sink last took them: the read loop appends, the sink takes.

    Two lists that are never replaced, so the read loop holds their ``append`` and spends two
    C calls per frame; :meth:`take` empties them in place. What a connection reports about a
    stream (messages, last receive time, latency) is read from here, so the read loop keeps no
    counters of its own.
    """

    __slots__ = ("_last", "frames", "label", "recv", "taken")

    def __init__(self, label: bytes) -> None:
        self.label = label
        self.frames: list[bytes] = []
        self.recv: list[int] = []
        self.taken = 0
        self._last: tuple[int, bytes] = (0, b"")

    def add(self, recv_ns: int, frame: bytes) -> None:
        self.frames.append(frame)
        self.recv.append(recv_ns)

    def take(self) -> tuple[list[bytes], list[int]]:
        """The frames added so far and their receive times, removed from the buffer."""
        n = min(len(self.frames), len(self.recv))
        frames, recv = self.frames[:n], self.recv[:n]
        del self.frames[:n], self.recv[:n]
        if n:
            self._last = (recv[-1], frames[-1])
            self.taken += n
        return frames, recv

    @property
    def received(self) -> int:
        """Frames added since the buffer was made."""
        return self.taken + len(self.frames)

    def last(self) -> tuple[int, bytes]:
        """``(receive time ns, frame)`` of the newest frame; ``(0, b"")`` before the first."""
        if self.frames and self.recv:
            return self.recv[-1], self.frames[-1]
        return self._last


class FrameSink(Protocol):
    """Where a connection puts frames (a :class:`lake.capture.landing.LandingSink`)."""

    def buffer(self, label: bytes) -> StreamBuffer: ...

    def append(self, recv_ns: int, frame: bytes, label: bytes = b"") -> None: ...


class StreamStats:
    """One stream's figures, read from its landing buffer when asked."""

    __slots__ = ("_buffer",)

    def __init__(self, buffer: StreamBuffer) -> None:
        self._buffer = buffer

    @property
    def messages(self) -> int:
        return self._buffer.received

    @property
    def last_recv_ns(self) -> int:
        return self._buffer.last()[0]

    @property
    def latency_ms(self) -> float | None:
        """Receive time minus event time ``E`` of the newest frame (None without one)."""
        recv_ns, frame = self._buffer.last()
        try:
            event_ms = _E_DECODER.decode(frame).data.E if frame else 0
        except msgspec.DecodeError:
            return None
        return (recv_ns - event_ms * 1_000_000) / 1e6 if event_ms else None


@dataclass
class ConnectionStats:
    connects: int = 0
    drops: int = 0
    rotations: int = 0
    recycles: int = 0
    silent_reports: int = 0
    streams: dict[str, StreamStats] = field(default_factory=dict)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter between reconnect attempts."""

    base_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_s, self.base_s * 2.0 ** min(attempt, 16)))


@dataclass
class _Leg:
    ws: aiohttp.ClientWebSocketResponse[Literal[False]]  # frames as bytes
    opened: float
    task: asyncio.Task[None] | None = None
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)


class StreamConnection:
    """One planned connection (:class:`~lake.binance.endpoints.WsConnection`), kept alive.

    Args:
        plan: route, URL and streams.
        sink: where frames go: each stream's frames into its own buffer (``sink.buffer``),
            anything else, control records included, through ``sink.append``.
        lifetime_s: rotate (make-before-break) after this long; Binance drops at 24 h.
        liveness_s: stream name suffix (e.g. ``markPrice@1s``) → longest silence tolerated.
    """

    def __init__(
        self,
        plan: WsConnection,
        session: aiohttp.ClientSession,
        sink: FrameSink,
        *,
        lifetime_s: float = 23.5 * 3600,
        liveness_s: dict[str, float] | None = None,
        backoff: Backoff | None = None,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.plan = plan
        self.session = session
        self.sink = sink
        self.lifetime_s = lifetime_s
        self.backoff = backoff or Backoff()
        self.connect_timeout_s = connect_timeout_s
        self._buffers = {s: sink.buffer(s.encode()) for s in plan.streams}
        self.stats = ConnectionStats(
            streams={s: StreamStats(buf) for s, buf in self._buffers.items()}
        )
        self._limits = {
            s: lim for s in plan.streams if (lim := _limit_for(s, liveness_s or {})) is not None
        }
        self._silent_reported: set[str] = set()

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Capture until ``stop`` is set; every drop is followed by a reconnect."""
        attempt = 0
        leg: _Leg | None = None
        gap_from: int | None = None  # the first connect of a process loses nothing it knows of
        try:
            while not stop.is_set():
                if leg is None:
                    leg = await self._open(stop, attempt)
                    if leg is None:
                        attempt += 1
                        continue
                    if gap_from is not None:
                        self._note_gap("reconnect", gap_from)
                reason = await self._supervise(leg, stop)
                if reason == "stop":
                    break
                if reason in ("rotate", "silent"):
                    new = await self._open(stop, 0)
                    if new is not None:
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(new.first_frame.wait(), self.connect_timeout_s)
                        await self._close(leg)
                        if reason == "rotate":
                            self.stats.rotations += 1
                        leg, attempt = new, 0
                        continue
                # the connection dropped (or its replacement could not open): break, then make
                gap_from = self._last_recv_ns() or time.time_ns()
                self.stats.drops += 1
                await self._close(leg)
                leg = None
                attempt = 0 if reason == "dropped-after-data" else attempt + 1
        finally:
            if leg is not None:
                await self._close(leg)

    async def _open(self, stop: asyncio.Event, attempt: int) -> _Leg | None:
        if attempt:
            delay = self.backoff.delay(attempt)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return None
        try:
            ws = await self.session.ws_connect(
                self.plan.url,
                autoping=True,
                compress=0,
                decode_text=False,
                max_msg_size=0,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("connect %s failed: %s", self.plan.url[:120], exc)
            return None
        self.stats.connects += 1
        leg = _Leg(ws, time.monotonic())
        leg.task = asyncio.create_task(self._read(leg))
        return leg

    async def _close(self, leg: _Leg) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(leg.ws.close(), 2.0)
        if leg.task is not None:
            leg.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await leg.task

    async def _supervise(self, leg: _Leg, stop: asyncio.Event) -> str:
        """Wait until the leg must be replaced; say why."""
        assert leg.task is not None
        while True:
            if stop.is_set():
                return "stop"
            if leg.task.done():
                return "dropped-after-data" if leg.first_frame.is_set() else "dropped"
            if time.monotonic() - leg.opened >= self.lifetime_s:
                return "rotate"
            if self._check_liveness(leg):
                self.stats.recycles += 1
                self._note_gap("silent", self._last_recv_ns())
                return "silent"
            done = asyncio.ensure_future(stop.wait())
            await asyncio.wait({leg.task, done}, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
            done.cancel()

    # --- the read loop ----------------------------------------------------------------------

    async def _read(self, leg: _Leg) -> None:
        ws, append = leg.ws, self.sink.append
        # stream name bytes -> the appends of its landing buffer's two lists
        entries = {b.label: (b.frames.append, b.recv.append) for b in self._buffers.values()}
        first: asyncio.Event | None = leg.first_frame
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        while True:
            kind, data, _ = await ws.receive()
            if kind is not text and kind is not binary:
                return  # closed, closing or error: the supervisor reconnects
            now = time.time_ns()
            if first is not None:
                first.set()
                first = None
            # The name after '{"stream":"'. Not checking that prefix is safe: a frame of
            # another shape whose bytes happened to match a name would land in that stream's
            # chunk, and landing parses such a chunk frame by frame, rejecting it there.
            entry = entries.get(data[11 : data.find(b'"', 11)])
            if entry is None:
                append(now, data)  # not one of our streams: replies, notices, odd frames
                continue
            entry[0](data)
            entry[1](now)

    # --- liveness and gaps ------------------------------------------------------------------

    def _check_liveness(self, leg: _Leg) -> bool:
        """True when a stream with a known cadence went silent while others still flow."""
        now = time.time_ns()
        opened_ns = now - int((time.monotonic() - leg.opened) * 1e9)
        silent = []
        for stream, limit_s in self._limits.items():
            last = max(self.stats.streams[stream].last_recv_ns, opened_ns)
            if (now - last) / 1e9 > limit_s:
                silent.append(stream)
        if not silent:
            self._silent_reported.clear()
            return False
        alive = any(
            (now - st.last_recv_ns) / 1e9 < 2.0
            for s, st in self.stats.streams.items()
            if s not in silent
        )
        new = [s for s in silent if s not in self._silent_reported]
        if new:
            self.stats.silent_reports += 1
            self._silent_reported.update(new)
            log.warning("silent stream(s) on %s: %s", self.plan.route, ", ".join(new))
            self.sink.append(now, control_frame("silent", streams=new, route=self.plan.route))
        return alive or len(silent) == len(self._limits)

    def _note_gap(self, cause: str, from_ns: int) -> None:
        now = time.time_ns()
        self.sink.append(
            now,
            control_frame(
                "coverage_gap",
                cause=cause,
                streams=list(self.plan.streams),
                from_ns=from_ns,
                to_ns=now,
            ),
        )

    def _last_recv_ns(self) -> int:
        return max((st.last_recv_ns for st in self.stats.streams.values()), default=0)


def _limit_for(stream: str, liveness_s: dict[str, float]) -> float | None:
    name = stream.split("@", 1)[1] if "@" in stream else stream
    return liveness_s.get(name)
