"""Every fault on demand, each seen by a plain client."""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import json
import time
import zipfile
from typing import Any

import aiohttp
import httpx
import pytest

from lake.exchange.clock import Clock
from lake.exchange.testing import exchange, exchange_factory  # noqa: F401
from tests.exchange_helpers import ms, run, unzip_csv

pytestmark = pytest.mark.integration

AGG = "/um/market/ws/btcusdt@aggTrade"


async def _raw_frames(url: str, n: int, limit_s: float = 10) -> list[str]:
    out: list[str] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        async with asyncio.timeout(limit_s):
            while len(out) < n:
                out.append(await ws.receive_str())
    return out


async def _until_closed(url: str, limit_s: float = 10) -> tuple[float, aiohttp.WSMsgType, Any]:
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        t0 = time.monotonic()
        async with asyncio.timeout(limit_s):
            while True:
                m = await ws.receive()
                if m.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING):
                    return time.monotonic() - t0, m.type, ws.close_code


# --- WebSocket --------------------------------------------------------------------------------


def test_drop_every_n_seconds(exchange_factory: Any) -> None:  # noqa: F811
    ex = exchange_factory(faults="ws.drop:every=0.5s")
    lasted, kind, _ = run(_until_closed(ex.ws(AGG)))
    assert 0.4 < lasted < 2 and kind in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    ex.faults.clear()
    ex.add_faults("ws.drop:every=0.3s,mode=close")
    lasted, kind, code = run(_until_closed(ex.ws(AGG)))
    assert kind == aiohttp.WSMsgType.CLOSE and code == 1001


def test_drop_at_random(exchange: Any) -> None:  # noqa: F811
    exchange.add_faults("ws.drop:p=0.2")
    lasted, kind, _ = run(_until_closed(exchange.ws(AGG)))
    assert lasted < 5 and kind in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


def test_malformed_frames(exchange: Any) -> None:  # noqa: F811
    exchange.add_faults("ws.malformed:every=3")
    frames = run(_raw_frames(exchange.ws(AGG), 9))
    bad = []
    for i, f in enumerate(frames):
        try:
            json.loads(f)
        except ValueError:
            bad.append(i)
    assert bad == [2, 5, 8]


def test_duplicated_frames(exchange: Any) -> None:  # noqa: F811
    exchange.add_faults("ws.duplicate:every=2")
    ids = [json.loads(f)["a"] for f in run(_raw_frames(exchange.ws(AGG), 9))]
    assert len(set(ids)) < len(ids)
    assert any(a == b for a, b in itertools.pairwise(ids))


def test_reordered_frames(exchange: Any) -> None:  # noqa: F811
    exchange.add_faults("ws.reorder:every=3")
    ids = [json.loads(f)["a"] for f in run(_raw_frames(exchange.ws(AGG), 9))]
    assert sorted(ids) != ids and len(set(ids)) == len(ids)  # swapped, nothing lost or doubled
    assert max(ids) - min(ids) <= len(ids)


def test_one_stream_silent_on_a_live_connection(exchange_factory: Any) -> None:  # noqa: F811
    ex = exchange_factory(symbol_overrides={"book_rate": 50.0})
    ex.add_faults("ws.silence:stream=btcusdt@aggTrade,after=1s")
    url = ex.ws("/spot/stream?streams=btcusdt@aggTrade/btcusdt@bookTicker")

    async def go() -> list[tuple[float, str]]:
        seen: list[tuple[float, str]] = []
        async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2.5:
                seen.append((time.monotonic() - t0, json.loads(await ws.receive_str())["stream"]))
        return seen

    seen = run(go())
    assert {s for _, s in seen} == {"btcusdt@aggTrade", "btcusdt@bookTicker"}
    late = {s for t, s in seen if t > 1.5}
    assert late == {"btcusdt@bookTicker"}  # aggTrade went silent; the connection lives on


# --- REST ---------------------------------------------------------------------------------------


def test_rest_5xx_timeouts_429_418(exchange: Any) -> None:  # noqa: F811
    q = {"symbol": "BTCUSDT"}
    with httpx.Client(base_url=exchange.base_url, timeout=5) as c:
        exchange.add_faults("rest.error:status=503,every=2,path=/fapi/v1/premiumIndex")
        codes = [c.get("/fapi/v1/premiumIndex", params=q).status_code for _ in range(4)]
        assert codes == [200, 503, 200, 503]
        r = c.get("/fapi/v1/premiumIndex", params=q)
        r = c.get("/fapi/v1/premiumIndex", params=q)
        assert r.json()["msg"] == "Service Unavailable." and "X-MBX-USED-WEIGHT-1M" in r.headers
        exchange.faults.clear()

        exchange.add_faults("rest.timeout:delay=1s,times=1")
        with pytest.raises(httpx.ReadTimeout):
            c.get("/fapi/v1/time", timeout=0.3)
        assert c.get("/fapi/v1/time").status_code == 200

        exchange.add_faults("rest.429:times=1;rest.418:times=1,path=/api")
        r429 = c.get("/fapi/v1/time")
        assert r429.status_code == 429 and int(r429.headers["Retry-After"]) > 0
        r418 = c.get("/api/v3/time")
        assert r418.status_code == 418 and r418.json()["code"] == -1003
        assert c.get("/api/v3/time").status_code == 200


# --- Vision -------------------------------------------------------------------------------------

DAY_KEY = "data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-02.zip"


@pytest.fixture
def archive(exchange_factory: Any) -> Any:  # noqa: F811
    ex = exchange_factory(clock=Clock(ms("2024-02-01T12:00:00"), speed=0))
    with httpx.Client(base_url=ex.base_url, timeout=60) as c:
        c.ex = ex  # type: ignore[attr-defined]
        yield c


def _listing(c: httpx.Client, key: str) -> str:
    return c.get("/vision", params={"prefix": key, "delimiter": "/"}).text


def test_checksum_mismatch(archive: httpx.Client) -> None:
    archive.ex.add_faults("vision.checksum:date=2024-01-02")  # type: ignore[attr-defined]
    body = archive.get("/" + DAY_KEY).content
    digest = archive.get("/" + DAY_KEY + ".CHECKSUM").text.split()[0]
    assert digest != hashlib.sha256(body).hexdigest()
    other = DAY_KEY.replace("01-02", "01-03")
    assert (
        archive.get("/" + other + ".CHECKSUM").text.split()[0]
        == hashlib.sha256(archive.get("/" + other).content).hexdigest()
    )


def test_truncated_zip(archive: httpx.Client) -> None:
    full = archive.get("/" + DAY_KEY).content
    archive.ex.add_faults("vision.truncate:match=*metrics-2024-01-02.zip,keep=0.5")  # type: ignore[attr-defined]
    cut = archive.get("/" + DAY_KEY).content
    assert len(cut) == len(full) // 2 and full.startswith(cut)
    assert f"<Size>{len(cut)}</Size>" in _listing(archive, DAY_KEY)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(cut))
    assert (
        archive.get("/" + DAY_KEY + ".CHECKSUM").text.split()[0] != hashlib.sha256(cut).hexdigest()
    )


def test_missing_day(archive: httpx.Client) -> None:
    archive.ex.add_faults("vision.missing:dataset=metrics,date=2024-01-02")  # type: ignore[attr-defined]
    assert archive.get("/" + DAY_KEY).status_code == 404
    assert archive.get("/" + DAY_KEY + ".CHECKSUM").status_code == 404
    folder = DAY_KEY.rsplit("/", 1)[0] + "/BTCUSDT-metrics-2024-01-0"
    listing = _listing(archive, folder)
    assert "2024-01-01.zip</Key>" in listing and "2024-01-02.zip" not in listing


def test_file_replaced_after_publication(archive: httpx.Client) -> None:
    ex = archive.ex  # type: ignore[attr-defined]
    before_listing = _listing(archive, DAY_KEY)
    v1 = archive.get("/" + DAY_KEY)
    ex.add_faults("vision.replace:date=2024-01-02")  # replaced now (exchange clock)
    ex.clock.advance(60_000)
    after_listing = _listing(archive, DAY_KEY)
    v2 = archive.get("/" + DAY_KEY)
    sha2 = archive.get("/" + DAY_KEY + ".CHECKSUM").text.split()[0]
    assert hashlib.sha256(v1.content).hexdigest() != sha2 == hashlib.sha256(v2.content).hexdigest()
    lm = [x.split("</LastModified>")[0] for x in (before_listing, after_listing)]
    assert lm[0].split("<LastModified>")[1] < lm[1].split("<LastModified>")[1]
    assert v1.headers["Last-Modified"] != v2.headers["Last-Modified"]
    assert unzip_csv(v1.content) == unzip_csv(v2.content)  # same rows, rebuilt file


def test_header_drift(archive: httpx.Client) -> None:
    spot = "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-02.zip"
    assert unzip_csv(archive.get("/" + spot).content)[0][0].isdigit()
    archive.ex.add_faults("vision.header:market=spot;vision.header:dataset=metrics")  # type: ignore[attr-defined]
    assert unzip_csv(archive.get("/" + spot).content)[0][0] == "open_time"
    assert unzip_csv(archive.get("/" + DAY_KEY).content)[0][0].startswith("2024-01-02")
