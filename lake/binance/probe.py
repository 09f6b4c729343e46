"""(I/O) Is the exchange there, and does it list these symbols? Asked once, quickly, before a
command creates anything, so that a wrong URL or a mistyped symbol costs seconds, not a retry
loop and a half-made lake.

Routes (weights): ``GET /api/v3/ping`` (1), ``GET /fapi/v1/ping`` (1), ``GET /api/v3/exchangeInfo``
(20; with ``symbols=[…]`` only those, and HTTP 400 code -1121 when one is unknown),
``GET /fapi/v1/exchangeInfo`` (1; every symbol, delisted ones with a status other than TRADING).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import httpx
import msgspec

from lake.binance.endpoints import Endpoints
from lake.settings import Market

_PING: dict[Market, str] = {"spot": "/api/v3/ping", "um": "/fapi/v1/ping"}
_INFO: dict[Market, str] = {"spot": "/api/v3/exchangeInfo", "um": "/fapi/v1/exchangeInfo"}


class Unreachable(RuntimeError):
    """The exchange did not answer, or did not answer like a Binance exchange."""


class _Symbol(msgspec.Struct):
    symbol: str  # "symbol": "BTCUSDT"


class _ExchangeInfo(msgspec.Struct):
    symbols: list[_Symbol]  # "symbols": [{"symbol": "BTCUSDT", "status": "TRADING", …}, …]


def ping(
    endpoints: Endpoints,
    markets: Sequence[Market],
    *,
    timeout_s: float = 3.0,
    attempts: int = 2,
) -> None:
    """Ping the REST route of every market in ``markets``.

    Raises:
        Unreachable: one line naming the exchange, the route and the cause, after ``attempts``
            tries of at most ``timeout_s`` each.
    """
    with httpx.Client(timeout=timeout_s, headers={"User-Agent": "cryptolake"}) as client:
        for market in markets:
            _get(client, endpoints, market, _PING[market], {}, attempts)


def unlisted(
    endpoints: Endpoints,
    wanted: Mapping[Market, Sequence[str]],
    *,
    timeout_s: float = 10.0,
) -> dict[Market, list[str]]:
    """The symbols of ``wanted`` that the exchange's ``exchangeInfo`` does not list, per market
    (markets with none are left out).

    Raises:
        Unreachable: exchangeInfo could not be fetched.
    """
    out: dict[Market, list[str]] = {}
    with httpx.Client(timeout=timeout_s, headers={"User-Agent": "cryptolake"}) as client:
        for market, symbols in wanted.items():
            if not symbols:
                continue
            listed = _listed(client, endpoints, market, symbols)
            missing = [s for s in dict.fromkeys(symbols) if s not in listed]
            if missing:
                out[market] = missing
    return out


def _listed(
    client: httpx.Client, endpoints: Endpoints, market: Market, symbols: Sequence[str]
) -> set[str]:
    if market == "spot":  # the whole spot list is megabytes: ask for these symbols first
        query = {"symbols": msgspec.json.encode(list(symbols)).decode()}
        resp = _get(client, endpoints, market, _INFO[market], query, 2, ok=(200, 400))
        if resp.status_code == 200:
            return _names(resp)
    return _names(_get(client, endpoints, market, _INFO[market], {}, 2))


def _names(resp: httpx.Response) -> set[str]:
    try:
        info = msgspec.json.decode(resp.content, type=_ExchangeInfo)
    except msgspec.DecodeError as exc:
        raise Unreachable(f"GET {resp.url.path} did not answer an exchangeInfo: {exc}") from None
    return {s.symbol for s in info.symbols}


def _get(
    client: httpx.Client,
    endpoints: Endpoints,
    market: Market,
    path: str,
    params: Mapping[str, str],
    attempts: int,
    *,
    ok: tuple[int, ...] = (200,),
) -> httpx.Response:
    url = endpoints.rest_url(market, path)
    base = url.removesuffix(path)
    cause = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.5)
        try:
            resp = client.get(url, params=params)
        except httpx.TransportError as exc:
            cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            continue
        if resp.status_code in ok:
            return resp
        cause = f"HTTP {resp.status_code} {resp.text[:120].strip()!r}"
        if resp.status_code < 500:
            break  # an answer, but not one a Binance exchange gives: trying again will not help
    raise Unreachable(f"the exchange at {base} cannot be reached (GET {path}: {cause})")
