"""WebSocket routes: raw and combined streams, live SUBSCRIBE, pings, lifetime.

Routes (under the one base URL): ``/spot/ws[/<stream>]``, ``/spot/stream?streams=a/b``, the USD-M
split routes ``/um/public/...`` and ``/um/market/...``, and the legacy ``/um/ws``/``/um/stream``.
Sending (and the WS faults) lives in :mod:`lake.exchange.ws_send`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from lake.exchange.state import ExchangeState, state_of
from lake.exchange.streams import Cursor, Feeds, delivers, parse_stream
from lake.exchange.ws_send import Sender, Source
from lake.exchange.wsframe import Writer

_ROUTES = (
    ("/spot/", "spot"),
    ("/um/public/", "um_public"),
    ("/um/market/", "um_market"),
    ("/um/", "um_legacy"),
)


def route_of(path: str) -> tuple[str, str, str]:
    """Split a WS path into (route, "ws" or "stream", raw stream names after /ws/)."""
    for prefix, route in _ROUTES:
        if path.startswith(prefix):
            kind, _, names = path[len(prefix) :].partition("/")
            return route, kind, names
    return "", "", ""


def _error(code: int, msg: str, mid: Any) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": mid}


class Connection:
    """One client connection: control messages, pings, lifetime; sending is its Sender's."""

    def __init__(
        self, state: ExchangeState, ws: web.WebSocketResponse, route: str, combined: bool
    ) -> None:
        """Attach to an upgraded ``ws`` on ``route``."""
        self.state, self.ws, self.route, self.combined = state, ws, route, combined
        self.out = Sender(state, route)
        self.last_pong = time.monotonic()
        self.inbound: list[float] = []
        self.transport: asyncio.Transport | None = None
        cfg = state.config
        spot = route == "spot"
        self.ping_s = cfg.spot_ping_s if spot else cfg.um_ping_s
        self.pong_timeout_s = cfg.spot_pong_timeout_s if spot else cfg.um_pong_timeout_s
        self.inbound_limit = cfg.spot_inbound_per_s if spot else cfg.um_inbound_per_s

    def subscribe(self, names: Iterable[str]) -> None:
        """Add streams; names this route does not deliver are accepted and stay silent."""
        if self.state.feeds is None:
            self.state.feeds = Feeds(self.state.market)
        for name in names:
            if name not in self.out.subs:
                self.out.add(name, self._source(name, self.state.feeds))

    def _source(self, name: str, feeds: Feeds) -> Source | None:
        """The recording's stream for a replayed symbol (silent if it was not recorded on this
        route), else the simulated stream of a configured symbol."""
        market = "spot" if self.route == "spot" else "um"
        replay = self.state.replay
        if replay is not None:
            recorded = replay.source(self.route, name, self.combined)
            if recorded is not None or self.state.replayed(market, name.partition("@")[0]):
                return recorded
        key = parse_stream(name)
        if key is None or not delivers(self.route, key, self.state.clock.now_ms()):
            return None
        spec = self.state.config.spec(market, key.symbol)
        if spec is None:
            return None
        return Cursor(feeds, spec, key, self.combined, self.state.clock)

    async def on_text(self, text: str) -> None:
        """Answer one client control message (SUBSCRIBE etc.) as Binance does."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self._reply(_error(3, "Invalid JSON: expected value at line 1 column 1", None))
            return
        if not isinstance(msg, dict):
            await self._reply(_error(2, "Invalid request: request must be an object", None))
            return
        mid, method, params = msg.get("id"), msg.get("method"), msg.get("params", [])
        if not isinstance(params, list):
            await self._reply(_error(2, "Invalid request: invalid type: expected a sequence", mid))
            return
        result: Any = None
        if method == "SUBSCRIBE":
            if len(self.out.subs) + len(params) > self.state.config.max_streams:
                await self._reply(_error(2, "Invalid request: too many streams", mid))
                return
            self.subscribe(str(p) for p in params)
        elif method == "UNSUBSCRIBE":
            for p in params:
                self.out.remove(str(p))
        elif method == "LIST_SUBSCRIPTIONS":
            result = list(self.out.subs)
        elif method == "SET_PROPERTY" and len(params) == 2 and params[0] == "combined":
            self.combined = bool(params[1])
            names = list(self.out.subs)
            self.out.subs.clear()
            self.subscribe(names)  # re-open the streams in the new wrapping
        elif method == "GET_PROPERTY" and params == ["combined"]:
            result = self.combined
        else:
            await self._reply(_error(2, f"Invalid request: unknown method {method!r}", mid))
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
                if f.every is None or elapsed < f.every or not self.out.route_ok(f):
                    continue
                with f.lock:
                    if f.exhausted:
                        continue
                    f.fired += 1
                if f.get("mode", "abort") == "close":
                    await self.ws.close(code=1001, message=b"going away")
                elif self.transport is not None:
                    self.transport.abort()  # a reset, no close frame
                return


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
    if transport is None:
        return ws
    conn = Connection(state, ws, route, combined=(kind == "stream"))
    conn.transport = transport
    streams = request.query.get("streams", "") if kind == "stream" else names
    conn.subscribe(s for s in streams.split("/") if s)
    state.stats.ws_connections += 1
    state.sockets.add(ws)
    writer = Writer(transport, state.stats)
    jobs = (conn.out.run(writer), conn.ping_loop(), conn.timers())
    tasks = [asyncio.ensure_future(job) for job in jobs]
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
