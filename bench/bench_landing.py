"""Landing → bronze: what keeps it fast, each figure against a baseline measured in this run.

* a growing day: 50 symbols landed 30 times into one day's partition (a land a minute, files
  accumulating until the nightly compaction); the last lands against the first ones (a ratio near
  1 means a land costs the same at the end of the day as at its start);
* decoding a stream's chunk in pieces of ``PIECE_FRAMES`` against the whole chunk in one call;
* Delta files with dictionaries only on low-cardinality columns against dictionaries everywhere.

Frames are generated here in the USD-M shapes of BINANCE.md §1.2. Run:
``uv run python -m bench landing``.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench import best_of

if TYPE_CHECKING:
    from lake.capture.segments import Chunk

T0_MS = 1_704_067_200_000  # 2024-01-01, so that 30 lands stay in one day
SYMBOLS = 50
PER_LAND = 400  # aggTrades per symbol per land
LANDS = 30


def _agg(symbol: str, a: int, t_ms: int) -> bytes:
    data = {"e": "aggTrade", "E": t_ms + 1, "s": symbol, "a": a, "p": "42000.1", "q": "0.5"}
    data |= {"f": 3 * a, "l": 3 * a + 2, "T": t_ms, "m": a % 2 == 0}
    return json.dumps({"stream": f"{symbol.lower()}@aggTrade", "data": data}).encode()


def _trade(t: int) -> bytes:
    data = {"e": "trade", "E": T0_MS + t, "T": T0_MS + t, "s": "BTCUSDT", "t": 8_000_000_000 + t}
    data |= {"p": f"{60000 + t % 997 / 10:.2f}", "q": "0.032", "X": "MARKET", "m": t % 2 == 0}
    return json.dumps({"stream": "btcusdt@trade", "data": data}, separators=(",", ":")).encode()


def _trade_chunk(n: int) -> Chunk:
    """A landing chunk of ``n`` btcusdt@trade frames."""
    from lake.capture.segments import Chunk

    frames = [_trade(t) for t in range(n)]
    lengths = np.array([len(f) for f in frames], dtype=np.uint32)
    return Chunk(b"btcusdt@trade", list(range(n)), b"".join(f + b"\n" for f in frames), lengths)


def growing_day(work: Path) -> tuple[list[float], int]:
    """Seconds of each land, and rows landed in all."""
    from lake.capture.land import land_market
    from lake.capture.landing import LandingSink
    from lake.storage import Lake

    lake = Lake(str(work / "lake"))
    lake.create_all()
    landing = work / "landing"
    symbols = [f"S{i:03d}USDT" for i in range(SYMBOLS)]
    took, rows = [], 0
    for k in range(LANDS):
        sink = LandingSink(landing, prefix="um")
        for i, symbol in enumerate(symbols):
            label = f"{symbol.lower()}@aggTrade".encode()
            for a in range(k * PER_LAND, (k + 1) * PER_LAND):
                # each symbol has its own id range; all trade in the same minutes
                sink.append(a, _agg(symbol, i * 10_000_000 + a, T0_MS + a * 150), label=label)
        sink.close()
        t0 = time.perf_counter()
        result = land_market(lake, landing, "um")
        took.append(time.perf_counter() - t0)
        rows += sum(result.rows.values())
    return took, rows


def pieces() -> tuple[float, float, int]:
    """(s whole, s in pieces, frames) for one stream's 75,000-frame chunk."""
    from lake.capture.land import parse_chunks

    chunk = _trade_chunk(75_000)
    whole = best_of(lambda: parse_chunks("um", [chunk], "b", piece_frames=len(chunk)))
    cut = best_of(lambda: parse_chunks("um", [chunk], "b"))
    return whole, cut, len(chunk)


def dictionaries(work: Path) -> tuple[tuple[float, int], tuple[float, int], int]:
    """((s, bytes) with dictionaries everywhere, (s, bytes) as written), rows."""
    from deltalake import WriterProperties, write_deltalake

    from lake.capture.land import parse_chunks
    from lake.schemas import TRADES
    from lake.storage.writes import to_delta_arrow, with_partitions, writer_properties

    chunk = _trade_chunk(200_000)
    data = to_delta_arrow(TRADES, with_partitions(TRADES, parse_chunks("um", [chunk], "b").trades))

    def write(props: WriterProperties, name: str) -> tuple[float, int]:
        target = work / name
        seconds = best_of(
            lambda: write_deltalake(str(target), data, mode="append", writer_properties=props)
        )
        size = sum(p.stat().st_size for p in target.rglob("*.parquet")) // 3
        return seconds, size

    everywhere = write(WriterProperties(compression="ZSTD"), "everywhere")
    chosen = write(writer_properties(TRADES), "chosen")
    return everywhere, chosen, data.num_rows


def main() -> None:
    """Print each measurement with its baseline and the ratio."""
    work = Path(tempfile.mkdtemp(prefix="bench-landing-"))
    try:
        took, rows = growing_day(work)
        first, last = statistics.median(took[1:6]), statistics.median(took[-5:])
        print(
            f"growing day, {SYMBOLS} symbols x {LANDS} lands ({rows:,} rows, "
            f"{rows / sum(took):,.0f} rows/s): a land {first * 1000:.0f} ms early, "
            f"{last * 1000:.0f} ms late in the day: {last / first:.2f}x"
        )
        whole, cut, n = pieces()
        print(
            f"decode one stream's chunk of {n:,} frames: whole {n / whole:,.0f} frames/s, "
            f"in pieces {n / cut:,.0f} frames/s: {whole / cut:.2f}x"
        )
        (t_all, b_all), (t_low, b_low), n = dictionaries(work)
        print(
            f"write {n:,} bronze.trades rows: dictionaries everywhere {t_all:.2f} s "
            f"{b_all / 1e6:.1f} MB; only on low-cardinality columns {t_low:.2f} s "
            f"{b_low / 1e6:.1f} MB: {t_all / t_low:.2f}x faster, {b_all / b_low:.2f}x smaller"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
