"""Pytest fixtures for the built-in exchange (a pytest plugin module).

``exchange`` starts the default exchange in-process on a free loopback port (its own event loop
in a background thread) and stops it after the test; ``exchange_factory`` starts any number of
them with custom config, clock, faults or replay::

    def test_x(exchange):
        exchange.clock.set(ms)                      # move the market's clock
        exchange.add_faults("rest.error:every=2")   # inject faults at runtime
        httpx.get(exchange.url("/fapi/v1/time"))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from lake.exchange.app import ThreadedExchange, create_state
from lake.exchange.clock import Clock
from lake.exchange.config import ExchangeConfig, RateLimits, parse_symbols
from lake.exchange.faults import Fault, FaultSet
from lake.exchange.limits import Limiter
from lake.exchange.market import Market
from lake.exchange.state import ExchangeState, Stats


class RunningExchange:
    """A running exchange as tests see it: URLs plus live handles on its state."""

    def __init__(self, state: ExchangeState) -> None:
        """Start serving ``state`` in a background thread."""
        self._server = ThreadedExchange(state)
        self.state = state
        self.base_url = self._server.base_url
        self.ws_url = self._server.ws_url
        self.port = self._server.port

    @property
    def config(self) -> ExchangeConfig:
        """The exchange's configuration."""
        return self.state.config

    @property
    def market(self) -> Market:
        """The simulated market (compute expected data with it)."""
        return self.state.market

    @property
    def clock(self) -> Clock:
        """The exchange clock (``set``, ``advance``, ``set_speed``)."""
        return self.state.clock

    @property
    def faults(self) -> FaultSet:
        """The faults in force."""
        return self.state.faults

    @property
    def limiter(self) -> Limiter:
        """REST budgets (``reset()`` between phases of a test)."""
        return self.state.limiter

    @property
    def stats(self) -> Stats:
        """Server-side counters."""
        return self.state.stats

    def add_faults(self, spec: str) -> list[Fault]:
        """Inject the faults of ``spec`` now (``vision.replace`` without ``at`` starts now)."""
        return self.state.faults.add(spec, now_ms=self.clock.now_ms())

    def url(self, path: str) -> str:
        """``http://127.0.0.1:PORT`` + ``path``."""
        return self.base_url + path

    def ws(self, path: str) -> str:
        """``ws://127.0.0.1:PORT`` + ``path``."""
        return self.ws_url + path

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        self._server.stop()


def start_exchange(
    *,
    seed: int = 42,
    symbols: str = "BTCUSDT,ETHUSDT",
    clock: Clock | None = None,
    faults: str = "",
    replay: Any = None,
    limits: RateLimits | None = None,
    symbol_overrides: dict[str, Any] | None = None,
    **config: Any,
) -> RunningExchange:
    """Start an exchange in a background thread.

    Args:
        seed: market seed.
        symbols: ``--symbols`` syntax.
        clock: exchange clock (default: real time).
        faults: initial fault spec.
        replay: a :class:`lake.exchange.replay.Recording`; its symbols are served from it on
            every surface (WebSocket, REST, none on Vision).
        limits: REST budgets (e.g. ``RateLimits(window_scale=0.05)``).
        symbol_overrides: SymbolSpec fields for every symbol (e.g. ``{"agg_rate": 2.0}``).
        **config: any other ExchangeConfig field (``ws_lifetime_s``, ``spot_ping_s``, …).
    """
    cfg = replace(
        ExchangeConfig(),
        seed=seed,
        symbols=parse_symbols(symbols, **(symbol_overrides or {})),
        limits=limits or RateLimits(),
        **config,
    )
    return RunningExchange(create_state(cfg, clock=clock, faults=faults, replay=replay))


@pytest.fixture
def exchange() -> Iterator[RunningExchange]:
    """The default exchange (seed 42, BTCUSDT and ETHUSDT on both markets, real clock)."""
    ex = start_exchange()
    try:
        yield ex
    finally:
        ex.stop()


@pytest.fixture
def exchange_factory() -> Iterator[Callable[..., RunningExchange]]:
    """Start exchanges with :func:`start_exchange` arguments; all stop after the test."""
    started: list[RunningExchange] = []

    def make(**kwargs: Any) -> RunningExchange:
        ex = start_exchange(**kwargs)
        started.append(ex)
        return ex

    try:
        yield make
    finally:
        for ex in started:
            ex.stop()
