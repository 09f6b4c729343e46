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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import aiohttp

from lake.binance.endpoints import WsConnection
from lake.binance.liveness import Liveness, Silence
from lake.binance.ws_frames import (
    FrameSink,
    StreamBuffer,
    StreamStats,
    control_frame,
    frame_facts,
)

log = logging.getLogger("cryptolake.ws")


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
    opened_ns: int
    task: asyncio.Task[None] | None = None
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _PendingGap:
    """A break in coverage whose end is not known yet: it is written once the exchange reports
    a time after it (the first frame of the next connection), or at stop."""

    cause: str
    streams: list[str]
    from_ns: int
    before: dict[str, list[int | None]]  # stream -> [id, exchange ms] of its last frame


class StreamConnection:
    """One planned connection (:class:`~lake.binance.endpoints.WsConnection`), kept alive.

    Args:
        plan: route, URL and streams.
        sink: where frames go: each stream's frames into its own buffer (``sink.buffer``),
            anything else, control records included, through ``sink.append``.
        lifetime_s: rotate (make-before-break) after this long; Binance drops at 24 h.
        liveness_s: stream name suffix (e.g. ``markPrice@1s``) → longest silence tolerated.
        liveness: the silence rules shared by every connection of the market (see
            :mod:`lake.binance.liveness`); a private one is made from ``liveness_s`` if absent.
    """

    def __init__(
        self,
        plan: WsConnection,
        session: aiohttp.ClientSession,
        sink: FrameSink,
        *,
        lifetime_s: float = 23.5 * 3600,
        liveness_s: dict[str, float] | None = None,
        liveness: Liveness | None = None,
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
        self.liveness = liveness if liveness is not None else Liveness()
        self.liveness.watch(
            plan.streams,
            liveness_s or {},
            {s: _recv_reader(b) for s, b in self._buffers.items()},
            time.time_ns(),
        )
        self._pending: _PendingGap | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Capture until ``stop`` is set; every drop is followed by a reconnect."""
        attempt = 0
        leg: _Leg | None = None
        try:
            while not stop.is_set():
                if leg is None:
                    leg = await self._open(stop, attempt)
                    if leg is None:
                        attempt += 1
                        continue
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
                self._break("reconnect", list(self.plan.streams))
                self.stats.drops += 1
                await self._close(leg)
                leg = None
                attempt = 0 if reason == "dropped-after-data" else attempt + 1
        finally:
            if leg is not None:
                await self._close(leg)
            self._settle_pending(None)  # the end of the run bounds a break still open

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
        leg = _Leg(ws, time.monotonic(), time.time_ns())
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
            if leg.first_frame.is_set():
                self._settle_pending(leg)
            if leg.task.done():
                return "dropped-after-data" if leg.first_frame.is_set() else "dropped"
            if time.monotonic() - leg.opened >= self.lifetime_s:
                return "rotate"
            verdict = self.liveness.check(
                self.plan.streams, opened_ns=leg.opened_ns, now_ns=time.time_ns()
            )
            if verdict.reports:
                self._report(verdict.reports)
            if verdict.recycle:
                self.stats.recycles += 1
                log.warning(
                    "silent stream(s) on %s: %s; recycling the connection",
                    self.plan.route,
                    ", ".join(verdict.recycle),
                )
                self._break("silent", list(verdict.recycle))
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

    # --- silence and coverage gaps ----------------------------------------------------------

    def _report(self, silences: tuple[Silence, ...]) -> None:
        """Write each silence down once: a log line and a control record (a ledger row)."""
        now = time.time_ns()
        self.stats.silent_reports += len(silences)
        for s in silences:
            log.warning("stream %s on %s is silent: %s", s.stream, self.plan.route, s.reason)
        exchange_ms = self.sink.latest_exchange_ms()
        self.sink.append(
            now,
            control_frame(
                "silent",
                route=self.plan.route,
                streams=[s.stream for s in silences],
                reasons={s.stream: s.reason for s in silences},
                before=self._facts([s.stream for s in silences], exchange_ms),
                at_ms=exchange_ms,
                from_ns=now,
                to_ns=now,
            ),
        )

    def _break(self, cause: str, streams: list[str]) -> None:
        """Coverage of ``streams`` breaks now: remember what the exchange last said of each."""
        if self._pending is not None:  # a break while the last one is still open: one window
            self._pending.streams = sorted(set(self._pending.streams) | set(streams))
            return
        facts = self._facts(streams, self.sink.latest_exchange_ms())
        self._pending = _PendingGap(cause, streams, time.time_ns(), facts)

    def _settle_pending(self, leg: _Leg | None) -> None:
        """Write the open break as a ``coverage_gap`` control record, bounded by exchange times:
        from each stream's last frame to the exchange's time once frames flow again (``leg``
        delivered) or, at the end of the run, to the newest exchange time seen."""
        gap, self._pending = self._pending, None
        if gap is None:
            return
        gap.before = {s: f for s, f in gap.before.items() if s in gap.streams}
        self.sink.append(
            time.time_ns(),
            control_frame(
                "coverage_gap",
                cause=gap.cause if leg is not None else f"{gap.cause}, then stop",
                streams=gap.streams,
                from_ns=gap.from_ns,
                to_ns=time.time_ns(),
                before=gap.before,
                after_ms=self.sink.latest_exchange_ms(),
            ),
        )

    def _facts(self, streams: list[str], fallback_ms: int | None) -> dict[str, list[int | None]]:
        """``stream -> [id, exchange ms]`` of each stream's last frame (streams that never
        delivered are left out: nothing of theirs is known to be missing)."""
        out: dict[str, list[int | None]] = {}
        for stream in streams:
            recv_ns, frame = self._buffers[stream].last()
            if not recv_ns:
                continue
            ident, ms = frame_facts(frame)
            out[stream] = [ident, ms if ms is not None else fallback_ms]
        return out


def _recv_reader(buffer: StreamBuffer) -> Callable[[], int]:
    """A reader of ``buffer``'s last receive time (ns; 0 before its first frame)."""
    return lambda: buffer.last()[0]
