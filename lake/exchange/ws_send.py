"""The sending half of a WebSocket connection: due messages in event order, and WS faults.

One run of due messages from one stream goes out as a single pre-framed slice (the fast path).
Several streams are merged by event time (file order for replays); faults switch to a
per-message path that can cut, double, hold back or drop messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

import numpy as np

from lake.exchange.faults import Fault, parse_duration
from lake.exchange.state import ExchangeState
from lake.exchange.wsframe import Framed, Writer, frame

BATCH = 4096
MAX_WAIT_S = 0.05  # re-check the clock at least this often (it may be moved or sped up)
Run = tuple[str, Framed, int, int]


class Source(Protocol):
    """Anything a subscription reads frames from (simulated stream or replay)."""

    index: int

    def now(self) -> float:
        """The source's clock (exchange ms, or replayed seconds)."""
        ...

    def take(self, max_n: int, now: float) -> tuple[Framed, int, int]:
        """The run ``framed[i:j]`` due at ``now`` (at most ``max_n``), advancing past it."""
        ...

    def wake_in(self) -> float:
        """Wall seconds until the next message is due."""
        ...


class Sender:
    """Subscriptions of one connection and the loop that sends what falls due."""

    def __init__(self, state: ExchangeState, route: str) -> None:
        """Start with no subscriptions."""
        self.state, self.route = state, route
        self.subs: dict[str, Source | None] = {}
        self.sub_time: dict[str, float] = {}
        self.wake = asyncio.Event()
        self.opened = time.monotonic()
        self.held: bytes | None = None
        self.dropped = False

    def add(self, name: str, source: Source | None) -> None:
        """Subscribe ``name`` (``None``: accepted but silent)."""
        self.subs[name] = source
        self.sub_time[name] = time.monotonic()
        self.wake.set()

    def remove(self, name: str) -> None:
        """Unsubscribe ``name``."""
        self.subs.pop(name, None)
        self.sub_time.pop(name, None)

    def route_ok(self, f: Fault) -> bool:
        """Whether a ``ws.drop`` fault's ``route=`` filter covers this connection."""
        return self.route.startswith(f.get("route", ""))

    async def run(self, writer: Writer) -> None:
        """Send every due message, in event-time order, until the connection ends."""
        while not writer.closing:
            runs: list[Run] = []
            taken: list[Source] = []
            sources: list[tuple[str, Source]] = [
                (n, s) for n, s in self.subs.items() if s is not None
            ]
            # One "now" per clock for every stream of the connection, or a stream read a moment
            # later could send an event that an earlier-read stream sends after it. A replayed
            # stream and a simulated one run on different clocks (replay seconds, exchange ms).
            nows: dict[type, float] = {}
            for name, src in sources:
                clock = type(src)
                if clock not in nows:
                    nows[clock] = src.now()
                f, i, j = src.take(BATCH, nows[clock])
                if j > i:
                    runs.append((name, f, i, j))
                    taken.append(src)
            if len(runs) > 1:
                runs = in_order(runs, taken)
            if not runs:
                waits = [s.wake_in() for s in self.subs.values() if s is not None]
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), min([MAX_WAIT_S, *waits]))
                continue
            faults = [
                f for f in self.state.faults.of("ws.") if f.name != "ws.drop" or f.p is not None
            ]
            if len(runs) == 1 and not faults:
                _, f, i, j = runs[0]
                await writer.write(f.span(i, j), j - i)
            else:
                await self._send_merged(writer, runs, faults)
            await asyncio.sleep(0)

    async def _send_merged(self, writer: Writer, runs: list[Run], faults: list[Fault]) -> None:
        order = sorted(
            (
                (int(f.e_ms[k]), n, name, f, k)
                for n, (name, f, i, j) in enumerate(runs)
                for k in range(i, j)
            ),
            key=lambda x: (x[0], x[1]),
        )
        if not faults:
            body = b"".join(bytes(f.span(k, k + 1)) for _, _, _, f, k in order)
            await writer.write(body, len(order))
            return
        out: list[bytes] = []
        for _, _, name, f, k in order:
            out.extend(self._apply_faults(name, f.payload(k), faults))
            if self.dropped:
                break
        if out:
            await writer.write(b"".join(frame(p) for p in out), len(out))
        if self.dropped:
            writer.transport.abort()

    def _apply_faults(self, name: str, payload: bytes, faults: list[Fault]) -> list[bytes]:
        """Messages to send instead of ``payload`` under the active WS faults."""
        rnd = self.state.faults.rnd
        out = [payload]
        for f in faults:
            if f.name == "ws.halt":
                if f.halts(name, self.route):
                    return []
                continue
            if not f.matches_stream(name):
                continue
            if f.name == "ws.silence":
                after = parse_duration(f.get("after", "0"))
                if time.monotonic() - self.sub_time.get(name, self.opened) >= after:
                    return []
            elif f.name == "ws.drop" and self.route_ok(f) and f.trigger(rnd):
                self.dropped = True
                return out
            elif f.name == "ws.malformed" and f.trigger(rnd):
                out = [p[: max(1, len(p) // 2)] for p in out]
            elif f.name == "ws.duplicate" and f.trigger(rnd):
                out = out + out
            elif f.name == "ws.reorder" and f.trigger(rnd) and self.held is None:
                self.held, out = out[0], out[1:]
                return out
        if self.held is not None and out:
            out, self.held = [*out, self.held], None
        return out


def in_order(runs: list[Run], sources: list[Source]) -> list[Run]:
    """Trim runs cut short by the batch size so that no later batch sends an earlier event."""
    full = [int(f.e_ms[j - 1]) for _, f, i, j in runs if j - i >= BATCH]
    if not full:
        return runs
    bound = min(full)
    out = []
    for (name, f, i, j), src in zip(runs, sources, strict=True):
        cut = i + int(np.searchsorted(f.e_ms[i:j], bound, side="right"))
        src.index = cut  # the rest goes out in a later batch, merged in order
        if cut > i:
            out.append((name, f, i, cut))
    return out
