"""Assemble the exchange (one aiohttp app, one port) and run it in-process or in a thread.

URL map under ``http://127.0.0.1:PORT``: ``/spot/...`` and ``/um/...`` WebSocket routes,
``/api/v3/...``, ``/fapi/v1/...``, ``/futures/data/...`` REST, ``/data/...`` Vision files and
``/vision?delimiter=/&prefix=...`` the S3-style listing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import orjson
from aiohttp import web

from lake.exchange.clock import Clock
from lake.exchange.config import ExchangeConfig
from lake.exchange.faults import FaultSet
from lake.exchange.limits import Limiter
from lake.exchange.market import Market
from lake.exchange.rest import endpoint
from lake.exchange.rest_futures import UM_ROUTES
from lake.exchange.rest_spot import SPOT_ROUTES
from lake.exchange.state import STATE, ExchangeState
from lake.exchange.vision import vision_file
from lake.exchange.vision_list import vision_list
from lake.exchange.ws import ws_handler

T = TypeVar("T")


def create_state(
    config: ExchangeConfig | None = None,
    *,
    clock: Clock | None = None,
    faults: str = "",
    replay: Any = None,
) -> ExchangeState:
    """Build the state of one exchange (validates the fault spec: FaultSpecError if bad)."""
    config = config or ExchangeConfig()
    clock = clock or Clock()
    state = ExchangeState(
        config=config,
        market=Market(config),
        clock=clock,
        faults=FaultSet(faults, seed=config.seed),
        limiter=Limiter(config.limits),
        replay=replay,
        started_ms=clock.now_ms(),
    )
    return state


def build_app(state: ExchangeState) -> web.Application:
    """The aiohttp application with every route."""
    app = web.Application()
    app[STATE] = state
    for route in (*SPOT_ROUTES, *UM_ROUTES):
        app.router.add_get(route.path, endpoint(route))
    app.router.add_get("/spot/{tail:.*}", ws_handler)
    app.router.add_get("/um/{tail:.*}", ws_handler)
    app.router.add_get("/data/{key:.*}", vision_file)
    app.router.add_get("/vision", vision_list)
    return app


async def start(state: ExchangeState) -> tuple[web.AppRunner, int]:
    """Start serving ``state`` on its configured host/port; returns the runner and the port."""
    runner = web.AppRunner(build_app(state), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, state.config.host, state.config.port, reuse_address=True)
    await site.start()
    port = int(runner.addresses[0][1])
    return runner, port


async def stop(runner: web.AppRunner, state: ExchangeState) -> None:
    """Close every client connection (spot ones get ``serverShutdown`` first), then the server."""
    for ws in list(state.sockets):
        with contextlib.suppress(Exception):
            event = {"e": "serverShutdown", "E": state.clock.now_ms()}
            await ws.send_str(orjson.dumps(event).decode())
            await asyncio.wait_for(ws.close(code=1001, message=b"server shutdown"), 1.0)
    await runner.cleanup()


class ThreadedExchange:
    """An exchange running on its own event loop in a background thread.

    Attributes:
        state: the live state (clock, faults, market, stats) shared with the server thread.
        base_url: ``http://127.0.0.1:PORT``.
        ws_url: ``ws://127.0.0.1:PORT``.
    """

    def __init__(self, state: ExchangeState) -> None:
        """Start serving ``state`` (blocks until the port is bound)."""
        self.state = state
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="exchange", daemon=True)
        self._thread.start()
        self._runner, self.port = self.call(start(state))
        self.base_url = f"http://{state.config.host}:{self.port}"
        self.ws_url = f"ws://{state.config.host}:{self.port}"

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the server loop and wait for its result."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def stop(self) -> None:
        """Stop the server and its thread."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.call(stop(self._runner, self.state), timeout=10.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10.0)
        self.loop.close()

    def __enter__(self) -> ThreadedExchange:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
