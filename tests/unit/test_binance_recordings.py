"""parse_ws_frames on the real recordings in shared/realdata: exact row counts per table.

Expected counts come from plain ``json`` over the same frames, independently of the parser.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from lake import schemas
from lake.binance.parse import ParsedFrames, parse_ws_frames

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
SPECS = {
    "agg_trades": schemas.AGG_TRADES,
    "trades": schemas.TRADES,
    "book_ticker": schemas.BOOK_TICKER,
    "mark_price": schemas.MARK_PRICE,
    "klines": schemas.KLINES,
    "liquidations": schemas.LIQUIDATIONS,
}


def assert_conformed(parsed: ParsedFrames) -> None:
    for name, spec in SPECS.items():
        frame = getattr(parsed, name)
        assert frame.schema == spec.polars_schema(), name
        spec.conform(frame)


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path} (shared/realdata beside the checkout)")
    return path


def _expected(frames: list[bytes]) -> tuple[dict[str, int], int]:
    """Rows per table and frames ignored, counted with plain json, independently of the parser."""
    table_of = {
        "aggTrade": "agg_trades",
        "trade": "trades",
        "bookTicker": "book_ticker",
        "markPrice": "mark_price",
        "forceOrder": "liquidations",
    }
    rows: Counter[str] = Counter()
    ignored = 0
    for frame in frames:
        msg = json.loads(frame)
        if "stream" not in msg:
            ignored += 1  # REST depth snapshot between the frames
            continue
        name = msg["stream"].split("@", 1)[1]
        base = name.split("@")[0]
        if base.startswith("kline_"):
            if msg["data"]["k"]["x"]:
                rows["klines"] += 1
            else:
                ignored += 1
        elif base in table_of:
            rows[table_of[base]] += 1
        else:
            assert base.startswith("depth"), name
            ignored += 1
    return dict(rows), ignored


def _cryptofeed(name: str) -> tuple[list[bytes], list[int]]:
    frames, recv = [], []
    for line in _need(REALDATA / "cryptofeed" / name).read_bytes().splitlines():
        if not line.strip() or line.startswith(b"wss://"):
            continue  # blank, or the connection header
        ts, _, frame = line.partition(b": ")
        frames.append(frame)
        recv.append(round(float(ts) * 1e9))
    return frames, recv


def _hftbacktest(name: str, unit_ns: int) -> tuple[list[bytes], list[int]]:
    frames, recv = [], []
    with gzip.open(_need(REALDATA / "hftbacktest" / name), "rb") as f:
        for line in f:
            ts, _, frame = line.rstrip(b"\n").partition(b" ")
            frames.append(frame)
            recv.append(int(ts) * unit_ns)
    return frames, recv


@pytest.mark.parametrize(
    ("market", "source", "name", "unit"),
    [
        ("um", "cryptofeed", "BINANCE_FUTURES.ws.1.0", 0),
        ("um", "cryptofeed", "BINANCE_FUTURES.ws.5.0", 0),
        ("spot", "cryptofeed", "BINANCE.ws.1.0", 0),
        ("um", "cryptofeed", "BINANCE_DELIVERY.ws.1.0", 0),  # COIN-M: same shapes plus "ps"
        ("um", "hftbacktest", "usdm/btcusdt_20240808.gz", 1),
        ("um", "hftbacktest", "usdm/btcusdt_20230404.dat.gz", 1000),
        ("spot", "hftbacktest", "spot/btcusdt_20240808.gz", 1),
    ],
)
def test_real_recordings_give_exact_row_counts(
    market: str, source: str, name: str, unit: int
) -> None:
    if source == "cryptofeed":
        frames, recv = _cryptofeed(name)
    else:
        frames, recv = _hftbacktest(name, unit)
    rows, ignored = _expected(frames)
    p = parse_ws_frames(market, frames, recv, batch_id="replay")  # type: ignore[arg-type]
    assert p.rejected == ()
    assert {n: f.height for n, f in p.tables().items()} == rows
    assert p.ignored == ignored
    assert_conformed(p)
    lo, hi = min(recv) // 1000, max(recv) // 1000
    for frame in p.tables().values():
        got = frame.select(
            pl.col("ts_recv").dt.epoch("us").min().alias("lo"),
            pl.col("ts_recv").dt.epoch("us").max().alias("hi"),
        ).row(0)
        assert lo <= got[0] <= got[1] <= hi


def test_real_recordings_documented_counts() -> None:
    frames, recv = _hftbacktest("usdm/btcusdt_20230404.dat.gz", 1000)
    p = parse_ws_frames("um", frames, recv, batch_id="r")
    assert (p.mark_price.height, p.trades.height, p.book_ticker.height) == (99, 2197, 6765)
    # the recording ends just before the 00:00 UTC settlement every frame points at
    nft = p.mark_price.select(pl.col("next_funding_time").unique().dt.epoch("ms")).to_series()
    assert nft.to_list() == [1680652800000]
    frames, recv = _hftbacktest("spot/btcusdt_20240808.gz", 1)
    p = parse_ws_frames("spot", frames, recv, batch_id="r")
    assert (p.trades.height, p.book_ticker.height) == (9757, 28040)
    assert p.book_ticker.select(pl.col("event_time").null_count()).item() == 28040
