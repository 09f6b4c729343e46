"""Where Binance lives: hosts, WebSocket routes and stream names (BINANCE.md §1.1, §3.1, §3.4).

Data, not logic. ``live`` and a built-in exchange at ``http://127.0.0.1:PORT`` differ only in
hosts: the built-in exchange serves the very same paths under fixed prefixes, so every URL the
client builds is ``<host part> + <Binance path>``.

=============  ==============================================  =====================================
what           live                                            base URL ``http://HOST``
=============  ==============================================  =====================================
spot WS        ``wss://stream.binance.com:9443/ws/<s>``        ``ws://HOST/spot/ws/<s>``
USD-M WS       ``wss://fstream.binance.com/public/ws/<s>``     ``ws://HOST/um/public/ws/<s>``
               ``wss://fstream.binance.com/market/ws/<s>``     ``ws://HOST/um/market/ws/<s>``
REST           ``https://api.binance.com/api/v3/…``            ``http://HOST/api/v3/…``
               ``https://fapi.binance.com/fapi/v1/…``          ``http://HOST/fapi/v1/…``
Vision         ``https://data.binance.vision/data/…``          ``http://HOST/data/…``
listing        ``https://s3-ap-northeast-1.amazonaws.com/``    ``http://HOST/vision?delimiter=/&…``
               ``data.binance.vision?delimiter=/&prefix=…``
=============  ==============================================  =====================================

Combined streams use ``/stream?streams=a/b/c`` on every route.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

from lake.settings import Market

WsRoute = Literal["spot", "um_public", "um_market"]
StreamKind = Literal[
    "agg_trade", "trade", "book_ticker", "mark_price", "kline", "force_order", "depth"
]

# USD-M high-frequency streams moved to /public on 2026-03-06; everything else is on /market.
_UM_PUBLIC_KINDS: frozenset[StreamKind] = frozenset({"book_ticker", "depth"})
_KLINE_RE = re.compile(r"^kline_(1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)(@\+08:00)?$")
_DEPTH_RE = re.compile(r"^depth(5|10|20)?(@(0|100|250|500|1000)ms)?$")
_BASE_URL_RE = re.compile(r"^(https?)://([A-Za-z0-9.\-\[\]:]+)/?$")

_FIXED_KINDS: dict[str, StreamKind] = {
    "aggTrade": "agg_trade",
    "trade": "trade",
    "bookTicker": "book_ticker",
    "markPrice": "mark_price",
    "markPrice@1s": "mark_price",
    "forceOrder": "force_order",
}
# Which stream kinds each market offers; mark price and liquidations exist only on USD-M.
MARKET_KINDS: dict[Market, frozenset[StreamKind]] = {
    "spot": frozenset({"agg_trade", "trade", "book_ticker", "kline", "depth"}),
    "um": frozenset(
        {"agg_trade", "trade", "book_ticker", "mark_price", "kline", "force_order", "depth"}
    ),
}
KIND_TABLE: dict[StreamKind, str | None] = {
    "agg_trade": "agg_trades",
    "trade": "trades",
    "book_ticker": "book_ticker",
    "mark_price": "mark_price",
    "kline": "klines",
    "force_order": "liquidations",
    "depth": None,  # known, but not a bronze table
}


def stream_kind(name: str) -> StreamKind | None:
    """The kind of a stream given its name without the symbol, e.g. ``kline_1m`` → ``kline``.

    ``None`` for names this client does not know. The all-market ``!bookTicker`` and
    ``!forceOrder@arr`` carry one event per push and map like their per-symbol siblings.
    """
    name = name.removeprefix("!")
    if name == "forceOrder@arr":
        return "force_order"
    kind = _FIXED_KINDS.get(name)
    if kind is not None:
        return kind
    if _KLINE_RE.match(name):
        return "kline"
    if _DEPTH_RE.match(name):
        return "depth"
    return None


def split_stream(stream: str) -> tuple[str, str]:
    """``"btcusdt@markPrice@1s"`` → ``("btcusdt", "markPrice@1s")``.

    All-market streams have no symbol part: ``"!bookTicker"`` → ``("", "!bookTicker")``.
    """
    if stream.startswith("!"):
        return "", stream
    symbol, _, name = stream.partition("@")
    return symbol, name


def stream_name(symbol: str, name: str) -> str:
    """The wire name of one stream: symbols are lower-case in stream names (§1.1)."""
    return f"{symbol.lower()}@{name}"


def ws_route(market: Market, name: str) -> WsRoute:
    """The WebSocket route a stream belongs to.

    Raises:
        ValueError: the stream is unknown or not offered on ``market``.
    """
    kind = stream_kind(name)
    if kind is None or kind not in MARKET_KINDS[market]:
        raise ValueError(f"{name!r} is not a {market} stream this client knows")
    if market == "spot":
        return "spot"
    return "um_public" if kind in _UM_PUBLIC_KINDS else "um_market"


@dataclass(frozen=True)
class WsConnection:
    """One planned connection: its route, combined-stream URL and the streams it carries."""

    route: WsRoute
    url: str
    streams: tuple[str, ...]


@dataclass(frozen=True)
class Endpoints:
    """Every base URL of one exchange, and the API key for the routes that want one. Build it
    with :meth:`for_exchange`."""

    spot_ws: str
    um_ws_public: str
    um_ws_market: str
    spot_rest: str
    um_rest: str
    vision: str
    vision_listing: str
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def for_exchange(cls, value: str, *, api_key: str | None = None) -> Endpoints:
        """``"live"`` or the base URL of a built-in exchange, e.g. ``http://127.0.0.1:8765``.

        ``"sim"`` is resolved by the caller, who starts the built-in exchange and passes its URL.
        ``api_key`` is sent (as ``X-MBX-APIKEY``) only to routes that ask for one.

        Raises:
            ValueError: for ``"sim"`` or anything that is not ``live`` or ``http(s)://host[:port]``.
        """
        if value == "live":
            return cls(
                spot_ws="wss://stream.binance.com:9443",
                um_ws_public="wss://fstream.binance.com/public",
                um_ws_market="wss://fstream.binance.com/market",
                spot_rest="https://api.binance.com",
                um_rest="https://fapi.binance.com",
                vision="https://data.binance.vision",
                vision_listing="https://s3-ap-northeast-1.amazonaws.com/data.binance.vision",
                api_key=api_key,
            )
        match = _BASE_URL_RE.match(value)
        if match is None:
            hint = " (start the built-in exchange and pass its URL)" if value == "sim" else ""
            raise ValueError(
                f"{value!r} is not an exchange: expected 'live' or a base URL such as "
                f"http://127.0.0.1:8765{hint}"
            )
        scheme, host = match.groups()
        http = f"{scheme}://{host}"
        ws = f"{'wss' if scheme == 'https' else 'ws'}://{host}"
        return cls(
            spot_ws=f"{ws}/spot",
            um_ws_public=f"{ws}/um/public",
            um_ws_market=f"{ws}/um/market",
            spot_rest=http,
            um_rest=http,
            vision=http,
            vision_listing=f"{http}/vision",
            api_key=api_key,
        )

    def ws_base(self, route: WsRoute) -> str:
        bases = {
            "spot": self.spot_ws,
            "um_public": self.um_ws_public,
            "um_market": self.um_ws_market,
        }
        return bases[route]

    def ws_raw_url(self, route: WsRoute, stream: str) -> str:
        """``<base>/ws/<stream>``: one stream, payloads arrive without the wrapper."""
        return f"{self.ws_base(route)}/ws/{stream}"

    def ws_combined_url(self, route: WsRoute, streams: Sequence[str]) -> str:
        """``<base>/stream?streams=a/b/c``: payloads arrive as ``{"stream":…,"data":…}``."""
        return f"{self.ws_base(route)}/stream?streams={'/'.join(streams)}"

    def rest_url(self, market: Market, path: str) -> str:
        """``path`` as listed in :mod:`lake.binance.limits`, e.g. ``/fapi/v1/klines``."""
        return (self.spot_rest if market == "spot" else self.um_rest) + path

    def vision_url(self, key: str) -> str:
        """A Vision file, ``key`` as built by :mod:`lake.binance.vision_paths` (``data/…``)."""
        return f"{self.vision}/{key.lstrip('/')}"

    def listing_url(self, prefix: str, marker: str | None = None) -> str:
        """One page of the S3 XML listing under ``prefix``; ``marker`` continues a truncated one."""
        url = f"{self.vision_listing}?delimiter=/&prefix={quote(prefix, safe='/')}"
        return url if marker is None else f"{url}&marker={quote(marker, safe='/')}"

    def plan_connections(
        self,
        market: Market,
        symbols: Iterable[str],
        names: Iterable[str],
        *,
        max_streams: int = 200,
    ) -> list[WsConnection]:
        """Group ``symbols × names`` by route into combined connections of at most ``max_streams``.

        Raises:
            ValueError: a stream is not offered on ``market`` or ``max_streams`` is not positive.
        """
        if max_streams < 1:
            raise ValueError(f"max_streams must be positive, got {max_streams}")
        symbols = tuple(symbols)
        by_route: dict[WsRoute, list[str]] = {}
        for name in names:
            route = ws_route(market, name)
            by_route.setdefault(route, []).extend(stream_name(s, name) for s in symbols)
        out = []
        for route, streams in by_route.items():
            for i in range(0, len(streams), max_streams):
                chunk = tuple(streams[i : i + max_streams])
                out.append(WsConnection(route, self.ws_combined_url(route, chunk), chunk))
        return out
