"""Replay of real recordings: exactly the frames of the file, in order, on their real routes."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lake.exchange.replay import Recording, ReplayError
from lake.exchange.testing import exchange_factory  # noqa: F401
from tests.exchange_helpers import realdata, run

pytestmark = pytest.mark.integration


def _expected(path: Path, sep: bytes) -> list[str]:
    """The recorded stream frames (text), in file order, read with no exchange code."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    lines = raw.split(b"\n")
    if b" <-> " in lines[0]:
        lines = lines[1:]
    frames = [line.partition(sep)[2] for line in lines if line]
    return [f.decode() for f in frames if f.startswith(b'{"stream"')]


def _stream(frame: str) -> str:
    return frame[len('{"stream":"') : frame.index('"', len('{"stream":"'))]


async def _receive(url: str, n: int, limit_s: float = 60) -> list[str]:
    got: list[str] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url, max_msg_size=0) as ws:
        async with asyncio.timeout(limit_s):
            while len(got) < n:
                got.append(await ws.receive_str())
    return got


def _route(stream: str) -> str:
    return "public" if "@bookTicker" in stream or "@depth" in stream else "market"


@pytest.mark.slow
def test_hftbacktest_usdm_2024_exact_frames_in_order(exchange_factory: Any) -> None:  # noqa: F811
    path = realdata("hftbacktest", "usdm", "btcusdt_20240808.gz")
    expected = _expected(path, b" ")
    assert len(expected) == 21_313 + 66_089 + 6_551  # the REST snapshot line is not a frame
    ex = exchange_factory(replay=Recording([path], speed=0))
    by_route: dict[str, list[str]] = {"public": [], "market": []}
    for f in expected:
        by_route[_route(_stream(f))].append(f)

    async def both() -> list[list[str]]:
        urls = [
            ex.ws("/um/public/stream?streams=btcusdt@bookTicker/btcusdt@depth@0ms"),
            ex.ws("/um/market/stream?streams=btcusdt@trade"),
        ]
        sizes = [len(by_route["public"]), len(by_route["market"])]
        return list(
            await asyncio.gather(*(_receive(u, n) for u, n in zip(urls, sizes, strict=True)))
        )

    public, market = run(both())
    assert public == by_route["public"]
    assert market == by_route["market"]


@pytest.mark.slow
def test_hftbacktest_spot_2024_on_the_spot_route(exchange_factory: Any) -> None:  # noqa: F811
    path = realdata("hftbacktest", "spot", "btcusdt_20240808.gz")
    expected = _expected(path, b" ")
    ex = exchange_factory(replay=Recording([path], speed=0))
    streams = "/".join(sorted({_stream(f) for f in expected}))
    assert run(_receive(ex.ws(f"/spot/stream?streams={streams}"), len(expected))) == expected


def test_cryptofeed_futures_sample_paced_and_exact(exchange_factory: Any) -> None:  # noqa: F811
    path = realdata("cryptofeed", "BINANCE_FUTURES.ws.1.0")
    expected = _expected(path, b": ")
    assert len(expected) == 91 + 764 + 67 + 613
    ex = exchange_factory(replay=Recording([path], speed=20))  # 30 s of recording in ~1.5 s
    streams = sorted({_stream(f) for f in expected})
    public = [s for s in streams if _route(s) == "public"]
    market = [s for s in streams if _route(s) == "market"]

    async def both() -> tuple[list[str], list[str], float]:
        t0 = time.monotonic()
        pub, mkt = await asyncio.gather(
            _receive(ex.ws("/um/public/stream?streams=" + "/".join(public)), 764 + 613),
            _receive(ex.ws("/um/market/stream?streams=" + "/".join(market)), 91 + 67),
        )
        return pub, mkt, time.monotonic() - t0

    pub, mkt, took = run(both())
    assert pub == [f for f in expected if _route(_stream(f)) == "public"]
    assert mkt == [f for f in expected if _route(_stream(f)) == "market"]
    assert took > 1.0  # paced: 30 s of recording at 20x


def test_late_subscriber_misses_nothing_and_raw_routes_get_data(exchange_factory: Any) -> None:  # noqa: F811
    path = realdata("cryptofeed", "BINANCE_FUTURES.ws.1.0")
    expected = [f for f in _expected(path, b": ") if _stream(f) == "sushiusdt@aggTrade"]
    ex = exchange_factory(replay=Recording([path], speed=50))

    async def go() -> tuple[list[str], list[str], list[Any]]:
        await asyncio.sleep(1.0)  # the server has been up a while: the clock waits for us
        first = asyncio.ensure_future(
            _receive(ex.ws("/um/market/stream?streams=sushiusdt@aggTrade"), len(expected))
        )
        await asyncio.sleep(0.3)  # the replay clock runs; this client joins late
        late = await _receive(ex.ws("/um/market/ws/sushiusdt@aggTrade"), len(expected))
        wrong = await asyncio.wait_for(_silent(ex.ws("/um/public/ws/sushiusdt@aggTrade")), 5)
        return await first, late, wrong

    combined, late, wrong = run(go())
    assert combined == expected
    assert late == [json.dumps(json.loads(f)["data"], separators=(",", ":")) for f in expected]
    assert wrong == []  # aggTrade is not on /public


async def _silent(url: str) -> list[Any]:
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        try:
            async with asyncio.timeout(0.5):
                return [await ws.receive_str()]
        except TimeoutError:
            return []


def test_bad_recordings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="not found"):
        Recording([tmp_path / "nope.gz"])
    empty = tmp_path / "empty.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(ReplayError, match="no stream frames"):
        Recording([empty])


def test_hftbacktest_2023_microsecond_timestamps() -> None:
    path = realdata("hftbacktest", "usdm", "btcusdt_20230404.dat.gz")
    rec = Recording([path])
    times = [t for s in rec.streams.values() for t in s.times]
    assert rec.frames == 99 + 2_197 + 6_765 + 4_322
    assert 95 < max(times) < 105  # 23:58:20 → 23:59:59, read as µs
    assert ("um_market", "btcusdt@markPrice@1s") in rec.streams
    assert ("um_public", "btcusdt@depth@0ms") in rec.streams
