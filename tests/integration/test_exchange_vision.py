"""Vision surface: files, checksums, header rules, publication times, the S3-style listing."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest

from lake.exchange.clock import Clock
from lake.exchange.testing import exchange_factory  # noqa: F401
from tests.exchange_helpers import ms, unzip_csv

pytestmark = pytest.mark.integration

NS = {"s": "http://s3.amazonaws.com/doc/2006-03-01/"}
UM = "data/futures/um"


@pytest.fixture
def vision(exchange_factory: Any) -> Any:  # noqa: F811
    ex = exchange_factory(
        clock=Clock(ms("2025-02-03T12:00:00"), speed=0),
        vision_delay_s=900,
        vision_jitter_s=3600,
        symbol_overrides={"agg_rate": 1.0},  # small files: these tests are about the archive
    )
    with httpx.Client(base_url=ex.base_url, timeout=60) as c:
        c.ex = ex  # type: ignore[attr-defined]
        yield c


def _list(c: httpx.Client, prefix: str, marker: str = "", delimiter: str = "/") -> ET.Element:
    params = {"prefix": prefix, "marker": marker}
    if delimiter:
        params["delimiter"] = delimiter
    r = c.get("/vision", params=params)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/xml")
    return ET.fromstring(r.text)


def _keys(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.findall("s:Contents/s:Key", NS)]


def _prefixes(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.findall("s:CommonPrefixes/s:Prefix", NS)]


def test_listing_walks_the_tree(vision: httpx.Client) -> None:
    assert _prefixes(_list(vision, "data/")) == ["data/futures/", "data/spot/"]
    assert _prefixes(_list(vision, f"{UM}/monthly/")) == [
        f"{UM}/monthly/{d}/"
        for d in (
            "aggTrades",
            "bookTicker",
            "fundingRate",
            "indexPriceKlines",
            "klines",
            "markPriceKlines",
            "premiumIndexKlines",
            "trades",
        )
    ]
    daily = _prefixes(_list(vision, f"{UM}/daily/"))
    assert f"{UM}/daily/metrics/" in daily and f"{UM}/daily/fundingRate/" not in daily
    assert _prefixes(_list(vision, "data/spot/daily/klines/")) == [
        "data/spot/daily/klines/BTCUSDT/",
        "data/spot/daily/klines/ETHUSDT/",
    ]
    intervals = _prefixes(_list(vision, "data/spot/daily/klines/BTCUSDT/"))
    assert "data/spot/daily/klines/BTCUSDT/1s/" in intervals and len(intervals) == 13


def test_listing_pages_of_1000_with_marker(vision: httpx.Client) -> None:
    prefix = f"{UM}/daily/klines/BTCUSDT/1m/"
    keys, marker, pages = [], "", 0
    while True:
        root = _list(vision, prefix, marker)
        page = _keys(root)
        pages += 1
        keys += page
        if root.findtext("s:IsTruncated", namespaces=NS) != "true":
            break
        assert len(page) == 1000
        marker = root.findtext("s:NextMarker", namespaces=NS) or ""
        assert marker == page[-1]
    assert pages >= 2 and len(keys) == len(set(keys)) and keys == sorted(keys)
    assert keys[0] == f"{prefix}BTCUSDT-1m-2020-01-01.zip"
    assert keys[1] == f"{prefix}BTCUSDT-1m-2020-01-01.zip.CHECKSUM"
    assert keys[-1] == f"{prefix}BTCUSDT-1m-2025-02-02.zip.CHECKSUM"  # yesterday is published
    plain = _list(vision, prefix + "BTCUSDT-1m-2024-01", delimiter="")
    assert len(_keys(plain)) == 62


def test_sizes_and_checksums_match_the_files(vision: httpx.Client) -> None:
    for key in (
        f"{UM}/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-02.zip",
        f"{UM}/daily/klines/ETHUSDT/5m/ETHUSDT-5m-2022-01-01.zip",
        "data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2025-01-05.zip",
        f"{UM}/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-06-01.zip",
        f"{UM}/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-04.zip",
    ):
        root = _list(vision, key)
        listed = {
            c.findtext("s:Key", namespaces=NS): (
                int(c.findtext("s:Size", namespaces=NS) or 0),
                c.findtext("s:LastModified", namespaces=NS) or "",
            )
            for c in root.findall("s:Contents", NS)
        }
        assert list(listed) == [key, key + ".CHECKSUM"]
        body = vision.get("/" + key).content
        check = vision.get("/" + key + ".CHECKSUM")
        assert listed[key][0] == len(body), key
        assert listed[key + ".CHECKSUM"][0] == len(check.content)
        digest, name = check.text.rstrip("\n").split("  ")
        assert digest == hashlib.sha256(body).hexdigest() and name == key.rsplit("/", 1)[1]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", listed[key][1])
        assert unzip_csv(body)


def test_header_booleans_and_time_units_follow_the_archive(vision: httpx.Client) -> None:
    def rows(key: str) -> list[list[str]]:
        return unzip_csv(vision.get("/" + key).raise_for_status().content)

    spot_2025 = rows("data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2025-01-05.zip")
    assert len(spot_2025[0]) == 8 and spot_2025[0][0].isdigit()  # no header
    assert len(spot_2025[0][5]) == 16 and spot_2025[0][6] in ("True", "False")  # µs, True/False
    assert spot_2025[0][7] == "True"
    spot_2024 = rows("data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-12-31.zip")
    assert len(spot_2024[0][0]) == 13 and len(spot_2024) == 24
    spot_kl = rows("data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2025-01-01.zip")
    assert spot_kl[0][0] == str(ms("2025-01-01T00:00:00") * 1000)
    assert spot_kl[0][6] == str(ms("2025-01-01T01:00:00") * 1000 - 1)
    um_trades = rows(f"{UM}/daily/trades/BTCUSDT/BTCUSDT-trades-2022-08-10.zip")
    assert um_trades[0][0].isdigit()  # no header until after 2022-08-10
    um_trades = rows(f"{UM}/daily/trades/BTCUSDT/BTCUSDT-trades-2022-08-11.zip")
    assert um_trades[0] == ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"]
    assert um_trades[1][5] in ("true", "false")
    old_month = rows(f"{UM}/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2022-04.zip")
    assert old_month[0][0].isdigit() and len(old_month) == 30
    funding = rows(f"{UM}/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-04.zip")
    assert funding[0] == ["calc_time", "funding_interval_hours", "last_funding_rate"]
    assert len(funding) == 91 and funding[1][1] == "8"
    metrics = rows(f"{UM}/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-06-01.zip")
    assert len(metrics) == 289 and metrics[1][0] == "2024-06-01 00:00:00"
    liq = rows(f"{UM}/daily/liquidationSnapshot/BTCUSDT/BTCUSDT-liquidationSnapshot-2024-03-31.zip")
    assert liq[1] == liq[2]  # the historic snapshot files repeat rows


def test_archive_ends_and_publication(vision: httpx.Client) -> None:
    def status(key: str) -> int:
        return vision.get("/" + key).status_code

    assert (
        status(f"{UM}/daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-03-30.zip.CHECKSUM") == 200
    )
    assert status(f"{UM}/daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-03-31.zip") == 404
    assert (
        status(f"{UM}/daily/liquidationSnapshot/BTCUSDT/BTCUSDT-liquidationSnapshot-2024-04-01.zip")
        == 404
    )
    assert status(f"{UM}/daily/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-04-01.zip") == 404
    assert status(f"{UM}/monthly/metrics/BTCUSDT/BTCUSDT-metrics-2024-04.zip") == 404
    missing = vision.get(f"/{UM}/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-02-03.zip")
    assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text
    month = f"{UM}/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2025-01.zip.CHECKSUM"
    assert status(month) == 200
    assert status(f"{UM}/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2025-02.zip.CHECKSUM") == 404

    ex = vision.ex  # type: ignore[attr-defined]
    key = f"{UM}/daily/metrics/BTCUSDT/BTCUSDT-metrics-2025-02-03.zip"
    ex.clock.set(ms("2025-02-04T00:00:00"))
    assert status(key) == 404  # the day is over but the file is not built yet
    ex.clock.set(ms("2025-02-04T01:16:00"))  # after delay (15 min) + jitter (< 1 h)
    assert status(key) == 200
    assert key in _keys(_list(vision, key))
