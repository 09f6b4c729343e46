"""REST client: shared weight budget, 429/418/5xx handling, paging without repeats or drops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from lake.binance import history, limits
from lake.binance.budget import WeightBudget, reset_budgets, shared_budget
from lake.binance.endpoints import Endpoints
from lake.binance.rest import RestClient, RestError, RetryPolicy

BASE = "http://127.0.0.1:9"
EP = Endpoints.for_exchange(BASE)
FAST = RetryPolicy(attempts=4, base_delay_s=0.001, max_delay_s=0.01)


@pytest.fixture(autouse=True)
def _fresh_budgets() -> Iterator[None]:
    reset_budgets()
    yield
    reset_budgets()


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_budget_lets_through_up_to_target_then_waits_for_the_next_window() -> None:
    clock = Clock(120.0)
    budget = WeightBudget(100, window_s=60, target=0.9, clock=clock)
    assert budget.allowed == 90
    assert [budget.reserve(20) for _ in range(4)] == [0, 0, 0, 0]
    wait = budget.reserve(20)
    assert wait == pytest.approx(60.001)
    clock.t = 180.0
    assert budget.reserve(20) == 0
    budget.observe(85)  # someone else on the same IP used more
    assert budget.reserve(10) > 0
    budget.block(5.0)
    clock.t = 241.0
    assert budget.reserve(1) == 0
    assert budget.stats.requests == 6 and budget.stats.throttled == 1
    with pytest.raises(ValueError, match="can never fit"):
        budget.reserve(95)


def test_shared_budget_is_one_per_key() -> None:
    a = shared_budget("k", 100)
    assert shared_budget("k", 100) is a
    assert shared_budget("k", 200, window_s=10) is a and (a.limit, a.window_s) == (200, 10)
    assert shared_budget("other", 100) is not a


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@respx.mock
def test_429_honours_retry_after_and_blocks_the_budget() -> None:
    route = respx.get(f"{BASE}/fapi/v1/openInterest").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.2"}, json={"code": -1003}),
            httpx.Response(
                200,
                json={"openInterest": "1", "symbol": "BTCUSDT", "time": 1},
                headers={"X-MBX-USED-WEIGHT-1M": "7"},
            ),
        ]
    )

    async def go() -> tuple[bytes, float]:
        async with RestClient(EP, retry=FAST) as client:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            body = await client.get(limits.UM_OPEN_INTEREST, {"symbol": "BTCUSDT"})
            return body, loop.time() - t0

    body, took = run(go())
    assert json.loads(body)["symbol"] == "BTCUSDT"
    assert route.call_count == 2
    assert took >= 0.2
    budget = shared_budget(f"{BASE}#um", 2400)
    assert budget.stats.throttled == 1


@respx.mock
def test_418_then_5xx_then_timeout_are_retried() -> None:
    respx.get(f"{BASE}/fapi/v1/openInterest").mock(
        side_effect=[
            httpx.Response(418, headers={"Retry-After": "0"}),
            httpx.Response(503, text="Service Unavailable."),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json={}),
        ]
    )

    async def go() -> bytes:
        async with RestClient(EP, retry=FAST) as client:
            return await client.get(limits.UM_OPEN_INTEREST, {"symbol": "BTCUSDT"})

    assert run(go()) == b"{}"
    assert shared_budget(f"{BASE}#um", 2400).stats.banned == 1


@respx.mock
def test_client_errors_fail_at_once_with_binance_message() -> None:
    route = respx.get(f"{BASE}/fapi/v1/openInterest").mock(
        return_value=httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."})
    )

    async def go() -> bytes:
        async with RestClient(EP, retry=FAST) as client:
            return await client.get(limits.UM_OPEN_INTEREST, {"symbol": "NOPE"})

    with pytest.raises(RestError, match="Invalid symbol") as info:
        run(go())
    assert info.value.status == 400 and route.call_count == 1


@respx.mock
def test_retries_run_out() -> None:
    respx.get(f"{BASE}/fapi/v1/openInterest").mock(return_value=httpx.Response(502))

    async def go() -> bytes:
        async with RestClient(EP, retry=FAST) as client:
            return await client.get(limits.UM_OPEN_INTEREST, {"symbol": "BTCUSDT"})

    with pytest.raises(RestError, match="gave up after 4 attempts"):
        run(go())


def agg_trade_server(n: int, same_ms_every: int = 7) -> Any:
    """aggTrades 0..n-1 where runs of ``same_ms_every`` trades share one millisecond."""
    trades = [
        {
            "a": i,
            "p": "1",
            "q": "1",
            "f": i,
            "l": i,
            "T": 1_000_000 + i // same_ms_every,
            "m": False,
        }
        for i in range(n)
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        limit = int(q["limit"])
        if "fromId" in q:
            start = int(q["fromId"])
            page = [t for t in trades if t["a"] >= start][:limit]
        else:
            lo, hi = int(q["startTime"]), int(q["endTime"])
            assert hi - lo < history.HOUR_MS
            page = [t for t in trades if lo <= t["T"] <= hi][:limit]
        return httpx.Response(200, json=page, headers={"X-MBX-USED-WEIGHT-1M": "0"})

    return handler


@respx.mock
def test_agg_trades_paging_by_id_keeps_same_millisecond_trades_exactly_once() -> None:
    from lake.binance.parse import parse_rest_agg_trades

    respx.get(f"{BASE}/fapi/v1/aggTrades").mock(side_effect=agg_trade_server(5_432))

    async def go() -> tuple[history.Pages, history.Pages]:
        async with RestClient(EP, retry=FAST) as client:
            by_id = await history.agg_trades_by_id(client, "um", "BTCUSDT", from_id=17, to_id=5_000)
            by_time = await history.agg_trades_between(
                client, "um", "BTCUSDT", 1_000_100, 1_000_700
            )
            return by_id, by_time

    by_id, by_time = run(go())
    ids = parse_rest_agg_trades(by_id.bodies, market="um", symbol="BTCUSDT", batch_id="t")
    got = ids["agg_trade_id"].to_list()
    assert got[0] == 17 and got == sorted(set(got)) and got[-1] >= 5_000
    assert got == list(range(17, got[-1] + 1))
    assert by_id.rows == len(got)  # nothing repeated across pages
    timed = parse_rest_agg_trades(by_time.bodies, market="um", symbol="BTCUSDT", batch_id="t")
    first = timed["agg_trade_id"][0]
    assert first == 700  # the first trade at or after 1_000_100 ms
    assert timed["agg_trade_id"].to_list() == list(range(700, first + timed.height))


@respx.mock
def test_klines_paging_and_best_limit() -> None:
    minute = 60_000
    seen_limits: set[int] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        seen_limits.add(int(q["limit"]))
        start, end = int(q["startTime"]), int(q["endTime"])
        opens = range(start, end + 1, minute)
        page = [
            [t, "1", "1", "1", "1", "0", t + minute - 1, "0", 1, "0", "0", "0"]
            for t in list(opens)[: int(q["limit"])]
        ]
        return httpx.Response(200, json=page)

    respx.get(f"{BASE}/fapi/v1/markPriceKlines").mock(side_effect=handler)

    async def go() -> history.Pages:
        async with RestClient(EP, retry=FAST) as client:
            return await history.klines_between(client, "um", "mark", "BTCUSDT", 0, 2000 * minute)

    pages = run(go())
    assert pages.rows == 2000
    assert seen_limits == {limits.UM_MARK_PRICE_KLINES.best_limit()}
    assert pages.requests == -(-2000 // limits.UM_MARK_PRICE_KLINES.best_limit())


@respx.mock
def test_spot_and_usdm_budgets_are_apart_and_quotas_count_requests() -> None:
    from dataclasses import replace

    respx.get(f"{BASE}/fapi/v1/fundingRate").mock(return_value=httpx.Response(200, json=[]))
    route = replace(limits.UM_FUNDING_RATE, quota=limits.IpQuota("tiny", 2, 1))

    async def go() -> float:
        async with RestClient(EP, retry=FAST) as client:
            assert client.budget("spot") is not client.budget("um")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for _ in range(3):  # the third request waits for the quota's next window
                await client.get(route, {"symbol": "BTCUSDT"}, limit=1000)
            return loop.time() - t0

    took = run(go())
    quota = shared_budget(f"{BASE}#um#tiny", 2, window_s=1.0)
    assert quota.stats.requests == 3 and quota.stats.waited_s > 0
    assert took >= quota.stats.waited_s * 0.9
