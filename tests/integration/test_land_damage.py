"""Damaged landing segments and processes that land at once.

A segment with a flipped byte or a torn tail lands every readable frame; what cannot be read is
quarantined with its offset, recorded as ``damaged`` gaps for the streams it held, reported, and
the segment is moved to ``damaged/``: the lake equals the frames written minus exactly what was
recorded as lost. Two ``land`` processes at once both end cleanly and land each segment once; a
landing directory that is a file is refused before anything is written.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from lake.capture.land import land_market
from lake.capture.landing import LandingSink
from lake.capture.lock import landing_lock
from lake.capture.segments import closed_segments
from lake.schemas import AGG_TRADES, BOOK_TICKER, GAPS, QUARANTINE
from lake.storage import Lake

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
T0_MS = 1_704_067_200_000  # 2024-01-01
BTC_AGG, BOOK, ETH_AGG = b"btcusdt@aggTrade", b"btcusdt@bookTicker", b"ethusdt@aggTrade"
PER_FLUSH = {BTC_AGG: 5, BOOK: 4, ETH_AGG: 3}  # frames of each stream per flush, in this order
FLUSHES = 6


def time_of(label: bytes, n: int) -> int:
    """The exchange time of frame ``n`` of a stream (trade time, or book transaction time)."""
    return T0_MS + n * 10 + {BTC_AGG: 0, BOOK: 5, ETH_AGG: 3}[label]


def frame(label: bytes, n: int) -> bytes:
    symbol = label.split(b"@")[0].decode().upper()
    if label == BOOK:
        data: dict[str, object] = {"e": "bookTicker", "u": n, "s": symbol, "b": "42000.0"}
        data |= {"B": "1.5", "a": "42000.1", "A": "2.5", "T": time_of(label, n)}
        data["E"] = time_of(label, n) + 1
    else:
        data = {"e": "aggTrade", "E": time_of(label, n) + 1, "s": symbol, "a": n, "p": "42000.1"}
        data |= {"q": "0.5", "f": 3 * n, "l": 3 * n + 2, "T": time_of(label, n), "m": n % 2 == 0}
    return json.dumps({"stream": label.decode(), "data": data}).encode()


@dataclass(frozen=True)
class WrittenChunk:
    start: int  # byte offset of its header in the segment
    end: int
    label: bytes
    numbers: list[int]  # the ids of its frames (aggTrade a, bookTicker u)


def write_segment(landing: Path, *, first: int = 0) -> tuple[Path, list[WrittenChunk]]:
    """One segment of ``FLUSHES`` flushes, as the collector writes it, and where each of its
    chunks lies (read from the chunk headers, not by the reader under test)."""
    sink = LandingSink(landing, prefix="um")
    expected: list[tuple[bytes, list[int]]] = []
    for f in range(first, first + FLUSHES):
        for label, per in PER_FLUSH.items():
            numbers = list(range(f * per, (f + 1) * per))
            for n in numbers:
                sink.buffer(label).add(1_000 + n, frame(label, n))
            expected.append((label, numbers))
        sink.flush()
    (path,) = sink.close()
    data, chunks, pos = path.read_bytes(), [], 0
    for label, numbers in expected:
        end = pos + 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")
        n = int.from_bytes(data[pos + 16 : pos + 18], "little")
        assert data[pos + 18 : pos + 18 + n] == label
        chunks.append(WrittenChunk(pos, end, label, numbers))
        pos = end
    assert pos == len(data)
    return path, chunks


def ids(lake: Lake, label: bytes) -> list[int]:
    symbol = label.split(b"@")[0].decode().upper()
    if label == BOOK:
        rows = lake.read(BOOK_TICKER, where=pl.col("symbol") == symbol)
        return sorted(rows["update_id"].to_list())
    return sorted(lake.read(AGG_TRADES, where=pl.col("symbol") == symbol)["agg_trade_id"])


def quarantined(lake: Lake, damaged: Path) -> list[tuple[int, int]]:
    """The byte ranges quarantined, each checked against the damaged segment's bytes."""
    rows = lake.read(QUARANTINE).sort("record_id")
    data, ranges = damaged.read_bytes(), []
    for reason, payload in rows.select("reason", "payload").iter_rows():
        match = re.search(rf"segment {damaged.name} at byte (\d+):", reason)
        assert match and "base64" in reason, reason
        raw = base64.b64decode(payload)
        offset = int(match.group(1))
        assert raw == data[offset : offset + len(raw)]  # reversible: the bytes as on disk
        ranges.append((offset, offset + len(raw)))
    return sorted(ranges)


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def index_of(flush: int, label: bytes) -> int:
    """Where the chunk of ``label`` from flush ``flush`` lies among a segment's chunks."""
    return flush * len(PER_FLUSH) + list(PER_FLUSH).index(label)


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("start", id="at-the-start-of-the-lakes-first-data"),
        pytest.param("middle", id="in-the-middle"),
        pytest.param("truncated", id="torn-tail"),
    ],
)
def test_a_damaged_segment_lands_all_it_can_and_records_the_rest(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    landing = tmp_path / "landing" / "um"
    path, chunks = write_segment(landing)
    data = bytearray(path.read_bytes())
    if where == "start":  # the first chunk's magic: its header, label included, is unreadable
        hit = 0
        data[0] ^= 0xFF
    elif where == "middle":  # a byte among the frames of flush 2's bookTicker chunk
        hit = index_of(2, BOOK)
        data[chunks[hit].end - 3] ^= 0xFF
    else:  # torn inside the last chunk's frames (flush 5's ethusdt@aggTrade)
        hit = len(chunks) - 1
        assert chunks[hit].label == ETH_AGG
        del data[chunks[hit].start + 80 :]
    path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="cryptolake.land"):
        result = land_market(lake, landing, "um")

    # moved aside as damaged, reported once, never counted as landed
    damaged = landing / "damaged" / path.name
    assert damaged.exists() and closed_segments(landing) == [] and result.segments == 0
    assert not (landing / "landed").exists()
    assert [d.segment for d in result.damaged] == [path.name]
    assert result.as_dict()["damaged"] == [d.as_dict() for d in result.damaged]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and path.name in warnings[0].getMessage()

    # what was quarantined is exactly the hit chunk's bytes (to the end of the file when torn)
    ranges = quarantined(lake, damaged)
    assert ranges == [(chunks[hit].start, min(chunks[hit].end, len(data)))]
    lost = [c for c in chunks if any(lo <= c.start < hi for lo, hi in ranges)]
    assert lost == [chunks[hit]]
    # the lake equals what was written minus exactly what was recorded as lost
    for label in PER_FLUSH:
        written = [n for c in chunks if c.label == label for n in c.numbers]
        gone = {n for c in lost if c.label == label for n in c.numbers}
        assert ids(lake, label) == [n for n in written if n not in gone]
    assert result.frames == sum(len(c.numbers) for c in chunks) - len(chunks[hit].numbers)

    gaps = lake.read(GAPS).sort("table_name", "symbol")
    assert set(gaps["kind"]) == {"damaged"}
    got = {
        (r["table_name"], r["symbol"]): (r["status"], r["start_id"], r["start_time"], r["end_time"])
        for r in gaps.iter_rows(named=True)
    }
    assert all(path.name in d for d in gaps["detail"])
    if where == "start":
        # the lake's first data: nothing was held before it, so nothing can be refilled, but every
        # stream the segment carries is recorded, where its first frame after the damage lies
        assert got == {
            ("bronze.agg_trades", "BTCUSDT"): (
                "capture_loss",
                None,
                *[at(time_of(BTC_AGG, 5))] * 2,
            ),
            ("bronze.agg_trades", "ETHUSDT"): (
                "capture_loss",
                None,
                *[at(time_of(ETH_AGG, 0))] * 2,
            ),
            ("bronze.book_ticker", "BTCUSDT"): ("capture_loss", None, *[at(time_of(BOOK, 0))] * 2),
        }
    elif where == "middle":
        # the chunk's own label still reads: only bookTicker lost, from its last frame held
        # before to its first frame after (exchange times, never the local clock)
        assert got == {
            ("bronze.book_ticker", "BTCUSDT"): (
                "capture_loss",
                None,
                at(time_of(BOOK, 7)),
                at(time_of(BOOK, 12)),
            )
        }
    else:
        # a trade stream REST can refill: open, from the id after the last one held, to as far
        # as anything held before the torn chunk reached
        assert got == {
            ("bronze.agg_trades", "ETHUSDT"): (
                "open",
                15,
                at(time_of(ETH_AGG, 14)),
                at(time_of(BTC_AGG, 29)),
            )
        }

    # landing the same damaged segment again (a crash before it was moved) changes nothing
    versions = {t: lake.open(t).version() for t in (AGG_TRADES, BOOK_TICKER, GAPS, QUARANTINE)}
    os.replace(damaged, path)
    again = land_market(lake, landing, "um")
    assert [d.segment for d in again.damaged] == [path.name]
    assert {t: lake.open(t).version() for t in versions} == versions


def test_a_damaged_chunk_is_bounded_by_the_segment_landed_before_it(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    landing = tmp_path / "landing" / "um"
    write_segment(landing)
    land_market(lake, landing, "um")  # flushes 0..5, moved to landed/
    path, _ = write_segment(landing, first=FLUSHES)  # flushes 6..11
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF  # the new segment's first chunk (btcusdt@aggTrade 30..34) loses its header
    path.write_bytes(bytes(data))

    result = land_market(lake, landing, "um")
    assert [d.segment for d in result.damaged] == [path.name]
    assert ids(lake, BTC_AGG) == [n for n in range(60) if not 30 <= n < 35]
    damaged = lake.read(GAPS).filter(pl.col("kind") == "damaged").sort("table_name", "symbol")
    rows = damaged.select("table_name", "symbol", "status", "start_id").rows()
    # every stream of the segment, each from its last frame in the segment landed before
    assert rows == [
        ("bronze.agg_trades", "BTCUSDT", "open", 30),
        ("bronze.agg_trades", "ETHUSDT", "open", 18),
        ("bronze.book_ticker", "BTCUSDT", "capture_loss", None),
    ]
    assert damaged["start_time"].to_list() == [
        at(time_of(BTC_AGG, 29)),
        at(time_of(ETH_AGG, 17)),
        at(time_of(BOOK, 23)),
    ]
    # the id scan on bronze finds the same hole, which REST can fill
    holes = lake.read(GAPS).filter(pl.col("kind") == "id")
    assert holes.select("symbol", "start_id", "end_id").rows() == [("BTCUSDT", 30, 34)]


def test_a_stream_with_no_exchange_time_is_bounded_by_the_collectors_clock_and_says_so(
    tmp_path: Path,
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    landing = tmp_path / "landing" / "spot"
    sink = LandingSink(landing, prefix="spot")
    for f in range(4):  # spot bookTicker frames carry no event or transaction time
        for n in range(4 * f, 4 * f + 4):
            data = {"u": n, "s": "BTCUSDT", "b": "1.0", "B": "2", "a": "1.1", "A": "3"}
            sink.buffer(BOOK).add(
                (T0_MS + n) * 1_000_000,
                json.dumps({"stream": BOOK.decode(), "data": data}).encode(),
            )
        sink.flush()
    (path,) = sink.close()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the second or third chunk
    path.write_bytes(bytes(data))

    result = land_market(lake, landing, "spot")
    (damage,) = result.damaged
    gone = set(range(16)) - set(ids(lake, BOOK))
    assert len(gone) == 4 and damage.frames == 12
    gap = lake.read(GAPS).row(0, named=True)
    assert (gap["table_name"], gap["kind"], gap["status"]) == (
        "bronze.book_ticker",
        "damaged",
        "capture_loss",
    )
    assert gap["detail"].endswith("(local clock)")  # receive times, said so
    assert gap["start_time"] == at(T0_MS + min(gone) - 1)
    assert gap["end_time"] == at(T0_MS + max(gone) + 1)


def test_open_damaged_gaps_are_filled_by_rest_inside_their_window(tmp_path: Path) -> None:
    import asyncio

    import httpx
    import respx

    from lake.binance.endpoints import Endpoints
    from lake.binance.rest import RestClient, RetryPolicy
    from lake.capture.repair import RepairResult, repair_open_gaps

    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    landing = tmp_path / "landing" / "um"
    write_segment(landing)
    land_market(lake, landing, "um")
    path, _ = write_segment(landing, first=FLUSHES)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF  # btcusdt@aggTrade 30..34 lost
    path.write_bytes(bytes(data))
    land_market(lake, landing, "um")

    def agg_trades(request: httpx.Request) -> httpx.Response:  # the exchange's history
        label = ETH_AGG if request.url.params["symbol"] == "ETHUSDT" else BTC_AGG
        start = int(request.url.params["fromId"])
        rows = []
        for n in range(start, min(start + 10, 12 * PER_FLUSH[label])):
            d = json.loads(frame(label, n))["data"]
            rows.append({k: d[k] for k in ("a", "p", "q", "f", "l", "T", "m")})
        return httpx.Response(200, json=rows)

    base = "http://127.0.0.1:9"
    with respx.mock:
        respx.get(f"{base}/fapi/v1/aggTrades").mock(side_effect=agg_trades)

        async def repair() -> RepairResult:
            async with RestClient(Endpoints.for_exchange(base), retry=RetryPolicy(1)) as client:
                return await repair_open_gaps(lake, client)

        result = asyncio.run(repair())
    assert result.errors == [] and result.left_open == 0
    assert ids(lake, BTC_AGG) == list(range(60))  # the lost frames, refilled
    gaps = lake.read(GAPS).filter(pl.col("table_name") == "bronze.agg_trades")
    assert sorted(gaps.select("symbol", "kind", "status").rows()) == [
        ("BTCUSDT", "damaged", "repaired"),
        ("BTCUSDT", "id", "repaired"),
        ("ETHUSDT", "damaged", "repaired"),  # nothing of it was lost after all
    ]


# --- the land command -----------------------------------------------------------------------


def env_for(root: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")} | {
        "DO_NOT_TRACK": "1",
        "LAKE_STORAGE__ROOT": str(root),
    }


def land_cli(*args: str, root: Path) -> tuple[int, str, str]:
    """``cryptolake land`` in this process (an interpreter per call costs seconds)."""
    from typer.testing import CliRunner

    from lake.cli import app

    r = CliRunner().invoke(app, ["--lake", str(root), "land", "--no-repair", *args])
    return r.exit_code, r.stdout, r.stderr


def files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def test_land_reports_a_damaged_segment_in_one_line_and_in_its_json(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    path, chunks = write_segment(root / "_landing" / "um")
    data = bytearray(path.read_bytes())
    data[chunks[index_of(2, BOOK)].end - 3] ^= 0xFF
    path.write_bytes(bytes(data))
    code, out, err = land_cli("--markets", "um", "--json", root=root)
    assert code == 0, err
    assert err.count("\n") == 1 and err.startswith("warning: damaged landing segment ")
    assert path.name in err and "btcusdt@bookTicker" in err
    (damage,) = json.loads(out)["landed"]["um"]["damaged"]
    hit = chunks[index_of(2, BOOK)]
    assert damage["segment"] == path.name
    assert damage["stretches"] == [
        {
            "offset": hit.start,
            "bytes": hit.end - hit.start,
            "why": "corrupt",
            "streams": ["btcusdt@bookTicker"],
        }
    ]


def test_a_landing_directory_that_is_a_file_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    root = tmp_path / "lake"
    (root / "_landing").mkdir(parents=True)
    (root / "_landing" / "um").write_text("not a directory")
    before = files(root)
    code, out, err = land_cli("--markets", "spot,um", root=root)
    assert code == 2 and out == ""
    assert err.startswith("error: the landing directory ") and err.count("\n") == 1, err
    assert "_landing/um is a file" in err
    assert files(root) == before  # no table, no lock, nothing

    (root / "_landing" / "um").unlink()
    (root / "_landing").rmdir()
    (root / "_landing").write_text("a file where the landing root belongs")
    code, _, err = land_cli("--markets", "um", root=root)
    assert code == 2 and err.count("\n") == 1 and "is a file" in err, err
    assert files(root) == {Path("_landing")}


def test_an_empty_landing_directory_lands_nothing_and_adds_nothing(tmp_path: Path) -> None:
    bare, empty = tmp_path / "bare", tmp_path / "empty"
    (empty / "_landing" / "um").mkdir(parents=True)
    before = files(empty)
    assert land_cli("--markets", "spot,um", root=bare)[0] == 0  # no landing directory at all
    assert not (bare / "_landing").exists()  # none is made
    code, out, err = land_cli("--markets", "spot,um", "--json", root=empty)
    assert code == 0 and err == "", err
    landed = json.loads(out)["landed"]
    assert landed["um"] == landed["spot"] and landed["um"]["segments"] == 0
    # what land always does: the tables, and the lock of a landing directory that exists
    assert files(empty) - before == files(bare) | {Path("_landing/um/.collector.lock")}
    again = files(empty)
    assert land_cli("--markets", "spot,um", root=empty)[0] == 0
    assert files(empty) == again  # and nothing more the second time


def test_two_lands_at_once_both_end_cleanly_and_land_each_segment_once(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    Lake(str(root)).create_all()  # the tables a collect made
    landing = root / "_landing" / "um"
    sink = LandingSink(landing, prefix="um", max_segment_bytes=20_000)
    for n in range(3_000):
        sink.buffer(BTC_AGG).add(1_000 + n, frame(BTC_AGG, n))
        if n % 100 == 99:
            sink.flush()
    segments = sink.close()
    assert len(segments) > 10
    cmd = [sys.executable, "-m", "lake.cli", "land", "--markets", "um", "--no-repair", "--json"]
    procs = [
        subprocess.Popen(
            cmd, cwd=REPO, env=env_for(root), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    landed = 0
    for proc, (out, err) in zip(procs, outs, strict=True):
        text = err.decode()
        assert "Traceback" not in text, text
        if proc.returncode == 0:
            landed += json.loads(out)["landed"]["um"]["segments"]
        else:  # kept out: one line saying so
            assert proc.returncode == 1 and text.count("\n") == 1, text
            assert text.startswith("error: the landing directory ") and "busy" in text
    assert landed == len(segments)  # each segment landed by exactly one of them
    assert sorted(p.name for p in (landing / "landed").iterdir()) == sorted(
        p.name for p in segments
    )
    lake = Lake(str(root))
    assert ids(lake, BTC_AGG) == list(range(3_000))
    assert lake.read(AGG_TRADES)["batch_id"].n_unique() == 1  # one unit, committed once


def test_a_land_kept_out_by_a_busy_landing_directory_says_so_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    landing = root / "_landing" / "um"
    write_segment(landing)
    with landing_lock(landing, holder="collect"):
        code, out, err = land_cli("--markets", "um", "--wait", "0.3", root=root)
    assert code == 1 and out == ""
    assert err == (
        f"error: the landing directory {landing} is busy: collect (pid {os.getpid()}) is using "
        "it (waited 0.3 s); try again when it has finished\n"
    )
    assert len(closed_segments(landing)) == 1  # nothing landed
    code, _, err = land_cli("--markets", "um", root=root)  # free again
    assert code == 0 and closed_segments(landing) == [], err
