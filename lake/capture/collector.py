"""The collector: connections → landing segments → bronze, with gaps found and filled.

One :func:`collect` run, per market: take the landing directory's lock (one collector per
directory), close and land what a previous run left (a crash included) and fill its gaps, then
capture until stopped — connections feed a :class:`~lake.capture.landing.LandingSink`, a flusher
makes the buffer durable at least every ``flush_interval_s``, and every ``land_interval_s``
closed segments are landed and open gaps repaired from REST. On stop (signal, duration): stop
reading, flush, close the segment, land, repair, release the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from lake.binance.endpoints import Endpoints
from lake.binance.liveness import Liveness
from lake.binance.rest import RestClient
from lake.binance.ws import StreamConnection
from lake.capture.land import LandResult, land_market
from lake.capture.landing import LandingSink
from lake.capture.lock import landing_lock
from lake.capture.repair import RepairResult, repair_open_gaps
from lake.capture.segments import recover
from lake.settings import CaptureConfig, Market, Settings
from lake.storage import Lake

log = logging.getLogger("cryptolake.collect")


@dataclass(frozen=True)
class CapturePlan:
    """What to capture: markets, their symbols and streams."""

    symbols: dict[Market, tuple[str, ...]]
    streams: dict[Market, tuple[str, ...]]

    @property
    def markets(self) -> tuple[Market, ...]:
        return tuple(m for m in self.symbols if self.symbols[m] and self.streams[m])

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        markets: Sequence[Market] | None = None,
        symbols: Sequence[str] | None = None,
    ) -> CapturePlan:
        chosen = tuple(markets) if markets else ("spot", "um")
        syms: dict[Market, tuple[str, ...]] = {}
        streams: dict[Market, tuple[str, ...]] = {}
        for m in chosen:
            cfg = settings.markets.get(m)
            syms[m] = tuple(symbols) if symbols else cfg.symbols
            streams[m] = cfg.streams
        return cls(syms, streams)


@dataclass
class StreamRow:
    """One line of the live table."""

    market: str
    stream: str
    messages: int
    rate: float
    latency_ms: float | None
    silent_s: float


@dataclass
class Snapshot:
    """Visibility: what the collector is doing now."""

    elapsed_s: float
    streams: list[StreamRow]
    frames_durable: int
    dropped: int
    connects: int
    drops: int
    recycles: int
    silent_reports: int
    gaps_repaired: int
    gaps_open: int
    rows_stored: int = 0
    clock_offset_s: float | None = None  # exchange clock behind local (a replay, a skew)

    @property
    def frames_received(self) -> int:
        return sum(r.messages for r in self.streams)


@dataclass
class CollectSummary:
    """What a run did, start to end."""

    duration_s: float = 0.0
    landed: dict[str, LandResult] = field(default_factory=dict)
    repairs: list[RepairResult] = field(default_factory=list)
    last: Snapshot | None = None

    @property
    def gaps_repaired(self) -> int:
        return sum(r.repaired for r in self.repairs)

    @property
    def gaps_left_open(self) -> int:
        return self.repairs[-1].left_open if self.repairs else 0

    @property
    def rows_stored(self) -> int:
        return sum(sum(r.stored.values()) for r in self.landed.values())

    def add_land(self, market: str, result: LandResult) -> None:
        self.landed.setdefault(market, LandResult()).add(result)

    def as_dict(self) -> dict[str, Any]:
        """The run's figures: frames received apart from rows newly stored."""
        last = self.last
        return {
            "duration_s": round(self.duration_s, 3),
            "frames_received": last.frames_received if last else 0,
            "rows_stored": self.rows_stored,
            "landed": {m: r.as_dict() for m, r in self.landed.items()},
            "gaps_repaired": self.gaps_repaired,
            "gaps_unrepairable": sum(r.unrepairable for r in self.repairs),
            "gaps_left_open": self.gaps_left_open,
            "repair_errors": [e for r in self.repairs for e in r.errors],
            "connects": last.connects if last else 0,
            "drops": last.drops if last else 0,
            "recycles": last.recycles if last else 0,
            "silent_reports": last.silent_reports if last else 0,
            "dropped_frames": last.dropped if last else 0,
            "exchange_clock_offset_s": last.clock_offset_s if last else None,
            "streams": [
                {
                    "market": r.market,
                    "stream": r.stream,
                    "frames": r.messages,
                    "latency_ms": r.latency_ms,
                }
                for r in (last.streams if last else [])
            ],
        }


async def collect(
    lake: Lake,
    endpoints: Endpoints,
    plan: CapturePlan,
    capture: CaptureConfig,
    *,
    landing: Path,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    on_tick: Callable[[Snapshot], None] | None = None,
) -> CollectSummary:
    """Capture until ``stop`` is set or ``duration_s`` has passed; see the module docstring.

    ``landing`` is the landing directory (``Settings.landing_path``): one folder per market.
    """
    stop = stop or asyncio.Event()
    summary = CollectSummary()
    root = landing
    started = time.monotonic()
    with contextlib.ExitStack() as locks:
        for market in plan.markets:
            locks.enter_context(landing_lock(root / market))
        async with RestClient(endpoints) as rest:
            for market in plan.markets:  # what a previous run left, first
                recover(root / market)
            await land_and_repair(lake, rest, root, plan.markets, capture, summary)
            await _capture(
                lake, endpoints, plan, capture, root, rest, summary, stop, duration_s, on_tick
            )
    summary.duration_s = time.monotonic() - started
    return summary


async def _capture(
    lake: Lake,
    endpoints: Endpoints,
    plan: CapturePlan,
    capture: CaptureConfig,
    root: Path,
    rest: RestClient,
    summary: CollectSummary,
    stop: asyncio.Event,
    duration_s: float | None,
    on_tick: Callable[[Snapshot], None] | None,
) -> None:
    sinks = {
        m: LandingSink(
            root / m,
            prefix=m,
            rotate_s=capture.segment_rotate_s,
            max_segment_bytes=capture.segment_max_bytes,
            max_buffer_bytes=max(64 * 1024 * 1024, capture.queue_max_messages * 512),
        )
        for m in plan.markets
    }
    connections: list[tuple[Market, StreamConnection]] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        for m in plan.markets:
            liveness = Liveness()  # a symbol's streams span connections: one judge per market
            for wsplan in endpoints.plan_connections(
                m,
                plan.symbols[m],
                plan.streams[m],
                max_streams=capture.max_streams_per_connection,
            ):
                conn = StreamConnection(
                    wsplan,
                    session,
                    sinks[m],
                    lifetime_s=capture.connection_lifetime_s,
                    liveness_s=capture.liveness_s,
                    liveness=liveness,
                )
                connections.append((m, conn))
        tasks = [asyncio.create_task(c.run(stop), name=c.plan.url[:60]) for _, c in connections]
        state = _Ticker(connections, sinks, summary, on_tick)
        deadline = None if duration_s is None else time.monotonic() + duration_s
        next_land = time.monotonic() + capture.land_interval_s
        try:
            while not stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), capture.flush_interval_s)
                for sink in sinks.values():
                    sink.flush()
                state.tick(lake)
                if time.monotonic() >= next_land:
                    await land_and_repair(lake, rest, root, plan.markets, capture, summary)
                    next_land = time.monotonic() + capture.land_interval_s
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sink in sinks.values():
                await asyncio.to_thread(sink.close)
            state.tick(lake)
    await land_and_repair(lake, rest, root, plan.markets, capture, summary)
    summary.last = state.snapshot(lake)


async def land_and_repair(
    lake: Lake,
    rest: RestClient | None,
    root: Path,
    markets: Sequence[Market],
    capture: CaptureConfig,
    summary: CollectSummary,
) -> None:
    """Land every market's closed segments under ``root``, then (with a client) one bounded
    repair pass over the open gaps; figures go into ``summary``."""
    for market in markets:
        result = await asyncio.to_thread(land_market, lake, root / market, market)
        summary.add_land(market, result)
    if rest is not None:
        summary.repairs.append(
            await repair_open_gaps(
                lake,
                rest,
                max_ids=capture.max_rest_fill_ids,
                max_requests=capture.repair_max_requests,
            )
        )


class _Ticker:
    """Turns connection counters into snapshots with per-stream rates."""

    def __init__(
        self,
        connections: list[tuple[Market, StreamConnection]],
        sinks: dict[Market, LandingSink],
        summary: CollectSummary,
        on_tick: Callable[[Snapshot], None] | None,
    ) -> None:
        self.connections = connections
        self.sinks = sinks
        self.summary = summary
        self.on_tick = on_tick
        self.started = time.monotonic()
        self._prev: dict[tuple[str, str], tuple[int, float, float]] = {}

    def snapshot(self, lake: Lake | None = None) -> Snapshot:
        now, now_ns = time.monotonic(), time.time_ns()
        rows = []
        for market, conn in self.connections:
            for stream, st in conn.stats.streams.items():
                prev_n, prev_t, rate = self._prev.get((market, stream), (0, self.started, 0.0))
                if now - prev_t >= 1.0:  # a rate over at least a second, not between two ticks
                    rate = (st.messages - prev_n) / (now - prev_t)
                    self._prev[(market, stream)] = (st.messages, now, rate)
                silent = (now_ns - st.last_recv_ns) / 1e9 if st.last_recv_ns else now - self.started
                rows.append(StreamRow(market, stream, st.messages, rate, st.latency_ms, silent))
        offset = _clock_offset_s([r.latency_ms for r in rows if r.latency_ms is not None])
        if offset is not None:  # receive minus event time measures the clocks, not the network
            for r in rows:
                r.latency_ms = None
        stats = [c.stats for _, c in self.connections]
        repaired = self.summary.gaps_repaired
        open_now = self.summary.gaps_left_open
        return Snapshot(
            elapsed_s=now - self.started,
            streams=rows,
            frames_durable=sum(s.stats.durable_frames for s in self.sinks.values()),
            dropped=sum(s.dropped for s in self.sinks.values()),
            connects=sum(s.connects for s in stats),
            drops=sum(s.drops for s in stats),
            recycles=sum(s.recycles for s in stats),
            silent_reports=sum(s.silent_reports for s in stats),
            gaps_repaired=repaired,
            gaps_open=open_now,
            rows_stored=self.summary.rows_stored,
            clock_offset_s=offset,
        )

    def tick(self, lake: Lake) -> None:
        snap = self.snapshot(lake)
        self.summary.last = snap
        if self.on_tick is not None:
            self.on_tick(snap)


CLOCK_OFFSET_S = 60.0
"""Receive minus event time beyond this is no latency: the exchange runs on another clock (a
replay of a recording, an exchange clock hours off), so latency is not shown, the offset is."""


def _clock_offset_s(latencies_ms: list[float]) -> float | None:
    """The exchange clock's offset behind the local one (median, seconds) when it is beyond
    :data:`CLOCK_OFFSET_S`, else None."""
    if not latencies_ms:
        return None
    median = sorted(latencies_ms)[len(latencies_ms) // 2] / 1000
    return median if abs(median) > CLOCK_OFFSET_S else None
