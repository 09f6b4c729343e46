"""WebSocket send rate of the built-in exchange to one receive-only client on the other core.

The server runs in this process (a background thread); the client is an aiohttp WebSocket
client in a separate process that only counts messages. The market's clock runs 50,000x, so
more events are always due than can be sent and the measured rate is the server's (or the
client's) ceiling. Target: 150,000 messages/s, so the exchange is never the bottleneck of
capture benchmarks. Printed: server send rate, client receive rate, and their ratio to the target.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from typing import Any

TARGET = 150_000.0
WARMUP_S = 1.5
MEASURE_S = 4.0


def _client(url: str, ready: Any, out: Any) -> None:
    """Receive-only client: count messages in the measurement window."""
    import aiohttp

    async def run() -> None:
        async with aiohttp.ClientSession() as s, s.ws_connect(url, max_msg_size=0) as ws:
            ready.set()
            n, t0 = 0, time.perf_counter()
            start_n = start_t = None
            while True:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                n += 1
                if n & 1023 == 0:
                    now = time.perf_counter()
                    if start_n is None and now - t0 >= WARMUP_S:
                        start_n, start_t = n, now
                    elif start_t is not None and now - start_t >= MEASURE_S:
                        out.put((n - start_n, now - start_t))
                        return

    asyncio.run(run())


def measure(path: str, clock_speed: float = 50_000.0) -> dict[str, float]:
    """Serve ``path`` (a WS route) from a sped-up market; return send/receive rates."""
    from lake.exchange.clock import Clock
    from lake.exchange.testing import start_exchange

    ex = start_exchange(symbols="BTCUSDT", clock=Clock(1_704_067_200_000, speed=0))
    try:
        ctx = mp.get_context("spawn")
        ready, out = ctx.Event(), ctx.Queue()
        proc = ctx.Process(target=_client, args=(ex.ws(path), ready, out), daemon=True)
        proc.start()
        if not ready.wait(30):
            raise RuntimeError("bench client did not connect")
        ex.clock.set_speed(clock_speed)
        time.sleep(WARMUP_S)
        sent0, t0 = ex.stats.ws_messages, time.perf_counter()
        time.sleep(MEASURE_S)
        sent1, t1 = ex.stats.ws_messages, time.perf_counter()
        received, took = out.get(timeout=60)
        proc.join(10)
    finally:
        ex.stop()
    return {"send": (sent1 - sent0) / (t1 - t0), "receive": received / took}


def main() -> None:
    """Print the send and receive rates against the 150 k msg/s target."""
    cases = [
        ("1 stream  (USD-M aggTrade, pre-framed slices)", "/um/market/ws/btcusdt@aggTrade"),
        (
            "3 streams (spot aggTrade+trade+bookTicker, merged by E)",
            "/spot/stream?streams=btcusdt@aggTrade/btcusdt@trade/btcusdt@bookTicker",
        ),
    ]
    print(f"target {TARGET:,.0f} msg/s to one receive-only aiohttp client (other process)")
    for label, path in cases:
        r = measure(path)
        print(
            f"{label}: server send {r['send']:,.0f} msg/s, client receive {r['receive']:,.0f}"
            f" msg/s, ratio to target {r['receive'] / TARGET:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
