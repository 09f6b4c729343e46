"""Every real recording, replayed and captured as a user would (the CLI, the default stream list):
bronze holds exactly the recording's rows, and nothing the recording does not hold.

Expected rows come from a parse written here (json, no cryptolake parser), so a bug shared by
capture and the parsers cannot hide.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lake.exchange.replay import Recording
from lake.exchange.testing import RunningExchange, exchange_factory  # noqa: F401
from lake.schemas import AGG_TRADES, BOOK_TICKER, GAPS, MARK_PRICE, TRADES
from lake.settings import load_settings
from lake.storage import Lake
from tests.exchange_helpers import realdata

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DURATION_S = 6

RECORDINGS = [
    ("hftbacktest", "usdm", "btcusdt_20240808.gz"),
    ("hftbacktest", "usdm", "btcusdt_20230404.dat.gz"),
    ("hftbacktest", "spot", "btcusdt_20240808.gz"),
    ("cryptofeed", "BINANCE_FUTURES.ws.1.0"),
    ("cryptofeed", "BINANCE_FUTURES.ws.5.0"),
    ("cryptofeed", "BINANCE.ws.1.0"),
]


def recorded(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """The market and the stream frames (``{"stream", "data"}``) of a recording, in file order."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    lines = raw.split(b"\n")
    if b" <-> " in lines[0]:  # cryptofeed: a URL header, then "<ts>: <frame>"
        market = "um" if b"fstream" in lines[0] else "spot"
        frames = [line.partition(b": ")[2] for line in lines[1:]]
    else:  # hftbacktest: "<ts> <frame>"
        market = "spot" if "spot" in path.parts else "um"
        frames = [line.partition(b" ")[2] for line in lines]
    return market, [json.loads(f) for f in frames if f.startswith(b'{"stream"')]


def expected(frames: list[dict[str, Any]], streams: list[str]) -> dict[str, set[tuple[Any, ...]]]:
    """Rows per bronze table, as tuples of the columns compared, for the streams captured."""
    out: dict[str, set[tuple[Any, ...]]] = {t: set() for t in ("trades", "aggs", "book", "mark")}
    for f in frames:
        name = f["stream"].split("@", 1)[1]
        if name not in streams:
            continue
        d = f["data"]
        if name == "trade":
            out["trades"].add((d["s"], d["t"], d["p"], d["q"], d["T"], d["m"]))
        elif name == "aggTrade":
            out["aggs"].add((d["s"], d["a"], d["p"], d["q"], d["f"], d["l"], d["T"], d["m"]))
        elif name == "bookTicker":
            out["book"].add((d["s"], d["u"], d["b"], d["B"], d["a"], d["A"]))
        elif name.startswith("markPrice"):
            out["mark"].add((d["s"], d["E"], d["p"], d["i"], d["P"], d["r"]))
    return out


def stored(lake: Lake) -> dict[str, set[tuple[Any, ...]]]:
    def rows(spec: Any, cols: list[Any]) -> set[tuple[Any, ...]]:
        return set(lake.read(spec).select(cols).rows())

    return {
        "trades": rows(
            TRADES,
            [
                "symbol",
                "trade_id",
                "price",
                "qty",
                pl.col("trade_time").dt.epoch("ms"),
                "is_buyer_maker",
            ],
        ),
        "aggs": rows(
            AGG_TRADES,
            [
                "symbol",
                "agg_trade_id",
                "price",
                "quantity",
                "first_trade_id",
                "last_trade_id",
                pl.col("transact_time").dt.epoch("ms"),
                "is_buyer_maker",
            ],
        ),
        "book": rows(
            BOOK_TICKER, ["symbol", "update_id", "bid_price", "bid_qty", "ask_price", "ask_qty"]
        ),
        "mark": rows(
            MARK_PRICE,
            [
                "symbol",
                pl.col("event_time").dt.epoch("ms"),
                "mark_price",
                "index_price",
                "estimated_settle_price",
                "funding_rate",
            ],
        ),
    }


def cli(
    args: list[str], env: dict[str, str], cwd: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "lake.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return proc, time.monotonic() - started


@pytest.mark.parametrize("parts", RECORDINGS, ids=lambda p: p[-1])
def test_a_replayed_recording_lands_exactly_what_it_holds(
    exchange_factory: Callable[..., RunningExchange],  # noqa: F811
    tmp_path: Path,
    parts: tuple[str, ...],
) -> None:
    path = realdata(*parts)
    market, frames = recorded(path)
    symbols = sorted({f["data"]["s"] for f in frames})
    streams = list(load_settings().markets.get(market).streams)  # the default stream list
    want = expected(frames, streams)

    ex = exchange_factory(symbols=f"{market}:BTCUSDT", replay=Recording([path], speed=0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")} | {
        "DO_NOT_TRACK": "1",
        "LAKE_EXCHANGE": ex.base_url,
        "LAKE_STORAGE__ROOT": str(tmp_path / "lake"),
    }
    args = ["--markets", market, "--symbols", ",".join(symbols), "--json"]
    collect, took = cli(["collect", *args, "--duration", str(DURATION_S)], env, REPO)
    assert collect.returncode == 0, collect.stderr
    assert took < DURATION_S + 15, f"collect --duration {DURATION_S} took {took:.1f} s"
    report = json.loads(collect.stdout)
    # landed from another working directory: the same segments are found next to the lake
    other = tmp_path / "elsewhere"
    other.mkdir()
    for _ in range(2):
        land, took = cli(["land", "--markets", market, "--json"], env, other)
        assert land.returncode == 0, land.stderr
        assert took < 15, f"land with nothing new took {took:.1f} s"
        assert json.loads(land.stdout)["rows_stored"] == 0

    lake = Lake(str(tmp_path / "lake"))
    got = stored(lake)
    for table, rows in want.items():
        assert got[table] == rows, (table, len(got[table]), len(rows))
    assert sum(len(r) for r in want.values()) > 0
    # the summary counts rows newly stored, not frames (a replay re-sent is received, not stored)
    new = report["landed"][market]["stored"]
    names = {"trades": "trades", "aggs": "agg_trades", "book": "book_ticker", "mark": "mark_price"}
    assert {k: new.get(t, 0) for k, t in names.items()} == {k: len(r) for k, r in want.items()}
    assert report["rows_stored"] == sum(new.values())
    assert report["frames_received"] >= report["rows_stored"]
    timed = market == "um" or want["trades"]  # spot bookTicker frames carry no event time
    if timed:  # the recording is years behind the local clock: no latency of years shown
        assert report["exchange_clock_offset_s"] > 86_400
    assert all(s["latency_ms"] is None for s in report["streams"])

    gaps = lake.read(GAPS)
    assert gaps.filter(pl.col("status") == "open").height == 0, gaps
