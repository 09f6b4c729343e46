"""parse_vision_csv: real archive files and every quirk of BINANCE.md §3.2."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from lake import schemas
from lake.binance.parse import csv_from_zip, has_header, parse_vision_csv

VISION = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "vision"
FUNDING_ZIP = "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-04.zip"
SPOT_1H_ZIP = "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-0{day}.zip"
CM_AGG_ZIP = "data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip"

UM_AGG_HEADER = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
)
METRICS_HEADER = (
    "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
    "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio"
)


def real(key: str) -> bytes:
    path = VISION / key
    if not path.exists():
        pytest.skip(f"real data not available: {path} (shared/realdata beside the checkout)")
    return csv_from_zip(path.read_bytes())


def parse(data: str | bytes, dataset: str, market: str = "um", **kw: str) -> pl.DataFrame:
    raw = data.encode() if isinstance(data, str) else data
    return parse_vision_csv(
        raw, market=market, dataset=dataset, symbol="BTCUSDT", batch_id="v1", **kw
    )


def epoch_us(frame: pl.DataFrame, col: str) -> list[int]:
    return frame.get_column(col).dt.epoch("us").to_list()


def test_real_funding_rate_monthly() -> None:
    f = parse(real(FUNDING_ZIP), "fundingRate")
    assert f.height == 90
    assert f.schema == schemas.FUNDING.polars_schema()
    first = f.row(0, named=True)
    assert first["funding_time"] == datetime(2026, 4, 1, tzinfo=UTC)
    assert (first["funding_rate"], first["funding_interval_hours"]) == ("-0.00003449", 8)
    assert first["mark_price"] is None and first["source"] == "vision"
    assert f.get_column("funding_time").is_sorted()


@pytest.mark.parametrize("day", [8, 9])
def test_real_spot_klines_have_no_header_and_microsecond_times(day: int) -> None:
    data = real(SPOT_1H_ZIP.format(day=day))
    assert not has_header(data.decode().splitlines()[0])
    f = parse(data, "klines", market="spot", interval="1h")
    assert f.height == 24
    assert f.schema == schemas.KLINES.polars_schema()
    start = int(datetime(2026, 5, day, tzinfo=UTC).timestamp()) * 10**6
    assert epoch_us(f, "open_time") == [start + h * 3_600_000_000 for h in range(24)]
    assert epoch_us(f, "close_time")[0] == start + 3_600_000_000 - 1
    row = f.row(0, named=True)
    assert (row["market"], row["kind"], row["interval"]) == ("spot", "trade", "1h")
    if day == 8:
        assert (row["open"], row["trade_count"]) == ("80006.00000000", 67626)


def test_real_cm_agg_trades_with_header() -> None:
    data = real(CM_AGG_ZIP)
    assert data.decode().splitlines()[0] == UM_AGG_HEADER
    f = parse(data, "aggTrades")
    assert f.height == 105_280
    assert f.schema == schemas.AGG_TRADES.polars_schema()
    assert f.get_column("agg_trade_id").is_sorted()
    assert f.get_column("agg_trade_id").n_unique() == f.height
    first = f.row(0, named=True)
    assert (first["agg_trade_id"], first["price"], first["quantity"]) == (
        480537903,
        "79972.8",
        "542.0",
    )
    assert first["is_buyer_maker"] is False and first["is_best_match"] is None
    assert epoch_us(f, "transact_time")[0] == 1778198400020 * 1000
    assert f.get_column("is_buyer_maker").null_count() == 0


AGG_ROWS = "480537903,79972.8,542.0,1123474160,1123474164,1778198400020,false\n" \
           "480537904,79972.9,1.0,1123474165,1123474165,1778198400024,true\n"  # fmt: skip


def test_header_or_not_gives_the_same_rows() -> None:
    with_header = parse(UM_AGG_HEADER + "\n" + AGG_ROWS, "aggTrades")
    without = parse(AGG_ROWS, "aggTrades")
    assert with_header.equals(without) and with_header.height == 2
    bom_crlf = parse(
        "\ufeff" + (UM_AGG_HEADER + "\n" + AGG_ROWS).replace("\n", "\r\n"), "aggTrades"
    )
    assert bom_crlf.equals(without)


def test_spot_agg_trades_true_false_spelling_and_microseconds() -> None:
    rows = "10,1.5,2.0,100,101,1735689600000123,True,True\n" \
           "11,1.6,3.0,102,102,1735689600000456,False,True\n"  # fmt: skip
    f = parse(rows, "aggTrades", market="spot")
    assert f.get_column("is_buyer_maker").to_list() == [True, False]
    assert f.get_column("is_best_match").to_list() == [True, True]
    assert epoch_us(f, "transact_time") == [1735689600000123, 1735689600000456]
    assert f.get_column("market").to_list() == ["spot", "spot"]


def test_milliseconds_and_microseconds_in_one_file_are_both_normalised() -> None:
    rows = "1,1.0,1.0,1,1,1735689599999,true\n2,1.0,1.0,2,2,1735689600000001,false\n"
    assert epoch_us(parse(rows, "aggTrades"), "transact_time") == [
        1735689599999000,
        1735689600000001,
    ]


def test_interleaved_ids_are_sorted_and_exact_duplicates_dropped() -> None:
    rows = AGG_ROWS.splitlines()
    shuffled = "\n".join([rows[1], rows[0], rows[1]]) + "\n"
    f = parse(UM_AGG_HEADER + "\n" + shuffled, "aggTrades")
    assert f.get_column("agg_trade_id").to_list() == [480537903, 480537904]


def test_bad_boolean_is_an_error_not_a_false() -> None:
    with pytest.raises(ValueError, match="is_buyer_maker holds 'yes'"):
        parse("1,1.0,1.0,1,1,1735689599999,yes\n", "aggTrades")
    with pytest.raises(ValueError, match="aggTrades: unreadable CSV"):
        parse("1,1.0,1.0,x,1,1735689599999,true\n", "aggTrades")
    with pytest.raises(ValueError, match="create_time is not"):
        parse(METRICS_HEADER + "\n01/01/2024,BTCUSDT,1,1,1,1,1,1\n", "metrics")


def test_trades_um_header_and_spot_without() -> None:
    um = parse(
        "id,price,qty,quote_qty,time,is_buyer_maker\n5,10.0,0.5,5.0,1700000000000,true\n", "trades"
    )
    assert um.row(0, named=True)["trade_id"] == 5 and um.row(0, named=True)["quote_qty"] == "5.0"
    spot = parse("7,10.0,0.5,5.0,1735689600000000,False,True\n", "trades", market="spot")
    assert spot.row(0, named=True)["is_best_match"] is True
    assert spot.schema == schemas.TRADES.polars_schema()


def test_mark_index_premium_klines() -> None:
    line = "1704067200000,-0.00042931,-0.0004,-0.0005,-0.00041,0,1704067259999,0,12,0,0,0\n"
    for dataset, kind in (
        ("markPriceKlines", "mark"),
        ("indexPriceKlines", "index"),
        ("premiumIndexKlines", "premium"),
    ):
        header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        header += "taker_buy_volume,taker_buy_quote_volume,ignore\n"
        f = parse(header + line, dataset, interval="1m")
        row = f.row(0, named=True)
        assert (row["kind"], row["open"], row["volume"], row["trade_count"]) == (
            kind,
            "-0.00042931",
            "0",
            12,
        )
    with pytest.raises(ValueError, match="needs the kline interval"):
        parse(line, "klines")


def test_metrics_naive_time_is_utc_empty_ratios_null_and_repeats_dropped() -> None:
    a = "2024-01-01 00:05:00,BTCUSDT,72000.1,3000000000.5,1.5,1.6,1.7,0.9"
    b = "2024-01-01 00:00:00,BTCUSDT,71000.1,2900000000.5,,,1.2,"
    f = parse("\n".join([METRICS_HEADER, a, b, a, b]) + "\n", "metrics")
    assert f.height == 2
    assert f.get_column("create_time").to_list() == [
        datetime(2024, 1, 1, 0, 0, tzinfo=UTC),
        datetime(2024, 1, 1, 0, 5, tzinfo=UTC),
    ]
    first = f.row(0, named=True)
    assert first["count_toptrader_long_short_ratio"] is None
    assert first["sum_taker_long_short_vol_ratio"] is None
    assert first["count_long_short_ratio"] == "1.2" and first["symbol"] == "BTCUSDT"
    assert f.schema == schemas.METRICS.polars_schema()


def test_book_ticker_and_liquidation_snapshot() -> None:
    bt = ("update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,"
          "event_time\n2,1.0,2.0,1.1,3.0,1711756800001,1711756800003\n"
          "1,1.0,2.0,1.1,3.0,1711756800000,1711756800002\n")  # fmt: skip
    f = parse(bt, "bookTicker")
    assert f.get_column("update_id").to_list() == [1, 2]
    assert f.row(0, named=True)["ts_recv"] is None and f.row(0, named=True)["bid_qty"] == "2.0"
    liq_header = ("time,side,order_type,time_in_force,original_quantity,price,average_price,"
                  "order_status,last_fill_quantity,accumulated_fill_quantity\n")  # fmt: skip
    row = "1711756800000,SELL,LIMIT,IOC,0.014,9910,9910,FILLED,0.014,0.014\n"
    liq = parse(liq_header + row + row + row.replace("SELL", "BUY"), "liquidationSnapshot")
    assert liq.height == 2 and sorted(liq.get_column("side").to_list()) == ["BUY", "SELL"]
    assert liq.schema == schemas.LIQUIDATIONS.polars_schema()


def test_layout_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="has 3 fields, expected 7 or 8"):
        parse("1,2,3\n", "aggTrades")
    with pytest.raises(ValueError, match="unexpected header"):
        parse("a,b,c,d,e,f,g\n1,1.0,1.0,1,1,1,true\n", "aggTrades")
    with pytest.raises(ValueError, match="no CSV parser for 'bookDepth'"):
        parse("x\n", "bookDepth")


def test_empty_file_gives_an_empty_conformed_table() -> None:
    f = parse(b"", "aggTrades")
    assert f.height == 0 and f.schema == schemas.AGG_TRADES.polars_schema()
    g = parse(UM_AGG_HEADER + "\n", "aggTrades")
    assert g.height == 0 and g.schema == schemas.AGG_TRADES.polars_schema()


def test_csv_from_zip() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("X.csv", "a\n")
    assert csv_from_zip(buf.getvalue()) == b"a\n"
    with pytest.raises(ValueError, match="truncated or corrupt"):
        csv_from_zip(buf.getvalue()[:20])
