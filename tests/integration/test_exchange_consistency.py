"""Acceptance: one history behind every surface.

For a simulated hour, the aggTrades a WebSocket client captures equal those REST and the Vision
daily file return, and 1-minute klines recomputed from them equal the klines served by REST, the
WebSocket (closed bars) and Vision.
"""

from __future__ import annotations

import hashlib
import itertools
from decimal import Decimal
from typing import Any

import httpx
import pytest

from lake.exchange.clock import Clock
from lake.exchange.testing import exchange_factory  # noqa: F401
from tests.exchange_helpers import (
    collect,
    kline_as_dict,
    klines_from_aggs,
    ms,
    run,
    unzip_csv,
    ws_kline_as_dict,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = "2024-03-10"
HOUR = ms(f"{DAY}T23:00:00")
END = HOUR + 3_600_000


def _capture(ex: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    url = ex.ws("/um/market/stream?streams=btcusdt@aggTrade/btcusdt@kline_1m")

    def done(frames: list[Any]) -> bool:
        if not frames:
            return False
        last_closed = any(
            f["stream"].endswith("kline_1m")
            and f["data"]["k"]["x"]
            and f["data"]["k"]["t"] == END - 60_000
            for f in frames[-400:]
        )
        return last_closed and any(
            f["stream"].endswith("aggTrade") and f["data"]["T"] >= END for f in frames[-400:]
        )

    # The clock is frozen until the subscription is confirmed, then runs 600x (an hour in 6 s).
    frames = run(collect(url, done, limit_s=60, ready=lambda: ex.clock.set_speed(600)))
    aggs = [f["data"] for f in frames if f["stream"].endswith("aggTrade")]
    closed = [
        f["data"]["k"] for f in frames if f["stream"].endswith("kline_1m") and f["data"]["k"]["x"]
    ]
    return [a for a in aggs if HOUR <= a["T"] < END], [k for k in closed if HOUR <= k["t"] < END]


def _rest_aggs(client: httpx.Client) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "startTime": HOUR,
        "endTime": END - 1,
        "limit": 1000,
    }
    while True:
        page = client.get("/fapi/v1/aggTrades", params=params).raise_for_status().json()
        rows += [r for r in page if r["T"] < END]
        if not page or page[-1]["T"] >= END:
            return rows
        params = {"symbol": "BTCUSDT", "fromId": page[-1]["a"] + 1, "limit": 1000}


def _vision(client: httpx.Client, key: str) -> list[list[str]]:
    body = client.get(f"/{key}").raise_for_status().content
    checksum = client.get(f"/{key}.CHECKSUM").raise_for_status().text
    assert checksum == f"{hashlib.sha256(body).hexdigest()}  {key.rsplit('/', 1)[1]}\n"
    return unzip_csv(body)


def test_ws_rest_and_vision_serve_one_history(exchange_factory: Any) -> None:  # noqa: F811
    ex = exchange_factory(clock=Clock(HOUR - 1500, speed=0))
    ws_aggs, ws_closed = _capture(ex)

    ex.clock.set(ms(f"{DAY}T00:00:00") + 26 * 3_600_000, speed=1)  # next day, files published
    with httpx.Client(base_url=ex.base_url, timeout=60) as client:
        rest_aggs = _rest_aggs(client)
        vision = _vision(
            client, f"data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-{DAY}.zip"
        )
        rest_klines = (
            client.get(
                "/fapi/v1/klines",
                params={
                    "symbol": "BTCUSDT",
                    "interval": "1m",
                    "startTime": HOUR,
                    "endTime": END - 1,
                    "limit": 60,
                },
            )
            .raise_for_status()
            .json()
        )
        vision_klines = _vision(
            client, f"data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{DAY}.zip"
        )

    assert vision[0] == [
        "agg_trade_id",
        "price",
        "quantity",
        "first_trade_id",
        "last_trade_id",
        "transact_time",
        "is_buyer_maker",
    ]
    vision_aggs = [
        {
            "a": int(r[0]),
            "p": r[1],
            "q": r[2],
            "f": int(r[3]),
            "l": int(r[4]),
            "T": int(r[5]),
            "m": r[6] == "true",
        }
        for r in vision[1:]
        if HOUR <= int(r[5]) < END
    ]

    ids = [a["a"] for a in ws_aggs]
    assert len(ids) > 10_000  # ~15 aggTrades/s by default
    assert ids == list(range(ids[0], ids[0] + len(ids))), "aggTrade ids are contiguous"
    assert all(x["l"] + 1 == y["f"] for x, y in itertools.pairwise(ws_aggs))
    assert [a["a"] for a in rest_aggs] == ids
    assert [a["a"] for a in vision_aggs] == ids

    def norm(a: dict[str, Any]) -> tuple[Any, ...]:
        return (a["a"], Decimal(a["p"]), Decimal(a["q"]), a["f"], a["l"], a["T"], a["m"])

    assert [norm(a) for a in rest_aggs] == [norm(a) for a in ws_aggs]
    assert [norm(a) for a in vision_aggs] == [norm(a) for a in ws_aggs]

    recomputed = klines_from_aggs(ws_aggs)
    assert len(recomputed) == 60
    rest = {r[0]: kline_as_dict(r) for r in rest_klines}
    assert rest == recomputed
    assert {k["t"]: ws_kline_as_dict(k) for k in ws_closed} == recomputed
    assert vision_klines[0][0] == "open_time"
    vis = {int(r[0]): kline_as_dict(r) for r in vision_klines[1:] if HOUR <= int(r[0]) < END}
    assert vis == recomputed
    # The served strings keep their exact decimals too (no float round-trips anywhere).
    assert all(len(r[1].split(".")[1]) == 2 and len(r[5].split(".")[1]) == 3 for r in rest_klines)
