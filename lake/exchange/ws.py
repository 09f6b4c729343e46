"""WebSocket routes: raw and combined streams, live SUBSCRIBE, pings, lifetime, WS faults.

Routes (under the one base URL): ``/spot/ws[/<stream>]``, ``/spot/stream?streams=a/b``, the USD-M
split routes ``/um/public/...`` and ``/um/market/...``, and the legacy ``/um/ws``/``/um/stream``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import orjson
from aiohttp import WSMsgType, web

from lake.exchange.faults import Fault, parse_duration
from lake.exchange.state import ExchangeState, state_of
from lake.exchange.streams import Cursor, Feeds, delivers, parse_stream
from lake.exchange.wsframe import Framed, Writer, frame

BATCH = 4096
MAX_WAIT_S = 0.05  # re-check the clock at least this often (it may be moved or sped up)


class Source(Protocol):
    """Anything a subscription reads frames from (simulated stream or replay)."""

    index: int

    def take(self, max_n: int) -> tuple[Framed, int, int]: ...

    def wake_in(self) -> float: ...


def route_of(path: str) -> tuple[str, str, str]:
    """Split a WS path into (route, "ws" or "stream", raw stream names after /ws/)."""
    for prefix, route in (
        ("/spot/", "spot"),
        ("/um/public/", "um_public"),
        ("/um/market/", "um_market"),
        ("/um/", "um_legacy"),
    ):
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            kind, _, names = rest.partition("/")
            return route, kind, names
    return "", "", ""


class Connection:
    """One client connection: its subscriptions, sender, pinger and faults."""

    def __init__(
        self, state: ExchangeState, ws: web.WebSocketResponse, route: str, combined: bool
    ) -> None:
        """Attach to an upgraded ``ws`` on ``route``."""
        self.state, self.ws, self.route, self.combined = state, ws, route, combined
        self.subs: dict[str, Source | None] = {}
        self.sub_time: dict[str, float] = {}
        self.wake = asyncio.Event()
        self.opened = time.monotonic()
        self.last_pong = self.opened
        self.inbound: list[float] = []
        self.held: bytes | None = None
        self.dropped = False
        self.transport: asyncio.Transport | None = None
        cfg = state.config
        spot = route == "spot"
        self.ping_s = cfg.spot_ping_s if spot else cfg.um_ping_s
        self.pong_timeout_s = cfg.spot_pong_timeout_s if spot else cfg.um_pong_timeout_s
        self.inbound_limit = cfg.spot_inbound_per_s if spot else cfg.um_inbound_per_s

    # --- subscriptions --------------------------------------------------------------------------

    def subscribe(self, names: Iterable[str]) -> None:
        """Add streams; names this route does not deliver are accepted and stay silent."""
        if self.state.feeds is None:
            self.state.feeds = Feeds(self.state.market)
        feeds = self.state.feeds
        for name in names:
            if name in self.subs:
                continue
            self.subs[name] = self._source(name, feeds)
            self.sub_time[name] = time.monotonic()
        self.wake.set()

    def _source(self, name: str, feeds: Feeds) -> Source | None:
        replay = self.state.replay
        if replay is not None:
            return replay.source(self.route, name, self.combined)
        key = parse_stream(name)
        if key is None or not delivers(self.route, key, self.state.clock.now_ms()):
            return None
        market = "spot" if self.route == "spot" else "um"
        spec = self.state.config.spec(market, key.symbol)
        if spec is None:
            return None
        return Cursor(feeds, spec, key, self.combined, self.state.clock)

    def unsubscribe(self, names: Iterable[str]) -> None:
        """Remove streams."""
        for name in names:
            self.subs.pop(name, None)
            self.sub_time.pop(name, None)

    # --- control messages ---------------------------------------------------------------------

    async def on_text(self, text: str) -> None:
        """Answer one client control message (SUBSCRIBE etc.)."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self._reply(
                {
                    "error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"},
                    "id": None,
                }
            )
            return
        if not isinstance(msg, dict):
            await self._reply(
                {
                    "error": {"code": 2, "msg": "Invalid request: request must be an object"},
                    "id": None,
                }
            )
            return
        mid, method, params = msg.get("id"), msg.get("method"), msg.get("params", [])
        if not isinstance(params, list):
            await self._reply(
                {
                    "error": {
                        "code": 2,
                        "msg": "Invalid request: invalid type: expected a sequence",
                    },
                    "id": mid,
                }
            )
            return
        result: Any = None
        if method == "SUBSCRIBE":
            if len(self.subs) + len(params) > self.state.config.max_streams:
                await self._reply(
                    {"error": {"code": 2, "msg": "Invalid request: too many streams"}, "id": mid}
                )
                return
            self.subscribe(str(p) for p in params)
        elif method == "UNSUBSCRIBE":
            self.unsubscribe(str(p) for p in params)
        elif method == "LIST_SUBSCRIPTIONS":
            result = list(self.subs)
        elif method == "SET_PROPERTY" and len(params) == 2 and params[0] == "combined":
            self.combined = bool(params[1])
            names = list(self.subs)
            self.subs.clear()
            self.subscribe(names)  # re-open cursors in the new wrapping
        elif method == "GET_PROPERTY" and params == ["combined"]:
            result = self.combined
        else:
            await self._reply(
                {
                    "error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"},
                    "id": mid,
                }
            )
            return
        await self._reply({"result": result, "id": mid})

    async def _reply(self, body: dict[str, Any]) -> None:
        await self.ws.send_str(orjson.dumps(body).decode())

    def count_inbound(self) -> bool:
        """Record an inbound message; False when the per-second limit is broken."""
        now = time.monotonic()
        self.inbound = [t for t in self.inbound if now - t < 1.0]
        self.inbound.append(now)
        return len(self.inbound) <= self.inbound_limit

    # --- sending ------------------------------------------------------------------------------

    async def send_loop(self, writer: Writer) -> None:
        """Send every due message, in event-time order, until the connection ends."""
        while not writer.closing:
            runs = []
            taken = []
            for name, src in list(self.subs.items()):
                if src is not None:
                    f, i, j = src.take(BATCH)
                    if j > i:
                        runs.append((name, f, i, j))
                        taken.append(src)
            if len(runs) > 1:
                runs = _in_order(runs, taken)
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

    async def _send_merged(
        self, writer: Writer, runs: list[tuple[str, Framed, int, int]], faults: list[Fault]
    ) -> None:
        order = sorted(
            (
                (int(f.e_ms[k]), n, name, f, k)
                for n, (name, f, i, j) in enumerate(runs)
                for k in range(i, j)
            ),
            key=lambda x: (x[0], x[1]),
        )
        if not faults:
            await writer.write(
                b"".join(bytes(f.span(k, k + 1)) for _, _, _, f, k in order), len(order)
            )
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
            if not f.matches_stream(name):
                continue
            if f.name == "ws.silence":
                after = parse_duration(f.get("after", "0"))
                if time.monotonic() - self.sub_time.get(name, self.opened) >= after:
                    return []
            elif f.name == "ws.drop" and self._route_ok(f) and f.trigger(rnd):
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

    async def ping_loop(self) -> None:
        """Ping every ``ping_s``; close when no pong came for ``pong_timeout_s``."""
        while not self.ws.closed:
            await asyncio.sleep(min(self.ping_s, self.pong_timeout_s))
            if time.monotonic() - self.last_pong > self.pong_timeout_s:
                await self.ws.close(code=1008, message=b"pong timeout")
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.ping(os.urandom(4).hex().encode())

    async def timers(self) -> None:
        """Forced disconnect after the lifetime, and ``ws.drop:every=`` faults."""
        start = time.monotonic()
        while not self.ws.closed:
            await asyncio.sleep(0.05)
            elapsed = time.monotonic() - start
            if elapsed >= self.state.config.ws_lifetime_s:
                await self.ws.close(code=1000, message=b"connection lifetime reached")
                return
            for f in self.state.faults.of("ws.drop"):
                if f.every is not None and elapsed >= f.every and self._route_ok(f):
                    with f._lock:
                        if f.exhausted:
                            continue
                        f.fired += 1
                    await self._drop(f.get("mode", "abort"))
                    return

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        if self.transport is not None:
            self.transport.abort()

    def _route_ok(self, f: Fault) -> bool:
        return self.route.startswith(f.get("route", ""))

    async def _drop(self, mode: str) -> None:
        if mode == "close":
            await self.ws.close(code=1001, message=b"going away")
        else:
            self.abort()


def _in_order(
    runs: list[tuple[str, Framed, int, int]], sources: list[Source]
) -> list[tuple[str, Framed, int, int]]:
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


async def ws_handler(request: web.Request) -> web.StreamResponse:
    """Serve one WebSocket connection on any of the stream routes."""
    state = state_of(request)
    route, kind, names = route_of(request.path)
    if kind not in ("ws", "stream") or (kind == "stream" and names):
        raise web.HTTPNotFound()
    # No permessage-deflate (Binance does not negotiate it); pings are ours, not aiohttp's.
    ws = web.WebSocketResponse(compress=False, autoping=False, max_msg_size=1 << 20)
    await ws.prepare(request)
    transport = request.transport
    assert transport is not None
    conn = Connection(state, ws, route, combined=(kind == "stream"))
    conn.transport = transport
    streams = request.query.get("streams", "") if kind == "stream" else names
    conn.subscribe(s for s in streams.split("/") if s)
    state.stats.ws_connections += 1
    state.sockets.add(ws)
    writer = Writer(transport, state.stats)
    tasks = [
        asyncio.ensure_future(c) for c in (conn.send_loop(writer), conn.ping_loop(), conn.timers())
    ]
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                if not conn.count_inbound():
                    await ws.close(code=1008, message=b"too many requests")
                    break
                await conn.on_text(msg.data)
            elif msg.type == WSMsgType.PING:
                conn.count_inbound()
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                conn.last_pong = time.monotonic()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        state.sockets.discard(ws)
        if not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
    return ws
