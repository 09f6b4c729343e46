"""Parse throughput of :func:`lake.binance.parse.parse_ws_frames` and ``parse_vision_csv``.

Frames and CSV are generated here, in the shapes of BINANCE.md §1.2 / §3.2, so the bench needs
nothing from outside. Baselines are measured in the same run: ``json.loads`` with a dict per
message (the seeds' collector), and a bare ``polars.read_csv`` of the same CSV.
"""

from __future__ import annotations

import json
import random
from typing import Any

import polars as pl

from bench import best_of
from lake.binance.parse import parse_vision_csv, parse_ws_frames

N_FRAMES = 200_000
N_CSV_ROWS = 1_000_000
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")


def _um_payload(kind: str, n: int, sym: str, t: int) -> dict[str, Any]:
    price = f"{60000 + (n % 997) / 10:.2f}"
    if kind == "bookTicker":
        return {
            "e": "bookTicker",
            "u": 5_000_000_000 + n,
            "s": sym,
            "b": price,
            "B": "2.507",
            "a": price,
            "A": "0.010",
            "T": t,
            "E": t + 1,
        }
    if kind == "trade":
        return {
            "e": "trade",
            "E": t + 1,
            "T": t,
            "s": sym,
            "t": 5_266_000_000 + n,
            "p": price,
            "q": "0.006",
            "X": "MARKET",
            "m": n % 2 == 0,
        }
    if kind == "aggTrade":
        return {
            "e": "aggTrade",
            "E": t + 1,
            "s": sym,
            "a": 2_000_000_000 + n,
            "p": price,
            "q": "0.100",
            "f": 5_266_000_000 + n,
            "l": 5_266_000_002 + n,
            "T": t,
            "m": n % 3 == 0,
        }
    if kind == "markPrice@1s":
        return {
            "e": "markPriceUpdate",
            "E": t,
            "s": sym,
            "p": price,
            "P": price,
            "i": price,
            "r": "0.00010000",
            "T": 1_723_190_400_000,
        }
    if kind == "kline_1m":
        start = t - t % 60_000
        return {
            "e": "kline",
            "E": t,
            "s": sym,
            "k": {
                "t": start,
                "T": start + 59_999,
                "s": sym,
                "i": "1m",
                "f": 1,
                "L": 9,
                "o": price,
                "c": price,
                "h": price,
                "l": price,
                "v": "12.5",
                "n": 9,
                "x": n % 4 == 0,
                "q": "750000.1",
                "V": "6.1",
                "Q": "366000.2",
                "B": "0",
            },
        }
    return {
        "e": "forceOrder",
        "E": t,
        "o": {
            "s": sym,
            "S": "SELL",
            "o": "LIMIT",
            "f": "IOC",
            "q": "0.014",
            "p": price,
            "ap": price,
            "X": "FILLED",
            "l": "0.014",
            "z": "0.014",
            "T": t,
        },
    }


# Rough live mix of the default USD-M streams: quotes dominate, then trades.
UM_MIX = (
    ("bookTicker", 50),
    ("trade", 20),
    ("aggTrade", 15),
    ("markPrice@1s", 5),
    ("kline_1m", 7),
    ("forceOrder", 3),
)


def make_frames(n: int = N_FRAMES, seed: int = 7) -> tuple[list[bytes], list[int]]:
    """``n`` combined-stream USD-M frames in the mix above, with receive times in ns."""
    rng = random.Random(seed)
    kinds = [k for k, w in UM_MIX for _ in range(w)]
    frames, recv = [], []
    t0 = 1_723_161_256_000
    for i in range(n):
        kind = rng.choice(kinds)
        sym = SYMBOLS[i % len(SYMBOLS)]
        t = t0 + i
        data = _um_payload(kind, i, sym, t)
        wrapped = {"stream": f"{sym.lower()}@{kind}", "data": data}
        frames.append(json.dumps(wrapped, separators=(",", ":")).encode())
        recv.append(t * 1_000_000 + 1_300_000)
    return frames, recv


def baseline_dicts(frames: list[bytes], recv: list[int]) -> dict[str, pl.DataFrame]:
    """The seeds' style: ``json.loads``, one dict per message, ``from_dicts`` per table."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for frame, ns in zip(frames, recv, strict=True):
        msg = json.loads(frame)
        d = msg["data"]
        e = d["e"]
        if e == "kline":
            if not d["k"]["x"]:
                continue
            row = {**d["k"], "E": d["E"]}
        elif e == "forceOrder":
            row = {**d["o"], "E": d["E"]}
        else:
            row = dict(d)
        row["ts_recv"] = ns
        rows.setdefault(e, []).append(row)
    return {e: pl.from_dicts(r) for e, r in rows.items()}


def make_agg_trades_csv(n: int = N_CSV_ROWS) -> bytes:
    header = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
    lines = [header]
    for i in range(n):
        lines.append(
            f"{480_537_903 + i},{79972.8 + (i % 50) / 10:.1f},{1 + i % 9}.0,"
            f"{1_123_474_160 + 3 * i},{1_123_474_162 + 3 * i},{1_778_198_400_020 + i},"
            f"{'true' if i % 2 else 'false'}"
        )
    return ("\n".join(lines) + "\n").encode()


def _ws_rate(frames: list[bytes], recv: list[int], batch: int) -> float:
    """Frames per second parsing ``frames`` in batches of ``batch`` (best of 3 runs)."""

    def run() -> None:
        for a in range(0, len(frames), batch):
            parse_ws_frames("um", frames[a : a + batch], recv[a : a + batch], batch_id="bench")

    return len(frames) / best_of(run)


def with_faults(frames: list[bytes], every: int = 100) -> list[bytes]:
    """Every ``every``-th frame truncated: 1% malformed, as the built-in exchange injects."""
    return [f[: len(f) // 2] if i % every == every - 1 else f for i, f in enumerate(frames)]


def main() -> None:
    frames, recv = make_frames()
    n = len(frames)
    ours = _ws_rate(frames, recv, n)
    base = n / best_of(lambda: baseline_dicts(frames, recv))
    print(f"ws frames  parse_ws_frames  {ours:>12,.0f} frames/s  (USD-M mix, one batch of {n:,})")
    print(f"ws frames  json+dict base   {base:>12,.0f} frames/s  ours/base {ours / base:.1f}x")
    for batch in (1_000, 10_000):
        rate = _ws_rate(frames, recv, batch)
        print(f"ws frames  batches of {batch:>6,} {rate:>12,.0f} frames/s")
    faulty = _ws_rate(with_faults(frames), recv, 10_000)
    print(f"ws frames  1% malformed     {faulty:>12,.0f} frames/s  (batches of 10,000)")

    data = make_agg_trades_csv()
    rows = N_CSV_ROWS

    def ours_csv() -> object:
        return parse_vision_csv(
            data, market="um", dataset="aggTrades", symbol="BTCUSDT", batch_id="bench"
        )

    csv = best_of(ours_csv)
    bare = best_of(lambda: pl.read_csv(data))
    print(f"aggTrades  parse_vision_csv {rows / csv:>12,.0f} rows/s")
    ratio = csv / bare
    print(
        f"aggTrades  bare read_csv    {rows / bare:>12,.0f} rows/s    ours/bare time {ratio:.2f}x"
    )


if __name__ == "__main__":
    main()
