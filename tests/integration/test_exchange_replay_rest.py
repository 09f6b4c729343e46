"""Replay on REST and Vision: a replayed symbol serves exactly what the recording holds, nothing
invented; the simulated market keeps serving the symbols that are not replayed."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from lake.exchange.clock import Clock
from lake.exchange.replay import Recording, ReplayError
from lake.exchange.testing import exchange_factory  # noqa: F401
from tests.exchange_helpers import collect, listen, ms, realdata, run

pytestmark = pytest.mark.integration

CMD = [sys.executable, "-m", "lake.exchange", "serve", "--port", "0"]
TRADE_FILES = [
    ("um", "usdm/btcusdt_20240808.gz", 21_313),
    ("um", "usdm/btcusdt_20230404.dat.gz", 2_197),
    ("spot", "spot/btcusdt_20240808.gz", 9_757),
]


def _frames(path: Path) -> list[tuple[float, dict[str, Any]]]:
    """(receive time as written, frame) of every stream frame, read with no exchange code."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    lines = raw.split(b"\n")
    sep = b" "
    if b" <-> " in lines[0]:
        lines, sep = lines[1:], b": "
    out = []
    for line in lines:
        ts, found, frame = line.partition(sep)
        if found and frame.startswith(b'{"stream"'):
            out.append((float(ts), json.loads(frame)))
    return out


def _data(path: Path, suffix: str) -> dict[str, list[dict[str, Any]]]:
    """Payloads of the streams ending in ``suffix``, by upper-case symbol, in file order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for _, f in _frames(path):
        if f["stream"].endswith(suffix):
            out.setdefault(f["data"]["s"], []).append(f["data"])
    return out


def _first_event_ms(frames: list[tuple[float, dict[str, Any]]]) -> int:
    """Exchange time at the first frame: the first ``E``, less the receive time before it."""
    t, f = next((t, f) for t, f in frames if "E" in f["data"])
    return int(f["data"]["E"]) - round((t - frames[0][0]) * 1000)


def _page_trades(c: httpx.Client, prefix: str, first: int, limit: int) -> list[bytes]:
    """Every page of historicalTrades from ``first`` on, up to the first empty one."""
    pages, cursor = [], first
    while True:
        resp = c.get(
            f"{prefix}/historicalTrades",
            params={"symbol": "BTCUSDT", "fromId": cursor, "limit": limit},
        )
        assert resp.status_code == 200
        pages.append(resp.content)
        body = resp.json()
        if not body:
            return pages
        assert body[0]["id"] == cursor
        cursor = body[-1]["id"] + 1


@pytest.mark.parametrize(("market", "rel", "count"), TRADE_FILES)
def test_historical_trades_of_a_replayed_symbol_are_exactly_the_recorded_trades(
    exchange_factory: Any,  # noqa: F811
    market: str,
    rel: str,
    count: int,
) -> None:
    from lake.binance.parse_rest import parse_rest_trades

    path = realdata("hftbacktest", rel)
    recorded = _data(path, "@trade")["BTCUSDT"]
    assert len(recorded) == len({t["t"] for t in recorded}) == count
    want = [
        {"id": t["t"], "price": t["p"], "qty": t["q"], "time": t["T"], "isBuyerMaker": t["m"]}
        for t in sorted(recorded, key=lambda t: t["t"])
    ]
    spot = market == "spot"
    prefix, limit = ("/api/v3", 1000) if spot else ("/fapi/v1", 500)
    ex = exchange_factory(replay=Recording([path], speed=0))
    with httpx.Client(base_url=ex.base_url, timeout=60) as c:
        pages = _page_trades(c, prefix, want[0]["id"], limit)
        beyond = c.get(
            f"{prefix}/historicalTrades", params={"symbol": "BTCUSDT", "fromId": want[-1]["id"] + 1}
        )
        before = c.get(
            f"{prefix}/historicalTrades",
            params={"symbol": "BTCUSDT", "fromId": want[0]["id"] - limit, "limit": limit},
        )
        latest = c.get(f"{prefix}/historicalTrades", params={"symbol": "BTCUSDT", "limit": 7})
        default = c.get(f"{prefix}/historicalTrades", params={"symbol": "BTCUSDT"})
    got = [row for page in pages for row in json.loads(page)]
    assert len(pages) == -(-count // limit) + 1 and json.loads(pages[-1]) == []
    assert [{k: r[k] for k in want[0]} for r in got] == want
    keys = ["id", "price", "qty", "quoteQty", "time", "isBuyerMaker"] + (["isBestMatch"] * spot)
    assert all(list(r) == keys for r in got)
    assert all(Decimal(r["quoteQty"]) == Decimal(r["price"]) * Decimal(r["qty"]) for r in got)
    places = {len(r["quoteQty"].partition(".")[2]) for r in got}
    if spot:
        assert places == {8} and all(r["isBestMatch"] is True for r in got)
    else:  # every digit of the product, as the simulated route prints it
        decimals = {
            len(r["price"].partition(".")[2]) + len(r["qty"].partition(".")[2]) for r in got
        }
        assert places == decimals == {5}
    assert (beyond.status_code, beyond.json()) == (200, [])
    assert (before.status_code, before.json()) == (200, [])  # ids the recording does not hold
    assert [r["id"] for r in latest.json()] == [t["id"] for t in want[-7:]]
    assert [r["id"] for r in default.json()] == [t["id"] for t in want[-(500 if spot else 100) :]]
    # the client's own parser reads the replayed rows like simulated ones
    parsed = parse_rest_trades(pages, market=market, symbol="BTCUSDT", batch_id="t")  # type: ignore[arg-type]
    assert parsed.height == count


@pytest.mark.parametrize(
    ("name", "aggs", "closed"),
    [("BINANCE_FUTURES.ws.1.0", 91, 4), ("BINANCE_FUTURES.ws.5.0", 185, 0)],
)
def test_agg_trades_and_closed_klines_of_cryptofeed_recordings(
    exchange_factory: Any,  # noqa: F811
    name: str,
    aggs: int,
    closed: int,
) -> None:
    path = realdata("cryptofeed", name)
    recorded = _data(path, "@aggTrade")
    bars = {s: [k["k"] for k in ks if k["k"]["x"]] for s, ks in _data(path, "@kline_1m").items()}
    assert sum(map(len, recorded.values())) == aggs
    assert sum(map(len, bars.values())) == closed
    ex = exchange_factory(replay=Recording([path], speed=0))
    with httpx.Client(base_url=ex.base_url, timeout=30) as c:

        def get(route: str, **params: Any) -> Any:
            resp = c.get(f"/fapi/v1/{route}", params=params)
            assert resp.status_code == 200, resp.text
            return resp.json()

        for symbol, rows in recorded.items():
            want = [{k: a[k] for k in ("a", "p", "q", "f", "l", "T", "m")} for a in rows]
            first, last = want[0], want[-1]
            assert get("aggTrades", symbol=symbol, fromId=first["a"], limit=1000) == want
            assert get("aggTrades", symbol=symbol, fromId=first["a"], limit=3) == want[:3]
            assert get("aggTrades", symbol=symbol, fromId=last["a"] + 1) == []
            window = {"startTime": first["T"], "endTime": last["T"]}
            assert get("aggTrades", symbol=symbol, **window) == want
            assert get("aggTrades", symbol=symbol, **window, limit=2) == want[:2]
            assert get("aggTrades", symbol=symbol, endTime=last["T"], limit=2) == want[-2:]
            assert get("aggTrades", symbol=symbol, startTime=last["T"] + 1) == []
            assert get("aggTrades", symbol=symbol) == want  # the latest 500
        for symbol, ks in bars.items():
            fields = ("t", "o", "h", "l", "c", "v", "T", "q", "n", "V", "Q")
            want_bars = [[*(k[f] for f in fields), "0"] for k in ks]
            assert get("klines", symbol=symbol, interval="1m") == want_bars
            assert get("klines", symbol=symbol, interval="5m") == []  # not recorded
            if ks:
                assert get("klines", symbol=symbol, interval="1m", startTime=ks[-1]["t"] + 1) == []
        too_long = c.get(
            "/fapi/v1/aggTrades",
            params={"symbol": next(iter(recorded)), "startTime": 0, "endTime": 7_200_000},
        )
        assert too_long.json()["code"] == -1127  # the USD-M 1-hour window rule still applies


def test_only_rows_due_on_the_replay_clock_are_served(exchange_factory: Any) -> None:  # noqa: F811
    path = realdata("cryptofeed", "BINANCE_FUTURES.ws.1.0")
    frames = [(t, f["data"]) for t, f in _frames(path) if f["stream"] == "sushiusdt@aggTrade"]
    t0 = _frames(path)[0][0]
    rec = Recording([path], speed=1)
    ex = exchange_factory(replay=rec)
    rec.start_wall = time.monotonic() - 10  # ten seconds of the recording have been replayed
    lo = rec.elapsed()
    got = httpx.get(
        ex.url("/fapi/v1/aggTrades"),
        params={"symbol": "SUSHIUSDT", "fromId": frames[0][1]["a"], "limit": 1000},
    ).json()
    hi = rec.elapsed()
    ids = [a["a"] for a in got]
    assert {d["a"] for t, d in frames if t - t0 <= lo} <= set(ids)
    assert set(ids) <= {d["a"] for t, d in frames if t - t0 <= hi}
    assert 0 < len(ids) < len(frames) == 40  # the rest has not happened yet


def test_duplicated_frames_are_served_once(exchange_factory: Any, tmp_path: Path) -> None:  # noqa: F811
    trade = '{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{t},"T":{t},"s":"BTCUSDT",'
    trade += '"t":{i},"p":"61800.30","q":"0.006","X":"MARKET","m":false}}}}'
    lines = [
        f"{(1723161256 + n) * 10**9} " + trade.format(t=1723161256000 + n, i=7 + n)
        for n in range(3)
    ]
    path = tmp_path / "usdm" / "btcusdt.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress("\n".join([*lines, lines[1], lines[2]]).encode()))
    ex = exchange_factory(replay=Recording([path], speed=0))
    got = httpx.get(
        ex.url("/fapi/v1/historicalTrades"), params={"symbol": "BTCUSDT", "fromId": 0, "limit": 7}
    )
    assert got.json() == []  # ids 0..6 are not recorded
    got = httpx.get(ex.url("/fapi/v1/historicalTrades"), params={"symbol": "BTCUSDT", "fromId": 7})
    assert [(t["id"], t["quoteQty"]) for t in got.json()] == [
        (7, "370.80180"),
        (8, "370.80180"),
        (9, "370.80180"),
    ]


def test_other_routes_of_a_replayed_symbol_answer_without_inventing(
    exchange_factory: Any,  # noqa: F811
) -> None:
    path = realdata("hftbacktest", "usdm", "btcusdt_20230404.dat.gz")
    marks = _data(path, "@markPrice@1s")["BTCUSDT"]
    assert len(marks) == 99
    ex = exchange_factory(
        clock=Clock(ms("2024-03-10T12:00:00"), speed=0), replay=Recording([path], speed=0)
    )
    no_mark = exchange_factory(
        replay=Recording([realdata("hftbacktest", "usdm", "btcusdt_20240808.gz")], speed=0)
    )
    q = {"symbol": "BTCUSDT"}
    with httpx.Client(base_url=ex.base_url, timeout=30) as c:
        for route in ("markPriceKlines", "premiumIndexKlines"):
            assert c.get(f"/fapi/v1/{route}", params={**q, "interval": "1m"}).json() == []
        index = c.get("/fapi/v1/indexPriceKlines", params={"pair": "BTCUSDT", "interval": "1m"})
        assert index.json() == []
        assert c.get("/fapi/v1/markPriceKlines", params={**q, "interval": "7m"}).json() == {
            "code": -1120,
            "msg": "Invalid interval.",
        }
        assert c.get("/fapi/v1/fundingRate", params=q).json() == []
        for route in ("openInterestHist", "takerlongshortRatio", "topLongShortAccountRatio"):
            assert c.get(f"/futures/data/{route}", params={**q, "period": "5m"}).json() == []
        bad = c.get("/futures/data/openInterestHist", params={**q, "period": "2m"})
        assert bad.json()["code"] == -1130
        oi = c.get("/fapi/v1/openInterest", params=q)
        assert (oi.status_code, oi.json()["code"]) == (400, -1121)
        last = marks[-1]
        assert c.get("/fapi/v1/premiumIndex", params=q).json() == {
            "symbol": "BTCUSDT",
            "markPrice": last["p"],
            "indexPrice": last["i"],
            "estimatedSettlePrice": last["P"],
            "lastFundingRate": last["r"],
            "interestRate": "0.00010000",
            "nextFundingTime": last["T"],
            "time": last["E"],
        }
        every = c.get("/fapi/v1/premiumIndex").json()
        assert [b["symbol"] for b in every] == ["ETHUSDT", "BTCUSDT"]
        assert every[1]["markPrice"] == last["p"]
        since = {"startTime": ms("2024-03-01T00:00:00"), "limit": 1000}
        funding = c.get("/fapi/v1/fundingRate", params=since).json()
        assert funding and {r["symbol"] for r in funding} == {"ETHUSDT"}
    none = httpx.get(f"{no_mark.base_url}/fapi/v1/premiumIndex", params=q)
    assert (none.status_code, none.json()["code"]) == (400, -1121)


def test_vision_has_no_files_of_a_replayed_symbol_and_the_simulated_ones_still_serve(
    exchange_factory: Any,  # noqa: F811
) -> None:
    path = realdata("hftbacktest", "usdm", "btcusdt_20240808.gz")
    ex = exchange_factory(
        clock=Clock(ms("2024-03-10T12:00:00"), speed=0), replay=Recording([path], speed=0)
    )
    um = "data/futures/um/monthly/fundingRate/{s}/{s}-fundingRate-2024-01.zip"
    spot = "data/spot/daily/klines/BTCUSDT/1d/BTCUSDT-1d-2024-03-01.zip"
    with httpx.Client(base_url=ex.base_url, timeout=60) as c:
        for key in (um.format(s="BTCUSDT"), um.format(s="BTCUSDT") + ".CHECKSUM"):
            missing = c.get(f"/{key}")
            assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text
        assert c.get(f"/{um.format(s='ETHUSDT')}").status_code == 200
        assert c.get(f"/{spot}").status_code == 200  # spot BTCUSDT is not in the recording
        folders = c.get(
            "/vision", params={"delimiter": "/", "prefix": "data/futures/um/monthly/fundingRate/"}
        )
        assert "fundingRate/ETHUSDT/</Prefix>" in folders.text
        assert "BTCUSDT" not in folders.text
        files = c.get("/vision", params={"prefix": "data/futures/um/monthly/fundingRate/BTCUSDT/"})
        assert "<Contents>" not in files.text
        spot_folders = c.get(
            "/vision", params={"delimiter": "/", "prefix": "data/spot/daily/klines/"}
        )
        assert "klines/BTCUSDT/</Prefix>" in spot_folders.text
        aggs = c.get("/fapi/v1/aggTrades", params={"symbol": "ETHUSDT", "limit": 5}).json()
        assert len(aggs) == 5 and aggs[-1]["T"] <= ms("2024-03-10T12:00:00")  # simulated


def test_websocket_serves_the_recording_and_the_simulated_symbols_side_by_side(
    exchange_factory: Any,  # noqa: F811
) -> None:
    path = realdata("hftbacktest", "usdm", "btcusdt_20230404.dat.gz")
    trades = _data(path, "@trade")["BTCUSDT"]
    ex = exchange_factory(replay=Recording([path], speed=0))
    url = ex.ws("/um/market/stream?streams=btcusdt@trade/ethusdt@aggTrade")

    def enough(frames: list[Any]) -> bool:
        streams = [f["stream"] for f in frames]
        return streams.count("btcusdt@trade") == len(trades) and "ethusdt@aggTrade" in streams

    frames = run(collect(url, enough, limit_s=30))
    got = [f["data"] for f in frames if f["stream"] == "btcusdt@trade"]
    assert got == trades
    assert {f["data"]["s"] for f in frames if f["stream"] == "ethusdt@aggTrade"} == {"ETHUSDT"}
    silent = run(listen(ex.ws("/um/market/ws/btcusdt@aggTrade"), 0.5))
    assert silent == []  # a replayed symbol's stream that was not recorded stays silent


@pytest.mark.parametrize(
    ("rel", "market", "symbols"),
    [
        ("BINANCE_FUTURES.ws.1.0", "um", ["AKROUSDT", "CTKUSDT", "KEEPUSDT", "SUSHIUSDT"]),
        ("BINANCE.ws.1.0", "spot", ["BLZETH", "LRCBTC", "NKNUSDT", "RUNEEUR"]),
    ],
)
def test_exchange_info_lists_replayed_symbols_and_time_is_the_replay_clock(
    exchange_factory: Any,  # noqa: F811
    rel: str,
    market: str,
    symbols: list[str],
) -> None:
    path = realdata("cryptofeed", rel)
    frames = _frames(path)
    end = _first_event_ms(frames) + int((max(t for t, _ in frames) - frames[0][0]) * 1000)
    ex = exchange_factory(replay=Recording([path], speed=0))
    prefix = "/api/v3" if market == "spot" else "/fapi/v1"
    info = httpx.get(ex.url(f"{prefix}/exchangeInfo")).json()
    listed = {s["symbol"]: s for s in info["symbols"]}
    assert list(listed) == ["BTCUSDT", "ETHUSDT", *symbols]
    assert {listed[s]["status"] for s in symbols} == {"TRADING"}
    if market == "um":
        assert (
            listed["SUSHIUSDT"]["pricePrecision"],
            listed["SUSHIUSDT"]["quantityPrecision"],
        ) == (4, 0)
    else:
        assert (listed["LRCBTC"]["baseAsset"], listed["LRCBTC"]["quoteAsset"]) == ("LRC", "BTC")
    assert info["serverTime"] == end
    assert httpx.get(ex.url(f"{prefix}/time")).json() == {"serverTime": end}


def test_the_replay_clock_runs_from_the_first_event_time(exchange_factory: Any) -> None:  # noqa: F811
    path = realdata("cryptofeed", "BINANCE_FUTURES.ws.1.0")
    first = _first_event_ms(_frames(path))
    rec = Recording([path], speed=2)
    ex = exchange_factory(replay=rec)
    rec.start_wall = time.monotonic() - 5  # 10 s of the recording replayed
    server = httpx.get(ex.url("/fapi/v1/time")).json()["serverTime"]
    assert first + 10_000 <= server < first + 12_000


def _coin_m_file(folder: Path, symbol: str) -> Path:
    frame = (
        f'{{"stream":"{symbol}@aggTrade","data":{{"e":"aggTrade","E":1626916403000,"a":1,'
        f'"s":"{symbol.upper()}","p":"32000.1","q":"1","f":1,"l":1,"T":1626916403000,"m":true}}}}'
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{symbol}_20210722.gz"
    path.write_bytes(gzip.compress(f"1626916403000000000 {frame}\n".encode()))
    return path


def test_coin_m_recordings_are_refused(tmp_path: Path) -> None:
    delivery = realdata("cryptofeed", "BINANCE_DELIVERY.ws.1.0")
    files = [
        delivery,
        _coin_m_file(tmp_path / "cm", "btcusdt"),  # a cm folder
        _coin_m_file(tmp_path / "coinm", "ethusdt"),
        _coin_m_file(tmp_path / "other", "btcusd_perp"),  # a COIN-M symbol
        _coin_m_file(tmp_path / "usdm", "ethusd_240927"),
    ]
    for path in files:
        with pytest.raises(ReplayError, match="COIN-M recordings are not served"):
            Recording([path])
    for path in (delivery, files[1], files[3]):
        done = subprocess.run(
            [*CMD, "--replay", str(path)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2 and done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "COIN-M" in lines[0]
    Recording([_coin_m_file(tmp_path / "usdm2", "btcusdt_240927")])  # a USD-M quarterly is fine


def test_spot_agg_trades_carry_m_and_microseconds_on_request(
    exchange_factory: Any,  # noqa: F811
) -> None:
    path = realdata("cryptofeed", "BINANCE.ws.1.0")
    recorded = _data(path, "@aggTrade")
    assert {s: len(a) for s, a in recorded.items()} == {"NKNUSDT": 1, "LRCBTC": 1}
    ex = exchange_factory(replay=Recording([path], speed=0))
    keys = ("a", "p", "q", "f", "l", "T", "m", "M")
    for symbol, (agg,) in recorded.items():
        want = {k: agg[k] for k in keys}
        url, q = ex.url("/api/v3/aggTrades"), {"symbol": symbol, "fromId": agg["a"]}
        assert httpx.get(url, params=q).json() == [want]
        micros = httpx.get(url, params=q, headers={"X-MBX-TIME-UNIT": "MICROSECOND"}).json()
        assert micros == [{**want, "T": agg["T"] * 1000}]
        assert httpx.get(ex.url("/api/v3/klines"), params={**q, "interval": "1m"}).json() == []
    trades = httpx.get(ex.url("/api/v3/historicalTrades"), params={"symbol": "NKNUSDT"})
    assert (trades.status_code, trades.json()) == (200, [])  # no @trade stream was recorded
