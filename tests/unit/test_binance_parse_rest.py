"""parse_rest_*: response bodies (single or paged) to bronze rows; wire structs and decoders."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest

from lake import schemas
from lake.binance import wire
from lake.binance.parse import (
    parse_rest_agg_trades,
    parse_rest_funding,
    parse_rest_klines,
    parse_rest_metrics,
)

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def kline_row(i: int) -> list[object]:
    t = T0 + i * 60_000
    return [
        t,
        "42000.1",
        "42010.0",
        "41990.5",
        "42005.2",
        "12.5",
        t + 59_999,
        "525000.7",
        340,
        "6.1",
        "256000.3",
        "0",
    ]


def body(rows: object) -> bytes:
    return json.dumps(rows).encode()


def test_klines_drop_the_bar_in_progress_and_overlapping_pages() -> None:
    page1 = body([kline_row(i) for i in range(3)])
    page2 = body([kline_row(i) for i in range(2, 5)])  # overlaps page 1 by one bar
    now = T0 + 4 * 60_000 + 30_000  # the fifth bar is still open
    f = parse_rest_klines(
        [page1, page2],
        market="um",
        kind="trade",
        interval="1m",
        symbol="BTCUSDT",
        batch_id="r1",
        now_ms=now,
    )
    assert f.height == 4
    assert f.schema == schemas.KLINES.polars_schema()
    assert f.get_column("open_time").to_list()[-1] == datetime(2024, 1, 1, 0, 3, tzinfo=UTC)
    row = f.row(0, named=True)
    assert (row["open"], row["trade_count"], row["taker_buy_quote_volume"]) == (
        "42000.1",
        340,
        "256000.3",
    )
    assert (row["source"], row["kind"], row["market"]) == ("rest", "trade", "um")
    exactly_closed = parse_rest_klines(
        page1,
        market="um",
        kind="mark",
        interval="1m",
        symbol="BTCUSDT",
        batch_id="r",
        now_ms=T0 + 3 * 60_000,
    )
    assert exactly_closed.height == 3


def test_klines_accept_short_and_long_arrays_and_microseconds() -> None:
    short = kline_row(0)[:11]  # no "ignore"
    longer = [*kline_row(1), "extra"]
    us = kline_row(2)
    us[0], us[6] = int(us[0]) * 1000, int(us[6]) * 1000 + 999  # type: ignore[call-overload]
    f = parse_rest_klines(
        body([short, longer, us]),
        market="spot",
        kind="trade",
        interval="1m",
        symbol="BTCUSDT",
        batch_id="r",
        now_ms=T0 + 10**9,
    )
    assert f.height == 3
    assert f.get_column("open_time").dt.epoch("us").to_list()[2] == (T0 + 120_000) * 1000


def test_bad_page_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="page 1 is not the expected response"):
        parse_rest_klines(
            [body([]), b'{"code":-1121,"msg":"Invalid symbol."}'],
            market="um",
            kind="trade",
            interval="1m",
            symbol="X",
            batch_id="r",
            now_ms=T0,
        )
    assert wire.API_ERROR.decode(b'{"code":-1121,"msg":"Invalid symbol."}').code == -1121


def test_agg_trades_spot_and_usdm_pages() -> None:
    um = [
        {
            "a": 26129 + i,
            "p": "0.0163",
            "q": "4.70",
            "f": 27781 + i,
            "l": 27781 + i,
            "T": 1498793709153 + i,
            "m": i % 2 == 0,
        }
        for i in range(5)
    ]
    f = parse_rest_agg_trades(
        [body(um[:3]), body(um[2:])], market="um", symbol="BTCUSDT", batch_id="g"
    )
    assert f.get_column("agg_trade_id").to_list() == list(range(26129, 26134))
    assert f.get_column("is_best_match").null_count() == 5
    assert f.schema == schemas.AGG_TRADES.polars_schema()
    spot = [{**um[0], "M": True, "zz": 1}]
    g = parse_rest_agg_trades(body(spot), market="spot", symbol="BTCUSDT", batch_id="g")
    assert (
        g.row(0, named=True)["is_best_match"] is True and g.row(0, named=True)["market"] == "spot"
    )
    empty = parse_rest_agg_trades(b"[]", market="um", symbol="BTCUSDT", batch_id="g")
    assert empty.height == 0 and empty.schema == schemas.AGG_TRADES.polars_schema()


def test_funding_rate() -> None:
    rows = [
        {
            "symbol": "BTCUSDT",
            "fundingRate": "-0.03750000",
            "fundingTime": 1570608000000,
            "markPrice": "34287.54619963",
        },
        {
            "symbol": "BTCUSDT",
            "fundingRate": "0.00010000",
            "fundingTime": 1570636800017,
            "markPrice": "",
        },
    ]
    f = parse_rest_funding(body(rows[::-1]), batch_id="f")
    assert f.schema == schemas.FUNDING.polars_schema()
    assert f.get_column("mark_price").to_list() == ["34287.54619963", None]
    assert f.get_column("funding_time").dt.epoch("ms").to_list() == [1570608000000, 1570636800017]
    assert f.get_column("funding_interval_hours").null_count() == 2


def test_metrics_join_five_routes_on_timestamp() -> None:
    t1, t2 = 1583127900000, 1583128200000
    oi = [
        {
            "symbol": "BTCUSDT",
            "sumOpenInterest": "20403.6",
            "sumOpenInterestValue": "150570784.0",
            "timestamp": str(t1),
        },
        {
            "symbol": "BTCUSDT",
            "sumOpenInterest": "20404.0",
            "sumOpenInterestValue": "150570790.0",
            "CMCCirculatingSupply": "19800000",
            "timestamp": t2,
        },
    ]

    def ratio(v: str, t: int | str) -> dict[str, object]:
        return {
            "symbol": "BTCUSDT",
            "longShortRatio": v,
            "longAccount": "0.6",
            "shortAccount": "0.4",
            "timestamp": t,
        }

    taker = [{"buySellRatio": "1.5586", "buyVol": "387.3", "sellVol": "248.5", "timestamp": t2}]
    f = parse_rest_metrics(
        symbol="BTCUSDT",
        batch_id="m",
        open_interest_hist=body(oi),
        top_account_ratio=body([ratio("0.1960", str(t1)), ratio("0.2", t2)]),
        top_position_ratio=[body([ratio("1.1", t1)]), body([ratio("1.2", t2)])],
        global_account_ratio=body([ratio("2.5", t2)]),
        taker_ratio=body(taker),
    )
    assert f.schema == schemas.METRICS.polars_schema()
    assert f.get_column("create_time").dt.epoch("ms").to_list() == [t1, t2]
    first, second = f.rows(named=True)
    assert (
        first["sum_open_interest"] == "20403.6"
        and first["count_toptrader_long_short_ratio"] == "0.1960"
    )
    assert (
        first["count_long_short_ratio"] is None and first["sum_taker_long_short_vol_ratio"] is None
    )
    assert second["sum_toptrader_long_short_ratio"] == "1.2"
    assert second["sum_taker_long_short_vol_ratio"] == "1.5586"
    only_oi = parse_rest_metrics(symbol="BTCUSDT", batch_id="m", open_interest_hist=body(oi))
    assert only_oi.height == 2 and only_oi.get_column("count_long_short_ratio").null_count() == 2


def test_wire_decoders_ignore_unknown_keys_and_are_frozen() -> None:
    pi = wire.PREMIUM_INDEX.decode(
        b'{"symbol":"BTCUSDT","markPrice":"1","indexPrice":"2","estimatedSettlePrice":"3",'
        b'"lastFundingRate":"0.0001","interestRate":"0.0001","nextFundingTime":1,"time":2,"x":0}'
    )
    assert pi.lastFundingRate == "0.0001"
    oi = wire.OPEN_INTEREST.decode(b'{"openInterest":"10659.509","symbol":"BTCUSDT","time":1}')
    with pytest.raises(AttributeError):
        oi.openInterest = "0"  # type: ignore[misc]
    with pytest.raises(msgspec.ValidationError):
        wire.REST_AGG_TRADES.decode(b'[{"a":"x"}]')
