"""Pure rules of the exchange: fault spec grammar, REST budgets, Vision zips, paths and headers."""

from __future__ import annotations

import hashlib
import io
import random
import zipfile
from dataclasses import replace
from datetime import date

import pytest

from lake.exchange import vision_data as vd
from lake.exchange import vision_tree as vt
from lake.exchange.config import ExchangeConfig, RateLimits
from lake.exchange.faults import FaultSet, FaultSpecError, parse_duration, parse_spec
from lake.exchange.limits import Limiter, kline_weight
from lake.exchange.vision_zip import build_zip, checksum_file
from tests.exchange_helpers import ms

# --- fault spec grammar ---------------------------------------------------------------------


def test_fault_spec_parses_every_kind() -> None:
    faults = parse_spec(
        "ws.drop:every=30s,mode=close; ws.malformed:p=0.5;"
        "ws.silence:stream=btcusdt@aggTrade,after=2s;"
        "rest.error:status=502,every=3,path=/fapi; rest.timeout:delay=250ms;"
        "vision.replace:date=2024-01-02,at=2024-01-05T00:00:00Z; vision.truncate:keep=0.25"
    )
    assert [f.name for f in faults] == [
        "ws.drop",
        "ws.malformed",
        "ws.silence",
        "rest.error",
        "rest.timeout",
        "vision.replace",
        "vision.truncate",
    ]
    assert faults[0].every == 30.0 and faults[1].p == 0.5 and faults[3].every == 3
    assert faults[5].at_ms == ms("2024-01-05T00:00:00")
    assert parse_duration("250ms") == 0.25 and parse_duration("2m") == 120


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ws.explode", "unknown fault"),
        ("rest.error:status", "key=value"),
        ("rest.error:colour=red", "takes no 'colour'"),
        ("rest.error:status=404", "5xx"),
        ("ws.malformed:p=2", "between 0 and 1"),
        ("ws.silence", "stream="),
        ("ws.drop", "every="),
        ("vision.replace:at=yesterday", "bad value"),
    ],
)
def test_bad_fault_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message):
        parse_spec(spec)


def test_fault_triggers_count_and_cap() -> None:
    (f,) = parse_spec("rest.error:every=3,times=2")
    rnd = random.Random(0)
    assert [f.trigger(rnd) for _ in range(9)] == [False, False, True, False, False, True] + [
        False
    ] * 3
    fs = FaultSet("rest.429:p=1")
    assert fs.of("rest.") and not fs.of("ws.")
    fs.clear()
    assert not fs


# --- REST budgets ---------------------------------------------------------------------------


def test_kline_weights_by_limit() -> None:
    assert [kline_weight(n) for n in (1, 99, 100, 499, 500, 1000, 1001, 1500)] == [
        1,
        1,
        2,
        2,
        5,
        5,
        10,
        10,
    ]


def test_budget_429_then_418_ban() -> None:
    now = [1000.0]
    lim = Limiter(RateLimits(um_weight=100, ban_after_429=2), wall=lambda: now[0])
    assert lim.check("ip", "um", 60).status == 200
    assert lim.check("ip", "um", 40).used == 100
    v = lim.check("ip", "um", 1)
    assert (v.status, v.retry_after) == (429, 20)  # window ends at 1020 s
    assert lim.check("ip", "um", 1).status == 429
    ban = lim.check("ip", "um", 1)
    assert ban.status == 418 and ban.retry_after == 120
    now[0] += 60
    assert lim.check("ip", "um", 1).status == 418  # still banned in the next window
    now[0] += 61
    assert lim.check("ip", "um", 1).status == 200
    assert lim.check("other", "spot", 1).status == 200  # budgets are per IP


def test_request_quota_of_futures_data() -> None:
    lim = Limiter(RateLimits(futures_data_requests=3), wall=lambda: 0.0)
    assert [lim.check("ip", "um", 0, "futures_data").status for _ in range(4)] == [
        200,
        200,
        200,
        429,
    ]


# --- Vision zips, paths, availability, header rules --------------------------------------------


def test_zip_is_padded_to_the_exact_target_and_stays_valid() -> None:
    data = b"1,2,3\n" * 5000
    for target in (None, 3000, 3001, 3002, 3003, 3004):
        z = build_zip("X-aggTrades-2024-01-01.csv", [data], ms("2024-01-02T00:13:00"), target)
        assert target is None or len(z) == target
        with zipfile.ZipFile(io.BytesIO(z)) as zf:
            info = zf.infolist()[0]
            assert zf.read(info) == data and zf.testzip() is None
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.date_time == (2024, 1, 2, 0, 13, 0)
            assert info.external_attr >> 16 == 0o100644


def test_checksum_file_format() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert checksum_file("A.zip", digest) == f"{digest}  A.zip\n".encode()


def test_keys_parse_and_round_trip() -> None:
    for key in (
        "data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip",
        "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-04.zip",
        "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-04.zip",
        "data/futures/um/monthly/klines/BTCUSDT/1mo/BTCUSDT-1mo-2024-04.zip",
        "data/futures/um/daily/bookDepth/BTCUSDT/BTCUSDT-bookDepth-2024-01-01.zip",
    ):
        parsed = vt.parse_key(key)
        assert parsed is not None and parsed[0].key == key and not parsed[1]
    parsed = vt.parse_key(
        "data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-01.zip.CHECKSUM"
    )
    assert parsed is not None and parsed[1]
    assert vt.parse_key("data/spot/daily/klines/BTCUSDT/BTCUSDT-1m-2024-01-01.zip") is None


def _exists(key: str) -> bool:
    parsed = vt.parse_key(key)
    return parsed is not None and vt.exists(ExchangeConfig(), parsed[0])


def test_availability_matrix() -> None:
    um = "data/futures/um"
    assert _exists(f"{um}/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip")
    assert not _exists(f"{um}/daily/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01-01.zip")
    assert _exists(f"{um}/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-01.zip")
    assert not _exists(f"{um}/monthly/metrics/BTCUSDT/BTCUSDT-metrics-2024-01.zip")
    assert _exists(f"{um}/daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-03-30.zip")
    assert not _exists(f"{um}/daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-03-31.zip")
    assert _exists(
        f"{um}/daily/liquidationSnapshot/BTCUSDT/BTCUSDT-liquidationSnapshot-2024-03-31.zip"
    )
    assert not _exists(
        f"{um}/daily/liquidationSnapshot/BTCUSDT/BTCUSDT-liquidationSnapshot-2024-04-01.zip"
    )
    assert not _exists("data/spot/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-01.zip")
    assert _exists("data/spot/daily/klines/BTCUSDT/1s/BTCUSDT-1s-2024-01-01.zip")
    assert not _exists(f"{um}/daily/klines/BTCUSDT/1s/BTCUSDT-1s-2024-01-01.zip")
    assert _exists(f"{um}/monthly/klines/BTCUSDT/1w/BTCUSDT-1w-2024-01.zip")
    assert not _exists(f"{um}/daily/klines/BTCUSDT/1w/BTCUSDT-1w-2024-01-01.zip")
    assert not _exists(f"{um}/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2019-12-31.zip")  # before listing


def test_daily_files_appear_the_next_day_monthly_after_the_month() -> None:
    cfg = replace(ExchangeConfig(), vision_delay_s=600, vision_jitter_s=0)
    day = vt.VFile("um", "daily", "klines", "BTCUSDT", "1m", "2024-01-01")
    month = vt.VFile("um", "monthly", "klines", "BTCUSDT", "1m", "2024-01")
    assert vt.publish_ms(cfg, day) == ms("2024-01-02T00:10:00")
    assert vt.publish_ms(cfg, month) == ms("2024-02-01T00:10:00")


@pytest.mark.parametrize(
    ("market", "dataset", "period", "header"),
    [
        ("spot", "klines", "2024-01-01", False),
        ("spot", "aggTrades", "2026-01-01", False),
        ("um", "klines", "2022-04-30", False),
        ("um", "klines", "2022-05-01", True),
        ("um", "trades", "2022-08-10", False),
        ("um", "trades", "2022-08-11", True),
        ("um", "fundingRate", "2021-01", True),
        ("um", "metrics", "2022-01-01", True),
    ],
)
def test_header_rules(market: str, dataset: str, period: str, header: bool) -> None:
    iv = "1m" if dataset == "klines" else ""
    freq = "monthly" if len(period) == 7 else "daily"
    assert vd.default_header(vt.VFile(market, freq, dataset, "BTCUSDT", iv, period)) is header


def test_spot_switches_to_microseconds_in_2025() -> None:
    assert not vd.micros(vt.VFile("spot", "daily", "trades", "BTCUSDT", "", "2024-12-31"))
    assert vd.micros(vt.VFile("spot", "daily", "trades", "BTCUSDT", "", "2025-01-01"))
    assert not vd.micros(vt.VFile("um", "daily", "trades", "BTCUSDT", "", "2025-01-01"))
    assert date(2025, 1, 1) == vd.SPOT_MICROS_FROM
