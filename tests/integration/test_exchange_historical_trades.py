"""``historicalTrades``: the trades of the ``@trade`` stream and the archive, paged by id."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lake.exchange.clock import Clock
from lake.exchange.testing import exchange_factory  # noqa: F401
from tests.exchange_helpers import ms, unzip_csv

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("market", "prefix"), [("um", "/fapi/v1"), ("spot", "/api/v3")])
def test_historical_trades_equal_the_archive_and_page_by_id(
    exchange_factory: Any,  # noqa: F811
    market: str,
    prefix: str,
) -> None:
    ex = exchange_factory(
        clock=Clock(ms("2025-03-05T12:00:00"), speed=0), symbol_overrides={"agg_rate": 0.5}
    )
    folder = "futures/um" if market == "um" else "spot"
    key = f"data/{folder}/daily/trades/BTCUSDT/BTCUSDT-trades-2025-03-04.zip"
    with httpx.Client(base_url=ex.base_url, timeout=60) as c:
        resp = c.get(f"/{key}")
        assert resp.status_code == 200
        rows = unzip_csv(resp.content)
        archive = [r for r in rows if r and r[0].isdigit()]  # header or not, by market and date
        first = int(archive[0][0])
        got: list[dict[str, Any]] = []
        cursor = first
        while len(got) < 1200:
            page = c.get(
                f"{prefix}/historicalTrades",
                params={"symbol": "BTCUSDT", "fromId": cursor, "limit": 500},
            )
            assert page.status_code == 200 and int(page.headers["X-MBX-USED-WEIGHT-1M"]) > 0
            body = page.json()
            assert body and body[0]["id"] == cursor
            got += body
            cursor = body[-1]["id"] + 1
    assert [t["id"] for t in got] == list(range(first, first + len(got)))
    time_div = 1000 if market == "spot" else 1  # spot archives print µs since 2025
    for trade, row in zip(got, archive, strict=False):
        assert str(trade["id"]) == row[0]
        assert (trade["price"], trade["qty"], trade["quoteQty"]) == (row[1], row[2], row[3])
        assert trade["time"] == int(row[4]) // time_div
        assert str(trade["isBuyerMaker"]).lower() == row[5].lower()
        assert ("isBestMatch" in trade) == (market == "spot")
