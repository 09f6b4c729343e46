"""The API key: asked for by USD-M historicalTrades only, sent only there, and what a missing or
wrong key does to a trade-id gap."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import polars as pl
import pytest

from lake.binance import history
from lake.binance.endpoints import Endpoints
from lake.binance.rest import RestClient, RestError
from lake.exchange.clock import Clock
from lake.exchange.testing import exchange_factory  # noqa: F401
from tests.exchange_helpers import ms

pytestmark = pytest.mark.integration

KEY = "read-only-key"


@pytest.fixture
def keyed(exchange_factory: Any) -> Any:  # noqa: F811
    return exchange_factory(
        clock=Clock(ms("2025-03-05T12:00:00"), speed=0),
        symbol_overrides={"agg_rate": 0.5},
        api_keys=(KEY,),
    )


def test_the_exchange_answers_like_binance_without_a_key(keyed: Any) -> None:
    q = {"symbol": "BTCUSDT", "limit": 5}
    with httpx.Client(base_url=keyed.base_url, timeout=30) as c:
        missing = c.get("/fapi/v1/historicalTrades", params=q)
        assert (missing.status_code, missing.json()["code"]) == (401, -2014)
        wrong = c.get("/fapi/v1/historicalTrades", params=q, headers={"X-MBX-APIKEY": "other"})
        assert (wrong.status_code, wrong.json()["code"]) == (401, -2015)
        good = c.get("/fapi/v1/historicalTrades", params=q, headers={"X-MBX-APIKEY": KEY})
        assert good.status_code == 200 and len(good.json()) == 5
        # spot historicalTrades and every other route stay open
        assert c.get("/api/v3/historicalTrades", params=q).status_code == 200
        assert c.get("/fapi/v1/aggTrades", params=q).status_code == 200


def _recent_trades(base_url: str, limit: int) -> list[dict[str, Any]]:
    """The exchange's latest USD-M BTCUSDT trades, asked for with the key."""
    with httpx.Client(base_url=base_url, timeout=30) as c:
        resp = c.get(
            "/fapi/v1/historicalTrades",
            params={"symbol": "BTCUSDT", "limit": limit},
            headers={"X-MBX-APIKEY": KEY},
        )
    rows: list[dict[str, Any]] = resp.json()
    return rows


def _trades(base_url: str, api_key: str | None, from_id: int) -> pl.DataFrame:
    async def go() -> pl.DataFrame:
        endpoints = Endpoints.for_exchange(base_url, api_key=api_key)
        async with RestClient(endpoints) as client:
            return await history.trades_by_id(
                client, "um", "BTCUSDT", from_id=from_id, to_id=from_id + 20, batch_id="t"
            )

    return asyncio.run(go())


def test_the_client_sends_its_key_to_usdm_historical_trades(keyed: Any) -> None:
    first = _recent_trades(keyed.base_url, 100)[0]["id"]
    rows = _trades(keyed.base_url, KEY, first)
    assert rows.get_column("trade_id").to_list()[:21] == list(range(first, first + 21))
    with pytest.raises(RestError, match="API key is needed: set LAKE_API_KEY") as missing:
        _trades(keyed.base_url, None, first)
    assert missing.value.status == 401
    with pytest.raises(RestError, match="API key was refused"):
        _trades(keyed.base_url, "not-the-key", first)


def test_the_key_goes_only_where_it_is_asked_for() -> None:
    import respx

    base = "http://127.0.0.1:9"
    seen: dict[str, str | None] = {}

    def record(request: httpx.Request) -> httpx.Response:
        seen[request.url.path] = request.headers.get("X-MBX-APIKEY")
        return httpx.Response(200, json=[])

    async def go() -> None:
        async with RestClient(Endpoints.for_exchange(base, api_key=KEY)) as client:
            await history.trades_by_id(client, "um", "BTCUSDT", from_id=1, to_id=2, batch_id="t")
            await history.trades_by_id(client, "spot", "BTCUSDT", from_id=1, to_id=2, batch_id="t")
            await history.agg_trades_by_id(client, "um", "BTCUSDT", from_id=1, to_id=2)

    with respx.mock:
        respx.get(url__startswith=base).mock(side_effect=record)
        asyncio.run(go())
    assert seen == {
        "/fapi/v1/historicalTrades": KEY,
        "/api/v3/historicalTrades": None,
        "/fapi/v1/aggTrades": None,
    }


def test_a_usdm_trade_gap_waits_for_a_key_then_is_repaired(keyed: Any, tmp_path: Any) -> None:
    import json

    from lake.capture.land import land_market
    from lake.capture.landing import LandingSink
    from lake.capture.repair import repair_open_gaps
    from lake.schemas import GAPS, TRADES
    from lake.storage import Lake

    trades = _recent_trades(keyed.base_url, 30)
    sink = LandingSink(tmp_path / "landing" / "um", prefix="um")
    for i, t in enumerate(trades):
        if 10 <= i < 20:
            continue  # lost in a reconnect
        data = {"e": "trade", "E": t["time"], "T": t["time"], "s": "BTCUSDT", "t": t["id"]}
        data |= {"p": t["price"], "q": t["qty"], "X": "MARKET", "m": t["isBuyerMaker"]}
        frame = json.dumps({"stream": "btcusdt@trade", "data": data}).encode()
        sink.append(t["time"] * 1_000_000, frame, label=b"btcusdt@trade")
    sink.close()
    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    land_market(lake, tmp_path / "landing" / "um", "um")

    def repair(api_key: str | None) -> Any:
        async def go() -> Any:
            endpoints = Endpoints.for_exchange(keyed.base_url, api_key=api_key)
            async with RestClient(endpoints) as client:
                return await repair_open_gaps(lake, client)

        return asyncio.run(go())

    without = repair(None)
    assert (without.repaired, without.left_open) == (0, 1)
    assert "LAKE_API_KEY" in without.errors[0]
    assert lake.read(GAPS).get_column("status").to_list() == ["open"]

    done = repair(KEY)
    assert (done.repaired, done.left_open) == (1, 0)
    assert lake.read(GAPS).get_column("status").to_list() == ["repaired"]
    ids = lake.read(TRADES).get_column("trade_id").sort().to_list()
    assert ids == [t["id"] for t in trades]
