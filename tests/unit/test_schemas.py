"""The schema module: the 58 gold columns exactly as specified, keys that exist, Delta types."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

from lake.schemas import (
    ALL_TABLES,
    DATE,
    FUTURES_UM_1M,
    TABLES,
    Column,
    TableSpec,
    delta_arrow_schema,
    get_table,
)

F, MS, I32, I64 = pl.Float64, pl.Datetime("ms", "UTC"), pl.Int32, pl.Int64
# BINANCE.md §4, row by row.
GOLD_58 = [
    ("symbol", pl.String),
    ("open_time", MS),
    ("open", F),
    ("high", F),
    ("low", F),
    ("close", F),
    ("volume", F),
    ("quote_volume", F),
    ("trade_count", I32),
    ("taker_buy_volume", F),
    ("taker_buy_quote_volume", F),
    ("mark_open", F),
    ("mark_high", F),
    ("mark_low", F),
    ("mark_close", F),
    ("index_open", F),
    ("index_high", F),
    ("index_low", F),
    ("index_close", F),
    ("premium_open", F),
    ("premium_high", F),
    ("premium_low", F),
    ("premium_close", F),
    ("funding_rate", F),
    ("funding_time", MS),
    ("funding_interval_hours", pl.Int8),
    ("next_funding_time", MS),
    ("funding_rate_est", F),
    ("open_interest", F),
    ("open_interest_value", F),
    ("metrics_time", MS),
    ("top_trader_ls_account_ratio", F),
    ("top_trader_ls_position_ratio", F),
    ("global_ls_account_ratio", F),
    ("taker_buy_sell_vol_ratio", F),
    ("agg_trade_count", I32),
    ("agg_vwap", F),
    ("agg_buy_qty", F),
    ("agg_sell_qty", F),
    ("agg_max_qty", F),
    ("agg_first_id", I64),
    ("agg_last_id", I64),
    ("bid_last", F),
    ("ask_last", F),
    ("bid_qty_last", F),
    ("ask_qty_last", F),
    ("bid_mean", F),
    ("ask_mean", F),
    ("spread_mean", F),
    ("book_update_count", I32),
    ("liq_long_count", I32),
    ("liq_long_qty", F),
    ("liq_short_count", I32),
    ("liq_short_qty", F),
    ("source", pl.String),
    ("source_mask", pl.UInt16),
    ("ingested_at", MS),
    ("batch_id", pl.String),
]


def test_gold_table_has_exactly_the_58_specified_columns() -> None:
    assert len(GOLD_58) == 58
    assert list(FUTURES_UM_1M.polars_schema().items()) == GOLD_58
    assert FUTURES_UM_1M.merge_keys == ("symbol", "open_time")
    assert FUTURES_UM_1M.partition_by == (DATE,)


def test_every_architecture_table_is_declared() -> None:
    expected = {
        "bronze": {
            "agg_trades",
            "trades",
            "book_ticker",
            "mark_price",
            "klines",
            "liquidations",
            "funding",
            "metrics",
        },
        "silver": {"bars_1s"},
        "gold": {"futures_um_1m"},
        "ops": {"sources", "gaps", "quarantine", "validations", "reconciliation"},
    }
    for layer, names in expected.items():
        assert {t.name for t in ALL_TABLES if t.layer == layer} == names


@pytest.mark.parametrize("spec", ALL_TABLES, ids=lambda t: t.key)
def test_keys_and_delta_schema(spec: TableSpec) -> None:
    assert spec.merge_keys and spec.sort_keys
    for key in spec.merge_keys:
        assert not spec.column(key).nullable, f"{spec.key}: merge key {key} must be non-null"
    arrow = delta_arrow_schema(spec)
    assert arrow.names == spec.column_names + list(spec.derived_partitions)
    for field in arrow:
        assert not pa.types.is_unsigned_integer(field.type)  # Delta has none
        if pa.types.is_timestamp(field.type):
            assert field.type == pa.timestamp("us", tz="UTC")
    if spec.layer == "bronze":
        assert {"source", "batch_id"} <= set(spec.column_names)


def test_bronze_keeps_exchange_and_receive_time_apart() -> None:
    for name in ("agg_trades", "trades", "book_ticker", "mark_price", "klines", "liquidations"):
        cols = set(get_table(name).column_names)
        assert "ts_recv" in cols and "event_time" in cols, name


def test_conform_selects_casts_and_rejects() -> None:
    spec = TABLES["bronze.funding"]
    frame = pl.DataFrame(
        {
            "batch_id": ["b"],
            "source": ["rest"],
            "mark_price": [None],
            "funding_interval_hours": [8],
            "funding_rate": ["0.0001"],
            "symbol": ["BTCUSDT"],
            "funding_time": [1_700_000_000_000_000],
        }
    ).with_columns(pl.col("funding_time").cast(pl.Datetime("us", "UTC")))
    out = spec.conform(frame)
    assert out.columns == spec.column_names
    assert out.schema["funding_interval_hours"] == pl.Int8
    with pytest.raises(ValueError, match="missing"):
        spec.conform(frame.drop("symbol"))
    with pytest.raises(ValueError, match="unexpected"):
        spec.conform(frame.with_columns(extra=pl.lit(1)))
    with pytest.raises(ValueError, match="non-nullable"):
        spec.conform(frame.with_columns(symbol=pl.lit(None, pl.String)))


def test_get_table_by_short_or_full_name() -> None:
    assert get_table("agg_trades") is get_table("bronze.agg_trades")
    with pytest.raises(KeyError, match="unknown table"):
        get_table("nope")


def test_spec_validation_catches_bad_keys() -> None:
    with pytest.raises(ValueError, match="unknown columns"):
        TableSpec("ops", "x", (Column("a", pl.Int64, False),), merge_keys=("b",), sort_keys=("a",))
