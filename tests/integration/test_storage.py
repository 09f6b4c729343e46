"""The Delta storage layer: idempotent merges, partition replaces, lineage, time travel."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lake.schemas import AGG_TRADES, ALL_TABLES, FUNDING, FUTURES_UM_1M, GAPS
from lake.storage import Lake, Scope, content_hash
from tests.factories import T0, agg_trades


@pytest.fixture
def lake(lake_root: Path) -> Lake:
    lk = Lake(str(lake_root))
    lk.create_all()
    return lk


def test_create_all_is_idempotent_and_tables_start_empty(lake_root: Path) -> None:
    lake = Lake(str(lake_root))
    assert len(lake.create_all()) == len(ALL_TABLES)
    assert lake.create_all() == []
    for spec in ALL_TABLES:
        assert (lake_root / spec.layer / spec.name / "_delta_log").is_dir()
        stats = lake.stats(spec)
        assert (stats.rows, stats.version, stats.files) == (0, 0, 0)
        assert lake.read(spec).schema == spec.polars_schema()


def test_writing_the_same_batch_twice_changes_nothing(lake: Lake) -> None:
    batch = agg_trades(range(1000))
    first = lake.merge(AGG_TRADES, batch, source="rest", batch_id="b1")
    assert (first.inserted, first.updated, first.version) == (1000, 0, 1)
    second = lake.merge(AGG_TRADES, batch, source="rest", batch_id="b2")
    assert (second.inserted, second.updated, second.version) == (0, 0, None)
    assert lake.open(AGG_TRADES).version() == 1
    table = lake.read(AGG_TRADES)
    assert table.height == 1000
    assert table["agg_trade_id"].n_unique() == 1000
    # the same facts arriving from another batch or source are still the same facts
    again = lake.merge(AGG_TRADES, batch.with_columns(source=pl.lit("vision")), source="vision")
    assert not again.committed


def test_overlapping_batches_and_in_batch_duplicates(lake: Lake) -> None:
    lake.merge(AGG_TRADES, agg_trades(range(0, 600)), source="ws")
    overlap = pl.concat([agg_trades(range(400, 1000)), agg_trades(range(900, 950))])
    result = lake.merge(AGG_TRADES, overlap, source="rest")
    assert (result.inserted, result.updated) == (400, 0)
    ids = lake.read(AGG_TRADES)["agg_trade_id"]
    assert ids.sort().to_list() == list(range(1000))


def test_changed_rows_are_updated_and_old_values_stay_in_time_travel(lake: Lake) -> None:
    lake.merge(AGG_TRADES, agg_trades(range(10)), source="vision", batch_id="v1")
    fixed = agg_trades(range(3), price="42000.20")
    result = lake.merge(AGG_TRADES, fixed, source="vision", batch_id="v2")
    assert (result.inserted, result.updated) == (0, 3)
    now = lake.read(AGG_TRADES).sort("agg_trade_id")
    assert now["price"].to_list()[:4] == ["42000.20"] * 3 + ["42000.10"]
    before = lake.read(AGG_TRADES, version=1).sort("agg_trade_id")
    assert before["price"].to_list()[:3] == ["42000.10"] * 3
    kept = lake.merge(AGG_TRADES, agg_trades(range(3)), source="ws", update="never")
    assert not kept.committed


def test_time_travel_by_timestamp(lake: Lake) -> None:
    lake.merge(AGG_TRADES, agg_trades(range(5)), source="rest")
    between = datetime.now(UTC)
    time.sleep(0.05)
    lake.merge(AGG_TRADES, agg_trades(range(5, 8)), source="rest")
    assert lake.read(AGG_TRADES).height == 8
    assert lake.read(AGG_TRADES, as_of=between).height == 5
    with pytest.raises(ValueError, match="not both"):
        lake.read(AGG_TRADES, version=1, as_of=between)


def test_history_carries_the_lineage(lake: Lake) -> None:
    batch = agg_trades(range(100))
    lake.merge(AGG_TRADES, batch, source="vision", batch_id="vision:2024-01-01:abc", note="k")
    newest = lake.history(AGG_TRADES, limit=1)[0]
    assert newest["version"] == 1 and newest["operation"] == "MERGE"
    lineage = newest["lineage"]
    assert lineage["batch_id"] == "vision:2024-01-01:abc"
    assert lineage["source"] == "vision"
    assert lineage["rows"] == "100"
    assert lineage["operation"] == "merge"
    assert lineage["table"] == "bronze.agg_trades"
    assert lineage["content_hash"] == content_hash(batch)
    assert lineage["time_min"].startswith("2024-01-01 00:00:00")
    assert [c["version"] for c in lake.history(AGG_TRADES)] == [1, 0]
    # each row carries the batch id of the commit that wrote it, whatever the frame said
    assert set(lake.read(AGG_TRADES)["batch_id"]) == {"vision:2024-01-01:abc"}


def test_content_hash_ignores_order_and_arrival_columns() -> None:
    batch = agg_trades(range(50))
    assert content_hash(batch) == content_hash(batch.reverse())
    assert content_hash(batch) == content_hash(batch.with_columns(batch_id=pl.lit("other")))
    assert content_hash(batch) != content_hash(agg_trades(range(50), price="1"))


def test_replace_where_a_scope_narrower_than_a_partition(lake: Lake) -> None:
    lake.merge(AGG_TRADES, agg_trades(range(0, 10)), source="ws", batch_id="btc-ws")
    lake.merge(AGG_TRADES, agg_trades(range(0, 10), symbol="ETHUSDT"), source="ws", batch_id="eth")
    # the archive's BTCUSDT rows: 0..4 with another price, 5..9 absent, 10..11 new
    file_rows = pl.concat(
        [agg_trades(range(0, 5), price="1.5"), agg_trades(range(10, 12), price="1.5")]
    )
    result = lake.replace_where(
        AGG_TRADES,
        file_rows,
        scope=Scope.of({"market": ["um"], "symbol": ["BTCUSDT"]}),
        source="vision",
        batch_id="btc-vision",
    )
    assert (result.inserted, result.updated, result.deleted) == (2, 5, 5)
    table = lake.read(AGG_TRADES)
    btc = table.filter(pl.col("symbol") == "BTCUSDT").sort("agg_trade_id")
    assert btc["agg_trade_id"].to_list() == [0, 1, 2, 3, 4, 10, 11]
    assert set(btc["price"]) == {"1.5"} and set(btc["batch_id"]) == {"btc-vision"}
    eth = table.filter(pl.col("symbol") == "ETHUSDT")
    assert eth.height == 10 and set(eth["batch_id"]) == {"eth"}  # outside the scope: untouched
    assert lake.history(AGG_TRADES, limit=1)[0]["lineage"]["operation"] == "replace"


def test_replace_a_partition_range(lake: Lake) -> None:
    two_days = agg_trades(range(0, 2000), step=timedelta(seconds=60))  # 2000 minutes
    lake.merge(AGG_TRADES, two_days, source="ws")
    assert sorted(lake.read(AGG_TRADES)["transact_time"].dt.date().unique()) == [
        date(2024, 1, 1),
        date(2024, 1, 2),
    ]
    day1 = agg_trades(range(0, 100), step=timedelta(seconds=60))
    result = lake.replace(
        AGG_TRADES,
        day1,
        where={"market": ["um"]},
        date_range=(date(2024, 1, 1), date(2024, 1, 1)),
        source="vision",
    )
    assert result.committed
    table = lake.read(AGG_TRADES)
    by_day = table.group_by(pl.col("transact_time").dt.date().alias("d")).len().sort("d")
    assert by_day["len"].to_list() == [100, 2000 - 1440]
    with pytest.raises(ValueError, match="outside the replaced range"):
        lake.replace(
            AGG_TRADES, two_days, date_range=(date(2024, 1, 1), date(2024, 1, 1)), source="vision"
        )
    with pytest.raises(ValueError, match="unpartitioned"):
        lake.replace(FUNDING, FUNDING.empty(), source="rest")


def test_partition_values_with_quotes_are_escaped(lake: Lake) -> None:
    frame = agg_trades(range(3), market="o'hara")
    assert lake.merge(AGG_TRADES, frame, source="rest").inserted == 3
    assert lake.merge(AGG_TRADES, frame, source="rest").inserted == 0


def test_watermarks_come_from_the_table(lake: Lake) -> None:
    lake.merge(AGG_TRADES, agg_trades(range(10)), source="ws")
    lake.merge(AGG_TRADES, agg_trades(range(5), symbol="ETHUSDT", market="spot"), source="ws")
    wm = lake.watermarks(AGG_TRADES)
    assert wm.columns == ["market", "symbol", "watermark", "rows"]
    assert wm.rows() == [
        ("spot", "ETHUSDT", T0 + timedelta(seconds=28), 5),
        ("um", "BTCUSDT", T0 + timedelta(seconds=63), 10),
    ]


def test_gold_round_trips_logical_types(lake: Lake) -> None:
    row = {c.name: None for c in FUTURES_UM_1M.columns} | {
        "symbol": "BTCUSDT",
        "open_time": T0,
        "source": "vision",
        "source_mask": 511,
        "ingested_at": T0,
        "batch_id": "b",
    }
    frame = pl.DataFrame([row], schema=FUTURES_UM_1M.polars_schema())
    lake.merge(FUTURES_UM_1M, frame, source="vision")
    back = lake.read(FUTURES_UM_1M)
    assert back.schema == FUTURES_UM_1M.polars_schema()
    assert back.row(0, named=True)["source_mask"] == 511


def test_unpartitioned_ops_table_merges(lake: Lake) -> None:
    gap = pl.DataFrame(
        [
            {c.name: None for c in GAPS.columns}
            | {
                "gap_id": "g1",
                "table_name": "bronze.agg_trades",
                "market": "um",
                "symbol": "BTCUSDT",
                "kind": "id",
                "start_id": 5,
                "end_id": 9,
                "detected_at": T0,
                "status": "open",
            }
        ],
        schema=GAPS.polars_schema(),
    )
    assert lake.merge(GAPS, gap, source="ws").inserted == 1
    repaired = gap.with_columns(status=pl.lit("repaired"), detected_at=pl.lit(T0 + timedelta(1)))
    assert lake.merge(GAPS, repaired, source="rest").updated == 1
    assert lake.read(GAPS)["status"].to_list() == ["repaired"]


def test_missing_table_is_a_clear_error(lake_root: Path) -> None:
    with pytest.raises(LookupError, match="cryptolake init"):
        Lake(str(lake_root)).history(AGG_TRADES)


def test_insert_only_path_appends_just_the_new_keys(lake: Lake) -> None:
    lake.merge(AGG_TRADES, agg_trades(range(0, 100)), source="vision", batch_id="v")
    result = lake.merge(
        AGG_TRADES, agg_trades(range(50, 150), price="9"), source="ws", batch_id="w", update="never"
    )
    assert (result.operation, result.inserted, result.updated) == ("insert", 50, 0)
    table = lake.read(AGG_TRADES).sort("agg_trade_id")
    assert table["agg_trade_id"].to_list() == list(range(150))
    assert set(table.filter(pl.col("agg_trade_id") < 100)["price"]) == {"42000.10"}  # kept
    assert set(table.filter(pl.col("agg_trade_id") >= 100)["batch_id"]) == {"w"}


def test_insert_only_path_finds_stored_keys_whose_times_differ_in_precision(lake: Lake) -> None:
    """Copies of one trade carry times a fraction of a millisecond apart (the archive's µs, the
    stream's ms): the read of stored keys is pruned by time, and that must not hide them."""
    archive = agg_trades(range(0, 100), source="vision")
    lake.merge(AGG_TRADES, archive, source="vision", batch_id="v")
    lake.merge(AGG_TRADES, agg_trades(range(5000, 5010)), source="rest", batch_id="far")
    # id 99 is stored at a time just before the earliest time of this batch
    live = agg_trades(range(99, 120), start=T0 + timedelta(microseconds=999), source="ws")
    result = lake.merge(AGG_TRADES, live, source="ws", batch_id="w", update="never")
    assert result.inserted == 20
    table = lake.read(AGG_TRADES)
    assert table.height == table["agg_trade_id"].n_unique() == 130


def test_insert_only_path_repairs_a_race(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer commits the same keys between the existence check and the append: the
    post-commit check finds the duplicates and leaves one row per key, the archive's or REST's
    row over the WebSocket's, each with the batch id of the commit that first wrote it."""
    from lake.storage import writes

    lake.merge(AGG_TRADES, agg_trades(range(0, 50)), source="rest", batch_id="early")
    real = writes._keys_in_range
    calls: list[int] = []

    def read_then_other_writer_commits(*args: object, **kwargs: object) -> pl.DataFrame:
        seen = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            other = agg_trades(range(50, 100), source="rest")
            lake.merge(AGG_TRADES, other, source="rest", batch_id="rest-first")
        return seen

    monkeypatch.setattr(writes, "_keys_in_range", read_then_other_writer_commits)
    late = agg_trades(range(50, 150), source="ws")
    result = lake.merge(AGG_TRADES, late, source="ws", batch_id="ws-late", update="never")
    table = lake.read(AGG_TRADES)
    assert table.height == table["agg_trade_id"].n_unique() == 150
    kept = table.filter(pl.col("agg_trade_id").is_between(50, 99))
    assert set(kept["source"]) == {"rest"} and set(kept["batch_id"]) == {"rest-first"}
    assert set(table.filter(pl.col("agg_trade_id") >= 100)["batch_id"]) == {"ws-late"}
    assert lake.history(AGG_TRADES, limit=1)[0]["lineage"]["source"] == "dedupe"
    assert result.version == lake.open(AGG_TRADES).version()
