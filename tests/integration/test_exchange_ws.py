"""WebSocket surface: routes, wrappers, payload shapes, control messages, pings, lifetime."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from lake.exchange.clock import Clock
from lake.exchange.prices import FUNDING_MS
from lake.exchange.testing import exchange, exchange_factory  # noqa: F401
from tests.exchange_helpers import collect, listen, ms, run

pytestmark = pytest.mark.integration


def test_spot_raw_book_ticker_has_no_e_E_T(exchange: Any) -> None:  # noqa: F811
    frames = run(collect(exchange.ws("/spot/ws/btcusdt@bookTicker"), lambda f: len(f) >= 3))
    assert all(list(f) == ["u", "s", "b", "B", "a", "A"] for f in frames)
    assert frames[0]["s"] == "BTCUSDT" and len(frames[0]["b"].split(".")[1]) == 8
    assert frames[0]["u"] < frames[1]["u"] < frames[2]["u"]


def test_usdm_payloads_follow_the_real_key_order(exchange: Any) -> None:  # noqa: F811
    streams = "btcusdt@aggTrade/btcusdt@trade/btcusdt@markPrice@1s/btcusdt@forceOrder"
    url = exchange.ws(f"/um/market/stream?streams={streams}")

    def done(frames: list[Any]) -> bool:
        need = {"btcusdt@aggTrade", "btcusdt@trade", "btcusdt@markPrice@1s"}
        return need <= {f["stream"] for f in frames}

    frames = run(collect(url, done, limit_s=10))
    by = {f["stream"]: f["data"] for f in frames}
    assert list(by["btcusdt@aggTrade"]) == ["e", "E", "a", "s", "p", "q", "f", "l", "T", "m"]
    assert list(by["btcusdt@trade"]) == ["e", "E", "T", "s", "t", "p", "q", "X", "m"]
    assert by["btcusdt@trade"]["X"] == "MARKET"
    mark = by["btcusdt@markPrice@1s"]
    assert list(mark) == ["e", "E", "s", "p", "P", "i", "r", "T"]
    assert mark["E"] % 1000 < 15 and mark["T"] % FUNDING_MS == 0
    assert all(list(f) == ["stream", "data"] for f in frames)


def test_force_orders_carry_undocumented_keys(exchange_factory: Any) -> None:  # noqa: F811
    ex = exchange_factory(symbol_overrides={"liq_per_hour": 3600}, symbols="um:BTCUSDT")
    frames = run(collect(ex.ws("/um/market/ws/btcusdt@forceOrder"), lambda f: len(f) >= 2))
    o = frames[0]["o"]
    assert frames[0]["e"] == "forceOrder" and o["ps"] == "BTCUSDT"  # unknown keys to ignore
    assert o["S"] in ("BUY", "SELL") and o["X"] == "FILLED" and o["z"] == o["q"]
    assert frames[1]["o"]["T"] // 1000 > o["T"] // 1000  # at most one per second


def test_wrong_route_delivers_nothing(exchange_factory: Any) -> None:  # noqa: F811
    ex = exchange_factory(clock=Clock(ms("2026-06-01T12:00:00")))
    url = ex.ws("/um/public/stream?streams=btcusdt@aggTrade/btcusdt@bookTicker")
    public = run(listen(url, 1.2))
    assert public and {f["stream"] for f in public} == {"btcusdt@bookTicker"}
    assert all(f["data"]["st"] == 0 for f in public)  # 2026 frames carry an undocumented key
    market = run(listen(ex.ws("/um/market/ws/btcusdt@bookTicker"), 0.8))
    assert market == []
    legacy = run(listen(ex.ws("/um/stream?streams=btcusdt@aggTrade"), 0.8))
    assert legacy == []  # legacy USD-M URLs stopped delivering on 2026-04-23


def test_legacy_route_delivered_before_the_split(exchange_factory: Any) -> None:  # noqa: F811
    ex = exchange_factory(clock=Clock(ms("2025-06-01T12:00:00")))
    frames = run(collect(ex.ws("/um/ws/btcusdt@aggTrade"), lambda f: len(f) >= 2))
    assert frames[0]["e"] == "aggTrade"


def test_live_subscribe_list_unsubscribe_and_properties(exchange: Any) -> None:  # noqa: F811
    async def go() -> list[Any]:
        async with aiohttp.ClientSession() as s, s.ws_connect(exchange.ws("/spot/ws")) as ws:
            replies: list[Any] = []

            async def call(msg: Any) -> Any:
                await asyncio.sleep(0.25)  # spot allows 5 inbound messages a second
                await ws.send_str(msg if isinstance(msg, str) else json.dumps(msg))
                while True:
                    d = json.loads((await ws.receive(timeout=5)).data)
                    if "id" in d:
                        return d

            replies.append(
                await call(
                    {
                        "method": "SUBSCRIBE",
                        "params": ["btcusdt@aggTrade", "ethusdt@aggTrade"],
                        "id": 1,
                    }
                )
            )
            replies.append(await call({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            replies.append(await call({"method": "GET_PROPERTY", "params": ["combined"], "id": 3}))
            data = json.loads((await ws.receive(timeout=5)).data)
            replies.append(data)
            replies.append(
                await call({"method": "SET_PROPERTY", "params": ["combined", True], "id": 4})
            )
            while "stream" not in (d := json.loads((await ws.receive(timeout=5)).data)):
                pass
            replies.append(d)
            replies.append(
                await call({"method": "UNSUBSCRIBE", "params": ["ethusdt@aggTrade"], "id": 5})
            )
            replies.append(await call({"method": "LIST_SUBSCRIPTIONS", "id": 6}))
            replies.append(await call("not json"))
            return replies

    r = run(go())
    assert r[0] == {"result": None, "id": 1}
    assert r[1] == {"result": ["btcusdt@aggTrade", "ethusdt@aggTrade"], "id": 2}
    assert r[2] == {"result": False, "id": 3}
    assert r[3]["e"] == "aggTrade"  # raw connection: no wrapper
    assert r[4] == {"result": None, "id": 4}
    assert r[5]["stream"].endswith("@aggTrade") and r[5]["data"]["e"] == "aggTrade"
    assert r[7] == {"result": ["btcusdt@aggTrade"], "id": 6}
    assert r[8]["error"]["code"] == 3 and r[8]["id"] is None


def test_kline_pushes_partial_bars_then_one_closed_bar(exchange_factory: Any) -> None:  # noqa: F811
    start = ms("2024-03-10T12:00:50")
    ex = exchange_factory(clock=Clock(start, speed=0))

    def done(frames: list[Any]) -> bool:
        return any(f["k"]["x"] for f in frames)

    frames = run(
        collect(ex.ws("/um/market/ws/btcusdt@kline_1m"), done, ready=lambda: ex.clock.set_speed(10))
    )
    partial, closed = frames[:-1], frames[-1]
    assert partial and all(not f["k"]["x"] for f in partial)
    assert all(f["E"] % 250 == 0 for f in partial)  # USD-M pushes every 250 ms
    assert [f["k"]["n"] for f in partial] == sorted(f["k"]["n"] for f in partial)
    k = closed["k"]
    assert k["x"] and k["t"] == ms("2024-03-10T12:00:00") and k["T"] == k["t"] + 59_999
    assert 0 < closed["E"] - k["T"] <= 201 and k["n"] >= partial[-1]["k"]["n"]
    assert list(k) == [
        "t",
        "T",
        "s",
        "i",
        "f",
        "L",
        "o",
        "c",
        "h",
        "l",
        "v",
        "n",
        "x",
        "q",
        "V",
        "Q",
        "B",
    ]


def test_mark_price_T_rolls_over_at_the_funding_settlement(exchange_factory: Any) -> None:  # noqa: F811
    settle = ms("2024-03-11T08:00:00")
    ex = exchange_factory(clock=Clock(settle - 2500, speed=0))
    frames = run(
        collect(
            ex.ws("/um/market/ws/btcusdt@markPrice@1s"),
            lambda f: bool(f) and f[-1]["E"] > settle + 2000,
            ready=lambda: ex.clock.set_speed(4),
        )
    )
    ts = {f["E"] // 1000 * 1000: f["T"] for f in frames}
    assert ts[settle - 1000] == settle and ts[settle] == settle
    assert ts[settle + 2000] == settle + FUNDING_MS


def test_server_pings_and_drops_silent_clients(exchange_factory: Any) -> None:  # noqa: F811
    ex = exchange_factory(spot_ping_s=0.2, spot_pong_timeout_s=0.7)

    async def go() -> tuple[int, float]:
        session = aiohttp.ClientSession()
        async with session, session.ws_connect(ex.ws("/spot/ws"), autoping=False) as ws:
            t0, pings = time.monotonic(), 0
            while True:
                m = await ws.receive(timeout=5)
                if m.type == aiohttp.WSMsgType.PING:
                    pings += 1  # never answered
                elif m.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    return pings, time.monotonic() - t0

    pings, lasted = run(go())
    assert pings >= 2 and 0.6 < lasted < 3

    answered = run(listen(ex.ws("/spot/ws/btcusdt@aggTrade"), 1.5))
    assert answered  # an answering client (aiohttp autoping) stays connected


def test_connection_lifetime_forces_a_disconnect(exchange_factory: Any) -> None:  # noqa: F811
    ex = exchange_factory(ws_lifetime_s=0.5)

    async def go() -> float:
        async with (
            aiohttp.ClientSession() as s,
            s.ws_connect(ex.ws("/spot/ws/btcusdt@trade")) as ws,
        ):
            t0 = time.monotonic()
            async for _ in ws:
                pass
            return time.monotonic() - t0

    assert 0.4 < run(go()) < 2.0


def test_too_many_inbound_messages_disconnect(exchange: Any) -> None:  # noqa: F811
    async def go() -> aiohttp.WSMsgType:
        async with aiohttp.ClientSession() as s, s.ws_connect(exchange.ws("/spot/ws")) as ws:
            for i in range(8):
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            while True:
                m = await ws.receive(timeout=5)
                if m.type != aiohttp.WSMsgType.TEXT:
                    return m.type

    assert run(go()) in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


def test_unknown_paths_are_404(exchange: Any) -> None:  # noqa: F811
    async def go() -> int:
        async with aiohttp.ClientSession() as s, s.get(exchange.url("/spot/nope")) as r:
            return r.status

    assert run(go()) == 404
