"""Capture never writes what did not happen: quiet symbols are not recycled in a loop, and a
repair against an exchange whose clock is hours off the local one fills exactly the hole.

The exchange's history is read from its own REST routes (tests/integration/test_capture.py's
helpers use plain httpx, not cryptolake's client).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from lake.capture.collector import CapturePlan
from lake.exchange.clock import Clock
from lake.exchange.testing import RunningExchange, exchange_factory  # noqa: F401
from lake.schemas import AGG_TRADES, GAPS, TRADES
from lake.storage import Lake
from tests.integration.test_capture import assert_equals_exchange, run_collect, settings_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UM_STREAMS = ("aggTrade", "trade", "markPrice@1s", "kline_1m", "bookTicker", "forceOrder")
QUICK = {"aggTrade": 3, "trade": 3, "markPrice@1s": 3, "kline_1m": 3, "bookTicker": 3}


def test_a_halted_and_a_silent_symbol_cause_no_recycle_loop(
    exchange_factory: Callable[..., RunningExchange],  # noqa: F811
    tmp_path: Path,
) -> None:
    # ETHUSDT stops trading 8 s in; SOLUSDT never trades at all; BTCUSDT trades throughout
    ex = exchange_factory(
        symbols="um:BTCUSDT,um:ETHUSDT,um:SOLUSDT",
        faults="ws.halt:symbol=ETHUSDT,after=8s;ws.halt:symbol=SOLUSDT",
    )
    settings = settings_for(tmp_path, ex.base_url, liveness_s=QUICK)
    plan = CapturePlan({"um": ("BTCUSDT", "ETHUSDT", "SOLUSDT")}, {"um": UM_STREAMS})
    summary = run_collect(settings, plan, 35)

    last = summary.last
    assert last is not None
    assert ex.stats.ws_connections == 2  # /public and /market, opened once each
    assert (last.connects, last.recycles, last.drops) == (2, 0, 0)

    lake = Lake.from_settings(settings)
    silent = lake.read(GAPS).filter(pl.col("kind") == "silent")
    assert set(silent["status"]) == {"capture_loss"}
    per_stream = silent.group_by("symbol", "table_name").len()
    assert per_stream["len"].to_list() == [1] * per_stream.height  # once per stream
    tables = {"bronze.agg_trades", "bronze.trades", "bronze.mark_price", "bronze.klines"}
    tables.add("bronze.book_ticker")
    for symbol, reason in (("ETHUSDT", "symbol quiet"), ("SOLUSDT", "never delivered")):
        rows = silent.filter(pl.col("symbol") == symbol)
        assert set(rows["table_name"]) == tables, symbol
        assert all(reason in d for d in rows["detail"]), rows["detail"].to_list()
    assert silent.filter(pl.col("symbol") == "BTCUSDT").height == 0
    # ETHUSDT's rows stop where the halt began, and nothing is invented after it
    eth = lake.read(AGG_TRADES, where=pl.col("symbol") == "ETHUSDT")
    assert eth.height > 50 and set(eth["source"]) == {"ws"}
    ex.limiter.reset()
    assert_equals_exchange(lake, ex.base_url, "um", "BTCUSDT")


@pytest.mark.parametrize("offset_h", [-5, 7])
def test_a_repair_against_an_exchange_clock_hours_off_fills_exactly_the_hole(
    exchange_factory: Callable[..., RunningExchange],  # noqa: F811
    tmp_path: Path,
    offset_h: int,
) -> None:
    start = int((time.time() + offset_h * 3600) * 1000)
    ex = exchange_factory(
        symbols="um:BTCUSDT",
        clock=Clock(start, 1.0),
        faults="ws.drop:every=6s,route=um_market",
    )
    settings = settings_for(tmp_path, ex.base_url, liveness_s={})
    plan = CapturePlan({"um": ("BTCUSDT",)}, {"um": ("aggTrade", "trade", "kline_1m")})
    summary = run_collect(settings, plan, 26)
    assert summary.last is not None and summary.last.drops >= 3
    assert summary.last.clock_offset_s is not None  # latency is not shown as hours

    lake = Lake.from_settings(settings)
    gaps = lake.read(GAPS)
    repairable = gaps.filter(pl.col("table_name").is_in(["bronze.agg_trades", "bronze.trades"]))
    assert repairable.filter(pl.col("kind") == "disconnect").height >= 3
    assert set(repairable["status"]) == {"repaired"}, repairable
    # every window is in the exchange's time, not the collector's
    captured = lake.read(AGG_TRADES, where=pl.col("source") == "ws")
    lo, hi = captured["transact_time"].min(), captured["event_time"].max()
    windows = gaps.filter(pl.col("kind") == "disconnect")
    assert windows["start_time"].min() >= lo and windows["end_time"].max() <= hi

    ex.limiter.reset()
    assert_equals_exchange(lake, ex.base_url, "um", "BTCUSDT")
    # nothing beyond what the exchange had said when the capture ended
    for spec, time_col in ((AGG_TRADES, "transact_time"), (TRADES, "trade_time")):
        filled = lake.read(spec, where=pl.col("source") == "rest")
        if filled.height:
            assert filled[time_col].max() <= hi, spec.key
