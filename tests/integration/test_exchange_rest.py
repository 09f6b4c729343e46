"""REST surface: routes, parameters, weights, budgets (429 + Retry-After, 418), headers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lake.exchange.clock import Clock
from lake.exchange.config import RateLimits
from lake.exchange.testing import exchange, exchange_factory  # noqa: F401
from tests.exchange_helpers import ms

pytestmark = pytest.mark.integration

NOW = ms("2024-03-10T12:34:56")


@pytest.fixture
def client(exchange_factory: Any) -> Any:  # noqa: F811
    ex = exchange_factory(clock=Clock(NOW, speed=0))
    with httpx.Client(base_url=ex.base_url, timeout=30) as c:
        c.ex = ex  # type: ignore[attr-defined]
        yield c


def test_every_response_reports_used_weight(client: httpx.Client) -> None:
    r1 = client.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT"})
    r2 = client.get(
        "/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1000}
    )
    r3 = client.get(
        "/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1001}
    )
    r4 = client.get("/futures/data/openInterestHist", params={"symbol": "BTCUSDT", "period": "5m"})
    bad = client.get("/fapi/v1/klines", params={"symbol": "NOPE", "interval": "1m"})
    used = [int(r.headers["X-MBX-USED-WEIGHT-1M"]) for r in (r1, r2, r3, r4, bad)]
    assert used == [20, 25, 35, 35, 40]  # aggTrades 20, klines 5 then 10, data 0; errors count
    assert bad.status_code == 400 and bad.json() == {"code": -1121, "msg": "Invalid symbol."}
    spot = client.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1s"})
    assert spot.headers["X-MBX-USED-WEIGHT-1M"] == "2"  # spot has its own budget


def test_klines_rows_and_limits(client: httpx.Client) -> None:
    rows = client.get("/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m"}).json()
    assert len(rows) == 500 and rows[-1][0] == NOW // 60_000 * 60_000  # in-progress bar last
    assert all(len(r) == 12 and r[6] == r[0] + 59_999 and r[11] == "0" for r in rows)
    assert (
        client.get(
            "/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1501}
        ).json()["code"]
        == -1130
    )
    assert (
        client.get(
            "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1001}
        ).json()["code"]
        == -1130
    )
    assert (
        client.get("/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1s"}).json()["code"]
        == -1120
    )
    assert client.get("/fapi/v1/klines", params={"symbol": "BTCUSDT"}).json()["code"] == -1102
    start = ms("2024-03-01T00:00:00")
    page = client.get(
        "/fapi/v1/klines",
        params={"symbol": "BTCUSDT", "interval": "1h", "startTime": start, "limit": 3},
    ).json()
    assert [r[0] for r in page] == [start, start + 3_600_000, start + 7_200_000]
    four = client.get(
        "/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "4h", "limit": 2}
    ).json()
    assert four[-1][0] == ms("2024-03-10T12:00:00") and four[0][8] > four[-1][8] > 0


def test_spot_prints_8_decimals_and_microseconds_on_request(client: httpx.Client) -> None:
    q = {"symbol": "BTCUSDT", "interval": "1m", "limit": 2}
    ms_rows = client.get("/api/v3/klines", params=q).json()
    us_rows = client.get(
        "/api/v3/klines", params=q, headers={"X-MBX-TIME-UNIT": "MICROSECOND"}
    ).json()
    assert len(ms_rows[0][1].split(".")[1]) == 8
    assert us_rows[0][0] == ms_rows[0][0] * 1000 and us_rows[0][6] == ms_rows[0][6] * 1000 + 999
    aggs = client.get("/api/v3/aggTrades", params={"symbol": "BTCUSDT", "limit": 3}).json()
    assert list(aggs[0]) == ["a", "p", "q", "f", "l", "T", "m", "M"]


def test_agg_trades_windows_and_from_id(client: httpx.Client) -> None:
    start = NOW - 3_600_000
    too_wide = client.get(
        "/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "startTime": start, "endTime": NOW}
    )
    assert too_wide.json()["code"] == -1127
    page = client.get(
        "/fapi/v1/aggTrades",
        params={"symbol": "BTCUSDT", "startTime": start, "endTime": NOW - 1, "limit": 1000},
    ).json()
    assert len(page) == 1000 and page[0]["T"] >= start
    assert list(page[0]) == ["a", "p", "q", "f", "l", "T", "m"]
    nxt = client.get(
        "/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": page[-1]["a"] + 1, "limit": 5}
    ).json()
    assert [r["a"] for r in nxt] == list(range(page[-1]["a"] + 1, page[-1]["a"] + 6))
    assert nxt[0]["f"] == page[-1]["l"] + 1
    latest = client.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT"}).json()
    assert len(latest) == 500 and latest[-1]["T"] <= NOW
    future = client.get(
        "/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": latest[-1]["a"] + 1}
    ).json()
    assert future == []  # nothing after "now"


def test_mark_index_premium_klines(client: httpx.Client) -> None:
    q = {"interval": "1m", "limit": 2}
    assert (
        client.get("/fapi/v1/indexPriceKlines", params={**q, "symbol": "BTCUSDT"}).json()["code"]
        == -1102
    )
    index = client.get("/fapi/v1/indexPriceKlines", params={**q, "pair": "BTCUSDT"}).json()
    mark = client.get("/fapi/v1/markPriceKlines", params={**q, "symbol": "BTCUSDT"}).json()
    prem = client.get("/fapi/v1/premiumIndexKlines", params={**q, "symbol": "BTCUSDT"}).json()
    for rows in (index, mark, prem):
        assert [r[5] for r in rows] == ["0", "0"] and rows[0][7] == rows[0][9] == rows[0][10] == "0"
    assert index[0][8] == 60 and mark[0][8] == 60 and prem[0][8] == 12  # sample counts


def test_funding_premium_index_and_open_interest(client: httpx.Client) -> None:
    rows = client.get("/fapi/v1/fundingRate", params={"symbol": "BTCUSDT"}).json()
    assert len(rows) == 200 and list(rows[0]) == [
        "symbol",
        "fundingRate",
        "fundingTime",
        "markPrice",
    ]
    assert all(r["fundingTime"] % 28_800_000 < 20 for r in rows) and rows[-1]["fundingTime"] <= NOW
    ranged = client.get(
        "/fapi/v1/fundingRate",
        params={
            "symbol": "BTCUSDT",
            "startTime": ms("2024-03-01T00:00:00"),
            "endTime": ms("2024-03-02T00:00:00"),
        },
    ).json()
    assert len(ranged) == 3
    p = client.get("/fapi/v1/premiumIndex", params={"symbol": "BTCUSDT"}).json()
    assert p["nextFundingTime"] == ms("2024-03-10T16:00:00") and p["time"] == NOW
    assert len(client.get("/fapi/v1/premiumIndex").json()) == 2
    oi = client.get("/fapi/v1/openInterest", params={"symbol": "BTCUSDT"}).json()
    assert list(oi) == ["openInterest", "symbol", "time"]


def test_futures_data_serves_only_the_last_30_days(client: httpx.Client) -> None:
    q = {"symbol": "BTCUSDT", "period": "1d", "limit": 500}
    rows = client.get("/futures/data/openInterestHist", params=q).json()
    assert 29 <= len(rows) <= 30 and isinstance(rows[0]["timestamp"], str)
    assert int(rows[0]["timestamp"]) >= NOW - 30 * 86_400_000
    for path in (
        "topLongShortAccountRatio",
        "topLongShortPositionRatio",
        "globalLongShortAccountRatio",
    ):
        r = client.get(f"/futures/data/{path}", params={**q, "period": "5m", "limit": 2}).json()
        assert list(r[0]) == [
            "symbol",
            "longShortRatio",
            "longAccount",
            "shortAccount",
            "timestamp",
        ]
    taker = client.get(
        "/futures/data/takerlongshortRatio", params={**q, "period": "5m", "limit": 30}
    ).json()
    assert len(taker) == 30 and list(taker[0]) == ["buySellRatio", "buyVol", "sellVol", "timestamp"]
    assert (
        client.get("/futures/data/openInterestHist", params={**q, "period": "7m"}).json()["code"]
        == -1130
    )


def test_exchange_info(client: httpx.Client) -> None:
    um = client.get("/fapi/v1/exchangeInfo").json()
    assert um["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 2400,
    }
    assert {s["symbol"] for s in um["symbols"]} == {"BTCUSDT", "ETHUSDT"}
    spot = client.get("/api/v3/exchangeInfo", params={"symbol": "BTCUSDT"}).json()
    assert spot["rateLimits"][0]["limit"] == 6000 and len(spot["symbols"]) == 1
    assert client.get("/api/v3/exchangeInfo").headers["X-MBX-USED-WEIGHT-1M"] == "40"


def test_past_the_budget_429_with_retry_after_then_418(exchange_factory: Any) -> None:  # noqa: F811
    ex = exchange_factory(limits=RateLimits(um_weight=100, ban_after_429=2, window_scale=1.0))
    with httpx.Client(base_url=ex.base_url) as c:
        codes = [
            c.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "limit": 1}) for _ in range(8)
        ]
    assert [r.status_code for r in codes] == [200] * 5 + [429, 429, 418]
    r429, r418 = codes[5], codes[7]
    assert r429.json()["code"] == -1003 and 1 <= int(r429.headers["Retry-After"]) <= 60
    assert r429.headers["X-MBX-USED-WEIGHT-1M"] == "100"
    assert int(r418.headers["Retry-After"]) == 120 and "banned until" in r418.json()["msg"]


def test_budget_window_is_configurable(exchange_factory: Any) -> None:  # noqa: F811
    import time

    ex = exchange_factory(limits=RateLimits(um_weight=20, window_scale=1 / 60))  # 1 s windows
    with httpx.Client(base_url=ex.base_url) as c:
        q = {"symbol": "BTCUSDT", "limit": 1}
        assert c.get("/fapi/v1/aggTrades", params=q).status_code == 200
        blocked = c.get("/fapi/v1/aggTrades", params=q)
        assert blocked.status_code == 429 and blocked.headers["Retry-After"] == "1"
        time.sleep(float(blocked.headers["Retry-After"]) + 0.05)
        assert c.get("/fapi/v1/aggTrades", params=q).status_code == 200
