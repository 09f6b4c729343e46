"""Live capture throughput against the built-in exchange, every figure measured in this run.

The exchange runs in its own process with its clock at 50,000x, so more events are always due
than any client can take (its send ceiling is measured by ``bench_exchange``). Each client runs
in a fresh process for the same window, on the other core:

* receive-only ceilings: an aiohttp client and a websockets client that only count messages;
* the seeds' collector style: websockets, ``json.loads``, a dict per message, one JSON line
  written per message (the design documents' collector);
* cryptolake's collector hot path: receive → landing sink → fsynced segments (durable);
* landing → bronze: the segments just written, parsed and merged into Delta.

End to end (receive → parse → durable bronze) is the hot path and landing taken together on one
core: messages / (CPU seconds of the hot path + CPU seconds, all threads, of landing them).
Run: ``make bench`` or ``uv run python -m bench capture``.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

STREAMS = "/um/market/stream?streams=btcusdt@aggTrade/btcusdt@trade"
WARMUP_S = 1.5
MEASURE_S = 5.0
TARGET_E2E = 100_000.0
TARGET_LAND = 500_000.0


async def _count_aiohttp(url: str) -> tuple[int, float, float]:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.ws_connect(url, max_msg_size=0) as ws:
        return await _measure(ws.receive, lambda m: m.type == aiohttp.WSMsgType.TEXT)


async def _count_websockets(url: str) -> tuple[int, float, float]:
    import websockets

    async with websockets.connect(url, compression=None, max_size=None, max_queue=None) as ws:
        return await _measure(ws.recv, lambda m: True)


async def _seeds_style(url: str, out_dir: str) -> tuple[int, float, float]:
    """The design documents' collector: json.loads, dict per message, one JSON line each."""
    import json

    import websockets

    # the seeds collector opens its file like this, blocking call and all
    fp = open(os.path.join(out_dir, "seeds.jsonl"), "a", encoding="utf-8")  # noqa: SIM115, ASYNC230

    def handle(raw: Any) -> bool:
        msg = json.loads(raw)
        data = msg.get("data", msg)
        rec = {
            "symbol": str(data.get("s", "")).upper(),
            "ts_event": int(data.get("E") or data.get("T") or 0),
            "ts_recv": int(time.time() * 1000),
            "price": float(data["p"]) if "p" in data else None,
            "qty": float(data["q"]) if "q" in data else None,
            "side": "sell" if data.get("m") else "buy",
            "stream": msg.get("stream"),
        }
        fp.write(json.dumps(rec, separators=(",", ":")) + "\n")
        return True

    try:
        async with websockets.connect(url, compression=None, max_size=None) as ws:
            return await _measure(ws.recv, handle)
    finally:
        fp.close()


async def _cryptolake(url: str, out_dir: str) -> tuple[int, float, float]:
    """cryptolake's hot path: StreamConnection → LandingSink, flushed (fsynced) every second."""
    import aiohttp

    from lake.binance.endpoints import WsConnection
    from lake.binance.ws import StreamConnection
    from lake.capture.landing import LandingSink

    sink = LandingSink(Path(out_dir), prefix="um", rotate_s=3600)
    plan = WsConnection("um_market", url, ("btcusdt@aggTrade", "btcusdt@trade"))
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        conn = StreamConnection(plan, session, sink)
        task = asyncio.create_task(conn.run(stop))

        async def flusher() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.25)
                sink.flush()

        flush_task = asyncio.create_task(flusher())
        await asyncio.sleep(WARMUP_S)
        sink.flush()
        n0, t0, c0 = sink.stats.frames + _pending(sink), time.perf_counter(), time.process_time()
        await asyncio.sleep(MEASURE_S)
        n1, t1, c1 = sink.stats.frames + _pending(sink), time.perf_counter(), time.process_time()
        stop.set()
        await task
        await flush_task
    await asyncio.to_thread(sink.close)
    return n1 - n0, t1 - t0, c1 - c0


def _pending(sink: Any) -> int:
    return int(sink.pending)


async def _measure(receive: Any, handle: Any) -> tuple[int, float, float]:
    """Count handled messages over the window after the warm-up: (n, wall s, cpu s)."""
    n = 0
    start = time.perf_counter()
    n0 = t0 = c0 = None
    while True:
        msg = await receive()
        if not handle(msg):
            break
        n += 1
        if n & 1023 == 0:
            now = time.perf_counter()
            if t0 is None and now - start >= WARMUP_S:
                n0, t0, c0 = n, now, time.process_time()
            elif t0 is not None and now - t0 >= MEASURE_S:
                assert n0 is not None and c0 is not None
                return n - n0, now - t0, time.process_time() - c0
    raise RuntimeError("stream ended before the window closed")


def _client(kind: str, url: str, out_dir: str, out: Any) -> None:
    runners = {
        "aiohttp": lambda: _count_aiohttp(url),
        "websockets": lambda: _count_websockets(url),
        "seeds": lambda: _seeds_style(url, out_dir),
        "cryptolake": lambda: _cryptolake(url, out_dir),
    }
    out.put(asyncio.run(runners[kind]()))


def _run_client(kind: str, url: str, out_dir: str) -> tuple[int, float, float]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_client, args=(kind, url, out_dir, out), daemon=True)
    proc.start()
    result: tuple[int, float, float] = out.get(timeout=120)
    proc.join(30)
    return result


def _land(segments_dir: str) -> tuple[int, float, float]:
    """(rows, wall s, cpu s of every thread) of landing the segments in ``segments_dir``."""
    from lake.capture.land import land_market
    from lake.storage import Lake

    lake = Lake(os.path.join(segments_dir, "lake"))
    lake.create_all()
    t0, c0 = time.perf_counter(), time.process_time()
    result = land_market(lake, Path(segments_dir), "um")
    return sum(result.rows.values()), time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    """Print every rate and the ratios the capture targets are judged by."""
    from lake.simulator import built_in_exchange

    work = tempfile.mkdtemp(prefix="bench-capture-")
    extra = ["--start", "2024-01-01T00:00:00Z", "--clock-speed", "50000"]
    try:
        with built_in_exchange("um:BTCUSDT", extra=extra) as base:
            url = base.replace("http://", "ws://") + STREAMS
            rates: dict[str, tuple[int, float, float]] = {}
            for kind in ("aiohttp", "websockets", "seeds", "cryptolake"):
                out_dir = os.path.join(work, kind)
                os.makedirs(out_dir)
                rates[kind] = _run_client(kind, url, out_dir)
        rows, land_s, land_cpu = _land(os.path.join(work, "cryptolake"))
        for kind, label in (
            ("aiohttp", "receive only, aiohttp client"),
            ("websockets", "receive only, websockets client"),
            ("seeds", "seeds-style collector (json.loads, dict, JSON line each)"),
            ("cryptolake", "cryptolake hot path (receive → durable landing)"),
        ):
            n, wall, cpu = rates[kind]
            print(f"{label:58s} {n / wall:>10,.0f} msg/s  (cpu {cpu / wall:4.0%} of a core)")
        n, wall, cpu = rates["cryptolake"]
        land_rate = rows / land_s
        print(
            f"{'landing → bronze (parse + Delta merge)':58s} {land_rate:>10,.0f} rows/s"
            f"  ({rows:,} rows in {land_s:.2f} s, cpu {land_cpu / land_s:4.0%} of a core)"
            f"  target {TARGET_LAND:,.0f}: {land_rate / TARGET_LAND:.2f}x"
        )
        # one core: the CPU seconds of both steps, so the landing's second thread earns nothing
        e2e = 1.0 / (cpu / n + land_cpu / rows)
        # the seeds-style collector per CPU second too: the same as its wall rate when it has a
        # core to itself (it is CPU-bound), and not flattered when something else takes the core
        seeds = rates["seeds"][0] / rates["seeds"][2]
        print(
            f"{'end to end on one core (cpu of hot path + landing)':58s} {e2e:>10,.0f} msg/s"
            f"  target {TARGET_E2E:,.0f}: {e2e / TARGET_E2E:.2f}x;  vs seeds-style per cpu s: "
            f"{e2e / seeds:.2f}x"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
