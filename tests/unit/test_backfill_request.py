"""Backfill input (pure): validation messages, defaults, series, catalog, listing, provenance."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from lake.backfill.catalog import Series
from lake.backfill.provenance import Outcome, sources_frame, vision_batch_id
from lake.backfill.request import RequestError, build_request
from lake.binance.vision import VisionError, parse_checksum, parse_listing
from lake.schemas import SOURCES_TABLE

TODAY = date(2024, 4, 3)


def build(**kw: object) -> object:
    args: dict[str, object] = {"start": "2024-03-01", "end": "2024-03-02", "today": TODAY}
    return build_request(**(args | kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"start": "2024-13-01"}, "bad --start '2024-13-01': expected a date YYYY-MM-DD"),
        ({"end": "yesterday"}, "bad --end 'yesterday': expected a date YYYY-MM-DD"),
        ({"start": "2024-03-05"}, "--end 2024-03-02 is before --start 2024-03-05"),
        ({"end": "2024-04-04"}, "--end 2024-04-04 is in the future (today is 2024-04-03 UTC)"),
        (
            {"markets": "spot,coinm"},
            "unknown market 'coinm' in --markets (use spot, um or spot,um)",
        ),
        ({"datasets": "klines,candles"}, "unknown dataset 'candles' in --datasets (known: klines"),
        ({"datasets": "fundingRate", "markets": "spot"}, "fundingRate exists only on um"),
        ({"symbols": "BTCUSDT,BTC-USDT"}, "bad symbol 'BTC-USDT' in --symbols"),
        ({"source": "cache"}, "unknown --source 'cache' (use auto, vision or rest)"),
        ({}, "nothing to backfill: no symbols given and none configured"),
    ],
)
def test_bad_input_is_one_line(kw: dict[str, object], message: str) -> None:
    if kw:  # every case but the last names a symbol
        kw = {"symbols": "BTCUSDT"} | kw
    with pytest.raises(RequestError) as err:
        build(**kw)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_series_per_market_where_the_dataset_exists() -> None:
    r = build_request(
        start="2024-03-01",
        end=date(2024, 3, 2),
        today=TODAY,
        symbols="btcusdt",
        datasets="klines,fundingRate",
    )
    assert r.series == (
        Series("spot", "klines", "BTCUSDT"),
        Series("um", "klines", "BTCUSDT"),
        Series("um", "fundingRate", "BTCUSDT"),
    )
    defaults = build_request(
        start="2024-03-01",
        end="2024-03-01",
        today=TODAY,
        markets="spot",
        default_symbols={"spot": ("ETHUSDT",), "um": ("SOLUSDT",)},
    )
    assert {s.symbol for s in defaults.series} == {"ETHUSDT"}
    assert [s.dataset for s in defaults.series] == ["klines", "aggTrades", "trades"]


def test_series_keys_prefixes_and_header_rules() -> None:
    mark = Series("um", "markPriceKlines", "BTCUSDT")
    assert mark.key("daily", date(2024, 1, 1)) == (
        "data/futures/um/daily/markPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    )
    assert mark.listing_prefix("monthly", 2024) == (
        "data/futures/um/monthly/markPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2024"
    )
    agg = Series("spot", "aggTrades", "ETHUSDT")
    assert agg.listing_prefix("daily", 2025) == (
        "data/spot/daily/aggTrades/ETHUSDT/ETHUSDT-aggTrades-2025"
    )
    assert agg.rest_key(date(2024, 3, 1)) == "rest:spot/aggTrades/ETHUSDT/2024-03-01"
    assert mark.rest_key(date(2024, 3, 1)) == "rest:um/markPriceKlines/BTCUSDT/1m/2024-03-01"
    assert not agg.expects_header(date(2025, 1, 1))
    um_trades = Series("um", "trades", "BTCUSDT")
    assert not um_trades.expects_header(date(2022, 8, 10))
    assert um_trades.expects_header(date(2022, 8, 11))
    assert Series("um", "metrics", "BTCUSDT").expects_header(date(2021, 12, 1))
    assert Series("um", "bookTicker", "BTCUSDT").rest_kind() is None
    assert Series("spot", "klines", "BTCUSDT").rest_kind() == "klines"


def test_series_scope_selects_one_files_rows() -> None:
    frame = pl.DataFrame(
        {
            "market": ["um", "um", "spot", "um"],
            "kind": ["mark", "trade", "mark", "mark"],
            "interval": ["1m"] * 4,
            "symbol": ["BTCUSDT"] * 4,
            "open_time": [datetime(2024, 3, d, 5, tzinfo=UTC) for d in (1, 1, 1, 2)],
        }
    )
    scope = Series("um", "markPriceKlines", "BTCUSDT").scope(date(2024, 3, 1), date(2024, 3, 1))
    assert frame.with_row_index().filter(scope)["index"].to_list() == [0]


S3 = "http://s3.amazonaws.com/doc/2006-03-01/"


def test_listing_pages_parse_with_and_without_next_marker() -> None:
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="{S3}"><Name>data.binance.vision</Name><Prefix>data/spot/</Prefix>
<Marker></Marker><NextMarker>data/spot/b.zip</NextMarker><IsTruncated>true</IsTruncated>
<Contents><Key>data/spot/a.zip</Key><LastModified>2026-04-01T08:06:34.000Z</LastModified>
<Size>1048</Size></Contents>
<Contents><Key>data/spot/b.zip</Key><LastModified>2026-04-02T00:00:00.123Z</LastModified>
<Size>7</Size></Contents>
<CommonPrefixes><Prefix>data/spot/daily/</Prefix></CommonPrefixes></ListBucketResult>"""
    page = parse_listing(xml.encode())
    assert [(f.key, f.size) for f in page.files] == [
        ("data/spot/a.zip", 1048),
        ("data/spot/b.zip", 7),
    ]
    assert page.files[1].last_modified == datetime(2026, 4, 2, 0, 0, 0, 123000, tzinfo=UTC)
    assert page.prefixes == ("data/spot/daily/",) and page.truncated
    assert page.next_marker == "data/spot/b.zip"
    no_next = xml.replace("<NextMarker>data/spot/b.zip</NextMarker>", "")
    assert parse_listing(no_next.encode()).next_marker == "data/spot/daily/"  # the last entry
    last = xml.replace("<IsTruncated>true", "<IsTruncated>false")
    assert parse_listing(last.encode()).next_marker is None
    with pytest.raises(VisionError, match="unexpected listing answer <Error>"):
        parse_listing(b"<Error><Code>NoSuchKey</Code></Error>")


def test_checksum_files_parse_strictly() -> None:
    key = "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-04.zip"
    digest = "51cdeb4de7d5ef1d4eece80b6115e391bdf7a2d0803bf9ad8371ab23340b22d3"
    assert parse_checksum(f"{digest}  BTCUSDT-fundingRate-2026-04.zip\n".encode(), key) == digest
    with pytest.raises(VisionError, match="not a CHECKSUM file"):
        parse_checksum(b"<html>oops</html>", key)
    with pytest.raises(VisionError, match=r"names 'OTHER\.zip'"):
        parse_checksum(f"{digest}  OTHER.zip\n".encode(), key)


def test_sources_rows_conform_and_lines_read_well() -> None:
    s = Series("um", "aggTrades", "BTCUSDT")
    key = s.key("daily", date(2024, 3, 1))
    day = date(2024, 3, 1)
    batch = vision_batch_id(key, "a" * 64)
    ok = Outcome(key, s, "vision", "daily", day, "ingested", rows=1234, batch_id=batch)
    bad = Outcome(key, s, "vision", "daily", day, "truncated", detail="not a complete zip")
    frame = sources_frame([ok, bad], datetime(2024, 4, 1, tzinfo=UTC))
    assert frame.schema == SOURCES_TABLE.polars_schema()
    assert frame.height == 1 and frame["status"][0] == "truncated" and frame["rows"][0] is None
    assert ok.batch_id == f"vision:{key}:{'a' * 16}"
    assert ok.line() == f"ingested          {key}  1,234 rows"
    assert bad.line() == f"truncated         {key}  not a complete zip"
    assert bad.failed and not ok.failed
