"""Live capture against the built-in exchange: faults, kill -9, replay of real recordings.

The exchange's history is read from its own REST routes with plain httpx + json (not through
cryptolake's client or parsers), so a bug shared by capture and the client cannot hide here.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from lake.binance.endpoints import Endpoints
from lake.capture.collector import CapturePlan, CollectSummary, collect
from lake.capture.land import land_market
from lake.exchange.testing import RunningExchange, exchange_factory  # noqa: F401
from lake.schemas import AGG_TRADES, BOOK_TICKER, GAPS, QUARANTINE, TRADES
from lake.settings import Settings, load_settings
from lake.storage import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# Drops hit the spot and /um/market connections every 10 s; on the /um/public connection one
# symbol's bookTicker goes silent while the other's keeps flowing.
FAULTS = (
    "ws.drop:every=10s,route=spot;ws.drop:every=10s,route=um_market;"
    "ws.malformed:p=0.01;ws.duplicate:p=0.01;ws.reorder:p=0.01;"
    "ws.silence:stream=btcusdt@bookTicker,after=15s,times=1"
)


def settings_for(tmp: Path, url: str, **capture: Any) -> Settings:
    cap = {
        "landing_dir": str(tmp / "landing"),
        "segment_rotate_s": 15,
        "land_interval_s": 30,
        "liveness_s": {"bookTicker": 10, "trade": 30, "aggTrade": 30},
    } | capture
    return load_settings(
        overrides={"exchange": url, "storage": {"root": str(tmp / "lake")}, "capture": cap}
    )


def run_collect(settings: Settings, plan: CapturePlan, seconds: float) -> CollectSummary:
    lake = Lake.from_settings(settings)
    lake.create_all()
    endpoints = Endpoints.for_exchange(settings.exchange)
    return asyncio.run(
        collect(
            lake,
            endpoints,
            plan,
            settings.capture,
            landing=settings.landing_path,
            duration_s=seconds,
        )
    )


def exchange_rows(base: str, path: str, symbol: str, lo: int, hi: int, id_key: str) -> list[dict]:
    """Rows with ids lo..hi from the exchange's own REST route, paged by fromId."""
    rows: list[dict[str, Any]] = []
    cursor = lo
    with httpx.Client(base_url=base, timeout=30) as client:
        while cursor <= hi:
            resp = client.get(path, params={"symbol": symbol, "fromId": cursor, "limit": 500})
            assert resp.status_code == 200, resp.text
            page = resp.json()
            assert page, f"exchange has no {path} rows from {cursor}"
            rows += [r for r in page if r[id_key] <= hi]
            cursor = page[-1][id_key] + 1
    return rows


def assert_equals_exchange(lake: Lake, base: str, market: str, symbol: str) -> tuple[int, int]:
    """Bronze agg_trades and trades of (market, symbol) equal the exchange's, id for id."""
    prefix = "/api/v3" if market == "spot" else "/fapi/v1"
    key = (pl.col("market") == market) & (pl.col("symbol") == symbol)
    aggs = lake.read(AGG_TRADES, where=key).sort("agg_trade_id") if market == "um" else None
    counts = []
    if aggs is not None:
        ids = aggs["agg_trade_id"]
        assert ids.len() == ids.n_unique(), "an aggTrade id appears twice"
        lo, hi = ids.min(), ids.max()
        assert ids.to_list() == list(range(lo, hi + 1)), "an aggTrade id is missing"
        want = exchange_rows(base, f"{prefix}/aggTrades", symbol, lo, hi, "a")
        got = aggs.select(
            pl.col("agg_trade_id").alias("a"),
            pl.col("price").alias("p"),
            pl.col("quantity").alias("q"),
            pl.col("first_trade_id").alias("f"),
            pl.col("last_trade_id").alias("l"),
            pl.col("transact_time").dt.epoch("ms").alias("T"),
            pl.col("is_buyer_maker").alias("m"),
        ).to_dicts()
        assert got == [{k: r[k] for k in ("a", "p", "q", "f", "l", "T", "m")} for r in want]
        counts.append(len(got))
    trades = lake.read(TRADES, where=key).sort("trade_id")
    ids = trades["trade_id"]
    assert ids.len() == ids.n_unique(), "a trade id appears twice"
    lo, hi = ids.min(), ids.max()
    assert ids.to_list() == list(range(lo, hi + 1)), "a trade id is missing"
    want = exchange_rows(base, f"{prefix}/historicalTrades", symbol, lo, hi, "id")
    got = trades.select(
        pl.col("trade_id").alias("id"),
        pl.col("price"),
        pl.col("qty"),
        pl.col("trade_time").dt.epoch("ms").alias("time"),
        pl.col("is_buyer_maker").alias("isBuyerMaker"),
    ).to_dicts()
    fields = ("id", "price", "qty", "time", "isBuyerMaker")
    assert got == [{k: r[k] for k in fields} for r in want]
    counts.append(len(got))
    return counts[0], counts[-1]


def test_faults_lose_nothing_and_every_disconnect_is_repaired(
    exchange_factory: Callable[..., RunningExchange],  # noqa: F811
    tmp_path: Path,
) -> None:
    ex = exchange_factory(symbols="BTCUSDT,ETHUSDT", faults=FAULTS)
    settings = settings_for(tmp_path, ex.base_url)
    plan = CapturePlan.from_settings(settings)
    summary = run_collect(settings, plan, 120)
    lake = Lake.from_settings(settings)
    for market in ("spot", "um"):  # `land` after collect: nothing left, nothing changes
        assert land_market(lake, tmp_path / "landing" / market, market).segments == 0

    ex.limiter.reset()  # the checks below are not the collector's: a fresh weight window
    for market in ("spot", "um"):
        for symbol in ("BTCUSDT", "ETHUSDT"):
            n_aggs, n_trades = assert_equals_exchange(lake, ex.base_url, market, symbol)
            assert n_trades > 500 and (market == "spot" or n_aggs > 500)

    last = summary.last
    assert last is not None
    assert last.drops >= 8 * 2  # two connections, each dropped every 10 s for 120 s
    # the silenced bookTicker was recycled (its symbol still trades), a bounded number of times,
    # and nothing had to be written down as silent: every stream flowed again
    assert 1 <= last.recycles <= 6 and last.silent_reports == 0
    gaps = lake.read(GAPS)
    disconnects = gaps.filter(
        (pl.col("kind") == "disconnect") & (pl.col("table_name") == "bronze.agg_trades")
    )
    assert disconnects.height >= 8 * 2  # every drop of the /market connection, per symbol
    repairable = gaps.filter(pl.col("table_name").is_in(["bronze.agg_trades", "bronze.trades"]))
    assert set(repairable["status"]) == {"repaired"}, repairable.filter(
        pl.col("status") != "repaired"
    )
    loss = gaps.filter(pl.col("table_name") == "bronze.book_ticker")
    assert loss.height >= 1 and set(loss["status"]) == {"capture_loss"}
    assert lake.read(QUARANTINE).height > 0  # the malformed frames, kept verbatim


CHILD_ENV = {"DO_NOT_TRACK": "1"}


def test_kill_9_five_times_then_restart_loses_nothing(
    exchange_factory: Callable[..., RunningExchange],  # noqa: F811
    tmp_path: Path,
) -> None:
    ex = exchange_factory(symbols="um:BTCUSDT")
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
        | CHILD_ENV
        | {
            "LAKE_EXCHANGE": ex.base_url,
            "LAKE_STORAGE__ROOT": str(tmp_path / "lake"),
            "LAKE_CAPTURE__LANDING_DIR": str(tmp_path / "landing"),
            "LAKE_CAPTURE__SEGMENT_ROTATE_S": "2",
        }
    )
    cmd = [sys.executable, "-m", "lake.cli", "collect", "--markets", "um", "--symbols", "BTCUSDT"]
    rng = random.Random(5)
    for _ in range(5):
        proc = subprocess.Popen(
            [*cmd, "--json"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        time.sleep(rng.uniform(4.0, 9.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    final = subprocess.run(
        [*cmd, "--duration", "8", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)
    assert report["gaps_left_open"] == 0
    lake = Lake(str(tmp_path / "lake"))
    ex.limiter.reset()  # the checks below are not the collector's: a fresh weight window
    n_aggs, n_trades = assert_equals_exchange(lake, ex.base_url, "um", "BTCUSDT")
    assert n_aggs > 200 and n_trades > 600
    holes = lake.read(GAPS).filter(pl.col("kind") == "id")
    assert holes.height >= 4  # the restarts left holes, and each was filled
    assert set(holes["status"]) == {"repaired"}


def recorded_frames(path: Path) -> tuple[list[bytes], list[str]]:
    """The stream frames of an hftbacktest recording, and the streams in it."""
    frames = []
    with gzip.open(path, "rb") as fh:
        for line in fh:
            frame = line.rstrip(b"\n").split(b" ", 1)[1]
            if frame.startswith(b'{"stream":'):
                frames.append(frame)
    streams = sorted({json.loads(f)["stream"] for f in frames})
    return frames, streams


@pytest.mark.parametrize(
    ("market", "rel"),
    [
        ("um", "hftbacktest/usdm/btcusdt_20240808.gz"),
        ("spot", "hftbacktest/spot/btcusdt_20240808.gz"),
    ],
)
def test_replayed_recordings_land_exactly_as_parsed(
    exchange_factory: Callable[..., RunningExchange],  # noqa: F811
    tmp_path: Path,
    realdata: Path,
    market: str,
    rel: str,
) -> None:
    from lake.binance.parse import parse_ws_frames
    from lake.exchange.replay import Recording

    path = realdata / rel
    frames, streams = recorded_frames(path)
    names = [s.split("@", 1)[1] for s in streams if "@depth" not in s]
    ex = exchange_factory(symbols=f"{market}:BTCUSDT", replay=Recording([path], speed=0))
    settings = settings_for(tmp_path, ex.base_url, liveness_s={})
    plan = CapturePlan({market: ("BTCUSDT",)}, {market: tuple(names)})  # type: ignore[dict-item]
    run_collect(settings, plan, 8)

    direct = parse_ws_frames(market, frames, [0] * len(frames), batch_id="direct")  # type: ignore[arg-type]
    lake = Lake.from_settings(settings)
    ignore = ["ts_recv", "batch_id"]
    for spec, expected in ((TRADES, direct.trades), (BOOK_TICKER, direct.book_ticker)):
        assert expected.height > 1000
        got = lake.read(spec).drop(ignore).sort(spec.merge_keys)
        assert got.equals(expected.drop(ignore).sort(spec.merge_keys)), spec.key
