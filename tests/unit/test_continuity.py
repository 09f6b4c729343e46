"""Continuity invariants and gap-ledger rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from lake.gaps import gap_id, ledger_rows, mark_repaired
from lake.quality.continuity import cadence_gaps, id_gaps, order_breaks
from lake.schemas import GAPS

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def trades(ids: list[int], symbol: str = "BTCUSDT", market: str = "um") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "market": market,
            "symbol": symbol,
            "agg_trade_id": ids,
            "transact_time": [T0 + timedelta(milliseconds=10 * i) for i in ids],
        }
    )


def test_id_gaps_finds_every_hole_per_symbol_in_any_order() -> None:
    frame = pl.concat(
        [trades([5, 1, 2, 3, 9, 10, 10, 14]), trades([100, 101, 103], symbol="ETHUSDT")]
    )
    gaps = id_gaps(frame, id_col="agg_trade_id", time_col="transact_time")
    assert gaps.select("symbol", "start_id", "end_id", "missing").rows() == [
        ("BTCUSDT", 4, 4, 1),
        ("BTCUSDT", 6, 8, 3),
        ("BTCUSDT", 11, 13, 3),
        ("ETHUSDT", 102, 102, 1),
    ]
    first = gaps.row(0, named=True)
    assert first["start_time"] == T0 + timedelta(milliseconds=30)
    assert first["end_time"] == T0 + timedelta(milliseconds=50)


def test_id_gaps_against_the_last_stored_row() -> None:
    stored = trades([41])
    gaps = id_gaps(trades([45, 46]), id_col="agg_trade_id", time_col="transact_time", after=stored)
    assert gaps.select("start_id", "end_id").rows() == [(42, 44)]
    assert (
        id_gaps(
            trades([42, 43]), id_col="agg_trade_id", time_col="transact_time", after=stored
        ).height
        == 0
    )


def test_cadence_gaps() -> None:
    seconds = [0, 1, 2, 3, 7, 8, 9, 20]
    frame = pl.DataFrame(
        {
            "symbol": "BTCUSDT",
            "event_time": [T0 + timedelta(seconds=s, milliseconds=3) for s in seconds],
        }
    )
    gaps = cadence_gaps(frame, time_col="event_time", every=timedelta(seconds=1))
    assert gaps["missing"].to_list() == [3, 10]
    assert gaps["start_time"].to_list()[0] == T0 + timedelta(seconds=3, milliseconds=3)
    jitter = pl.DataFrame({"symbol": "X", "event_time": [T0, T0 + timedelta(milliseconds=1400)]})
    assert cadence_gaps(jitter, time_col="event_time", every=timedelta(seconds=1)).height == 0


def test_order_breaks() -> None:
    frame = pl.DataFrame(
        {
            "market": "um",
            "symbol": "BTCUSDT",
            "update_id": [10, 12, 11, 20],
            "ts_recv": [T0 + timedelta(seconds=s) for s in range(4)],
        }
    )
    out = order_breaks(frame, id_col="update_id", order_col="ts_recv")
    assert out.select("prev_id", "id").rows() == [(12, 11)]


def test_ledger_rows_are_stable_and_conform() -> None:
    gaps = id_gaps(trades([1, 5]), id_col="agg_trade_id", time_col="transact_time")
    rows = ledger_rows(gaps, table="bronze.agg_trades", kind="id", detected_at=T0)
    again = ledger_rows(gaps, table="bronze.agg_trades", kind="id", detected_at=T0 + timedelta(1))
    assert rows.columns == GAPS.column_names
    assert rows["gap_id"].to_list() == again["gap_id"].to_list()
    assert rows["gap_id"][0] == gap_id("bronze.agg_trades", "um", "BTCUSDT", "id", 2)
    assert rows["status"].to_list() == ["open"]
    fixed = mark_repaired(rows, source="rest", repaired_at=T0, rows=3)
    assert GAPS.conform(fixed).row(0, named=True)["status"] == "repaired"
    cadence = cadence_gaps(
        pl.DataFrame({"symbol": "X", "event_time": [T0, T0 + timedelta(seconds=9)]}),
        time_col="event_time",
        every=timedelta(seconds=1),
    )
    loss = ledger_rows(
        cadence,
        table="bronze.mark_price",
        kind="cadence",
        detected_at=T0,
        status="capture_loss",
        market="um",
    )
    assert loss.row(0, named=True)["start_id"] is None
    assert ledger_rows(cadence.clear(), table="t", kind="k", detected_at=T0).height == 0
