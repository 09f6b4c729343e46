"""The shared state of one running exchange, reachable from every aiohttp handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lake.exchange.clock import Clock
from lake.exchange.config import ExchangeConfig, SymbolSpec
from lake.exchange.faults import FaultSet
from lake.exchange.limits import Limiter
from lake.exchange.market import Market

if TYPE_CHECKING:
    from lake.exchange.replay import Recording
    from lake.exchange.streams import Feeds
    from lake.exchange.vision import VisionStore


@dataclass
class Stats:
    """Counters for tests and benchmarks."""

    ws_connections: int = 0
    ws_messages: int = 0
    ws_bytes: int = 0
    rest_requests: int = 0
    vision_requests: int = 0


@dataclass
class ExchangeState:
    """Everything a handler needs: config, market, clock, faults, budgets, replay.

    In replay mode a (market, symbol) is served either by the recording, on every surface, or
    by the simulated market: :meth:`replayed` is the one check that decides.
    """

    config: ExchangeConfig
    market: Market
    clock: Clock
    faults: FaultSet
    limiter: Limiter
    replay: Recording | None = None
    stats: Stats = field(default_factory=Stats)
    started_ms: int = 0
    sockets: set[Any] = field(default_factory=set)
    feeds: Feeds | None = None  # framed WebSocket hours, shared by connections
    vision: VisionStore | None = None  # built zips and size calibrations

    def replayed(self, market: str, symbol: str) -> bool:
        """Whether the recording serves (``market``, ``symbol``) instead of the simulated market."""
        return self.replay is not None and (market, symbol.upper()) in self.replay.replayed

    def simulated_specs(self, market: str) -> list[SymbolSpec]:
        """The configured symbols of ``market`` that the simulated market serves (not replayed)."""
        return [s for s in self.config.market_specs(market) if not self.replayed(market, s.symbol)]


STATE: web.AppKey[ExchangeState] = web.AppKey("exchange_state", ExchangeState)


def state_of(request: web.Request) -> ExchangeState:
    """The exchange state of the app serving ``request``."""
    return request.app[STATE]
