"""``cryptolake exchange serve`` (run here as ``python -m lake.exchange serve``)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.exchange_helpers import collect, realdata, run

pytestmark = pytest.mark.integration

CMD = [sys.executable, "-m", "lake.exchange", "serve"]


@contextmanager
def serve(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        [*CMD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


def test_serve_prints_its_url_first_and_stops_cleanly_on_sigterm() -> None:
    with serve("--port", "0", "--seed", "7", "--symbols", "BTCUSDT,um:SOLUSDT") as (url, proc):
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/fapi/v1/time").json()["serverTime"] > 0
        info = httpx.get(f"{url}/fapi/v1/exchangeInfo").json()
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "SOLUSDT"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_sigint_also_stops_it() -> None:
    with serve("--port", "0") as (url, proc):
        assert url
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


def test_faults_and_clock_options() -> None:
    args = [
        "--port",
        "0",
        "--faults",
        "rest.error:status=502,every=1,path=/api",
        "--start",
        "2024-01-01T00:00:00Z",
    ]
    with serve(*args) as (url, _):
        assert httpx.get(f"{url}/api/v3/time").status_code == 502
        assert httpx.get(f"{url}/fapi/v1/time").json()["serverTime"] < 1_704_070_000_000


def test_api_key_option_guards_usdm_historical_trades() -> None:
    with serve("--port", "0", "--api-key", "k1", "--api-key", "k2") as (url, _):
        path, q = f"{url}/fapi/v1/historicalTrades", {"symbol": "BTCUSDT", "limit": 2}
        assert httpx.get(path, params=q).json()["code"] == -2014
        assert httpx.get(path, params=q, headers={"X-MBX-APIKEY": "k2"}).status_code == 200


def test_replay_option_serves_the_recording() -> None:
    path = realdata("cryptofeed", "BINANCE_FUTURES.ws.1.0")
    with serve("--port", "0", "--replay", str(path), "--speed", "0") as (url, _):
        ws = url.replace("http", "ws") + "/um/market/ws/ctkusdt@aggTrade"
        frames = run(collect(ws, lambda f: len(f) >= 3))
        assert frames[0]["s"] == "CTKUSDT" and frames[0]["e"] == "aggTrade"
        assert json.dumps(frames[0])


def test_two_processes_with_one_seed_serve_one_history() -> None:
    args = ["--port", "0", "--seed", "11", "--start", "2024-05-02T12:00:00Z", "--clock-speed", "0"]
    key = "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-04.zip.CHECKSUM"
    q = {"symbol": "BTCUSDT", "fromId": 2_719_447_973, "limit": 50}
    with (
        serve(*args) as (a, _),
        serve(*args) as (b, _),
        serve(*args[:3], "12", *args[4:]) as (c, _),
    ):
        answers = [
            (
                httpx.get(f"{url}/fapi/v1/aggTrades", params=q).json(),
                httpx.get(
                    f"{url}/api/v3/klines",
                    params={"symbol": "ETHUSDT", "interval": "1m", "limit": 30},
                ).json(),
                httpx.get(f"{url}/{key}").text,
            )
            for url in (a, b, c)
        ]
    assert answers[0] == answers[1]
    assert answers[0][0][0]["a"] == answers[2][0][0]["a"]  # ids do not depend on the seed
    assert answers[0][0][0]["p"] != answers[2][0][0]["p"] and answers[0][2] != answers[2][2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbols", "BTC-USDT"], "bad symbol"),
        (["--faults", "ws.explode"], "unknown fault"),
        (["--replay", "/nonexistent/file.gz"], "replay file not found"),
        (["--start", "yesterday"], "bad --start"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = subprocess.run([*CMD, "--port", "0", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
