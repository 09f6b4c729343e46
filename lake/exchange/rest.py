"""REST framework of the exchange: parameters, errors, weights, faults, headers.

Every route is declared with its budget (``"spot"``/``"um"``), its weight (a number or a function
of the parameters) and an optional request-count quota; :func:`endpoint` charges the budget,
applies REST faults and adds ``X-MBX-USED-WEIGHT-1M`` to every answer. A route that takes a
symbol also names its ``replay`` handler, which answers instead when the recording being
replayed holds that symbol (:mod:`lake.exchange.rest_replay`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from lake.exchange import klines as kl
from lake.exchange.config import SymbolSpec
from lake.exchange.faults import parse_duration
from lake.exchange.state import ExchangeState, state_of

Handler = Callable[["Params", ExchangeState], Any]
# ``period`` of the /futures/data routes, in minutes
PERIODS = {"5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240, "6h": 360}
PERIODS |= {"12h": 720, "1d": 1440}


class ApiError(Exception):
    """A Binance error answer: HTTP status, error code and message."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        """Build the error ``{"code": code, "msg": msg}`` with HTTP ``status``."""
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def mandatory(name: str) -> ApiError:
    """-1102: a mandatory parameter is missing."""
    return ApiError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


class Params:
    """Typed access to query parameters with Binance's error codes."""

    def __init__(self, request: web.Request, state: ExchangeState, market: str) -> None:
        """Wrap ``request`` for ``market`` ("spot" or "um")."""
        self.q = request.query
        self.state = state
        self.market = market
        self.now = state.clock.now_ms()
        unit = request.headers.get("X-MBX-TIME-UNIT", "").upper()
        self.micros = market == "spot" and unit == "MICROSECOND"

    def int_opt(self, name: str) -> int | None:
        """An optional integer parameter; µs values are read as ms (spot accepts both)."""
        raw = self.q.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(
                -1100,
                f"Illegal characters found in parameter '{name}'; "
                "legal range is '^[0-9]{1,20}$'.",
            ) from None
        if name.endswith("Time") and value >= 10**15:
            value //= 1000
        return value

    def limit(self, default: int, maximum: int) -> int:
        """``limit`` with its default and maximum; out of range is -1130."""
        value = self.int_opt("limit")
        if value is None:
            return default
        if not 1 <= value <= maximum:
            raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        return value

    def spec(self, name: str = "symbol") -> SymbolSpec:
        """The listed symbol named by parameter ``name``; -1102 or -1121 otherwise."""
        raw = self.q.get(name)
        if not raw:
            raise mandatory(name)
        spec = self.state.config.spec(self.market, raw)
        if spec is None:
            raise ApiError(-1121, "Invalid symbol.")
        return spec

    def symbol_arg(self) -> str:
        """The symbol the request is about (``symbol``, or ``pair`` for index klines); may be ""."""
        return self.q.get("symbol") or self.q.get("pair") or ""

    def server_ms(self) -> int:
        """``serverTime``: the replay clock's exchange time when a recording is loaded."""
        replayed = self.state.replay.exchange_ms() if self.state.replay is not None else None
        return self.now if replayed is None else replayed

    def period_ms(self) -> int:
        """``period`` of a /futures/data route in ms: -1102 if missing, -1130 if unknown."""
        period = self.q.get("period")
        if not period:
            raise mandatory("period")
        if period not in PERIODS:
            raise ApiError(-1130, "Data sent for parameter 'period' is not valid.")
        return PERIODS[period] * 60_000

    def interval(self, spot: bool) -> str:
        """``interval``: -1120 if unknown (``1s`` is spot only, ``3d``/``1w``/``1M`` both)."""
        raw = self.q.get("interval")
        if not raw:
            raise mandatory("interval")
        if raw not in kl.INTERVALS or (raw == "1s" and not spot):
            raise ApiError(-1120, "Invalid interval.")
        return raw

    def time_range(self) -> tuple[int | None, int | None]:
        """``startTime``/``endTime``; -1023 if start is after end."""
        start, end = self.int_opt("startTime"), self.int_opt("endTime")
        if start is not None and end is not None and start > end:
            raise ApiError(-1023, "Start time is greater than end time.")
        return start, end


@dataclass(frozen=True, slots=True)
class Route:
    """One REST route: budget, weight, quota and handler."""

    path: str
    market: str
    weight: int | Callable[[Params], int]
    handler: Handler
    quota: str | None = None
    api_key: bool = False  # security type MARKET_DATA: X-MBX-APIKEY required
    replay: Handler | None = None  # answers for a symbol the loaded recording holds


def endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a route handler with faults, budgets, errors and weight headers."""
    bucket = route.market

    async def handle(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        state.stats.rest_requests += 1
        ip = request.remote or "127.0.0.1"
        retry = 0
        try:
            forced = await _rest_faults(state, request.path)
            if route.api_key and state.config.api_keys:
                _check_api_key(request.headers.get("X-MBX-APIKEY", ""), state.config.api_keys)
            params = Params(request, state, route.market)
            weight = route.weight(params) if callable(route.weight) else route.weight
            if forced is None:
                verdict = state.limiter.check(ip, bucket, weight, route.quota)
                status, retry = verdict.status, verdict.retry_after
            else:
                status, retry = forced, 30
            if status == 418:
                until = params.now + retry * 1000
                raise ApiError(
                    -1003,
                    f"Way too many requests; IP({ip}) banned until {until}. "
                    "Please use the websocket for live updates to avoid bans.",
                    418,
                )
            if status == 429:
                limits = state.config.limits
                cap = limits.um_weight if bucket == "um" else limits.spot_weight
                raise ApiError(
                    -1003,
                    f"Too many requests; current limit of IP({ip}) is {cap} requests per minute. "
                    "Please use the websocket for live updates to avoid polling the API.",
                    429,
                )
            handler = route.handler
            if route.replay is not None and state.replayed(route.market, params.symbol_arg()):
                handler = route.replay
            # Off the event loop: a long history must not stall the streams.
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(None, handler, params, state)
            resp = _json(body, 200)
        except ApiError as err:
            resp = _json({"code": err.code, "msg": err.msg}, err.status)
            if err.status in (418, 429):
                resp.headers["Retry-After"] = str(retry)
        used = str(state.limiter.used(ip, bucket))
        resp.headers["X-MBX-USED-WEIGHT-1M"] = used
        resp.headers["X-MBX-USED-WEIGHT"] = used
        return resp

    return handle


def _check_api_key(key: str, accepted: tuple[str, ...]) -> None:
    """Binance's answers to a MARKET_DATA request without a key (-2014) or with a wrong one."""
    if not key:
        raise ApiError(-2014, "API-key format invalid.", 401)
    if key not in accepted:
        raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def _json(body: Any, status: int) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", charset="UTF-8"
    )


async def _rest_faults(state: ExchangeState, path: str) -> int | None:
    """Apply REST faults: sleep for timeouts, raise 5xx errors, or return a forced 429/418."""
    for f in state.faults.of("rest."):
        if not f.matches_path(path) or not f.trigger(state.faults.rnd):
            continue
        if f.name == "rest.timeout":
            await asyncio.sleep(parse_duration(f.get("delay", "30s")))
        elif f.name == "rest.error":
            status = int(f.get("status", "503"))
            # The texts of BINANCE.md §2.3: 503 "Service Unavailable." is retryable.
            text = (
                "Service Unavailable."
                if status == 503
                else "Unknown error, please check your request or try again later."
            )
            raise ApiError(-1001 if status != 503 else -1008, text, status)
        else:
            return int(f.name.removeprefix("rest."))
    return None
