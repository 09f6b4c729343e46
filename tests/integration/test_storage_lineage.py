"""What each commit records for incremental consumers: the partitions it touched and the input
versions it consumed; and the changed partitions since a version, read back from the log."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import QueryBuilder, write_deltalake

from lake.schemas import AGG_TRADES, FUNDING, KLINES
from lake.storage import Lake, Scope
from lake.storage.layout import to_stored
from lake.storage.writes import with_partitions
from tests.factories import agg_trades, rows_for

DAY1 = {"market": "um", "date": "2024-01-01"}
DAY2 = {"market": "um", "date": "2024-01-02"}
DAY3 = {"market": "um", "date": "2024-01-03"}
DAY3_DATE = date(2024, 1, 3)


@pytest.fixture
def lake(lake_root: Path) -> Lake:
    lk = Lake(str(lake_root))
    lk.create_all([AGG_TRADES, KLINES, FUNDING])
    return lk


def test_writes_to_two_partitions_are_exactly_the_changed_partitions(lake: Lake) -> None:
    minutes = timedelta(seconds=60)
    day1 = lake.merge(AGG_TRADES, agg_trades(range(100), step=minutes), source="ws")
    day2 = lake.append(AGG_TRADES, agg_trades(range(1440, 1500), step=minutes), source="ws")
    assert (day1.version, day2.version) == (1, 2)
    assert lake.changed_partitions(AGG_TRADES, since=0) == [DAY1, DAY2]
    assert lake.changed_partitions(AGG_TRADES, since=1) == [DAY2]
    assert lake.changed_partitions(AGG_TRADES, since=2) == []
    assert lake.history(AGG_TRADES, limit=1)[0]["lineage"]["partitions"] == [DAY2]
    # the same facts again commit nothing, so nothing changed
    lake.merge(AGG_TRADES, agg_trades(range(100), step=minutes), source="rest")
    assert lake.changed_partitions(AGG_TRADES, since=2) == []


def test_a_write_records_the_input_versions_it_consumed(lake: Lake) -> None:
    inputs = {"bronze.trades": 12, "bronze.klines": 3}
    result = lake.merge(AGG_TRADES, agg_trades(range(10)), source="transform", inputs=inputs)
    lineage = lake.history(AGG_TRADES, limit=1)[0]["lineage"]
    assert result.version == 1 and lineage["inputs"] == inputs
    assert lineage["partitions"] == [DAY1]
    replaced = lake.replace(AGG_TRADES, agg_trades(range(5)), source="transform", inputs={"x": 0})
    assert lake.history(AGG_TRADES, limit=1)[0]["lineage"]["inputs"] == {"x": 0}
    assert replaced.version == 2
    plain = lake.append(AGG_TRADES, agg_trades(range(20, 30)), source="ws")
    assert "inputs" not in lake.history(AGG_TRADES, limit=1)[0]["lineage"]
    assert plain.version == 3
    with pytest.raises(ValueError, match="version must be an integer >= 0"):
        lake.append(AGG_TRADES, agg_trades(range(1)), source="ws", inputs={"bronze.trades": -1})


def test_a_replace_records_the_partitions_it_emptied(lake: Lake) -> None:
    two_days = agg_trades(range(0, 2000), step=timedelta(seconds=60))
    lake.merge(AGG_TRADES, two_days, source="ws")
    only_day1 = agg_trades(range(0, 10), step=timedelta(seconds=60))
    result = lake.replace(
        AGG_TRADES, only_day1, date_range=(date(2024, 1, 1), date(2024, 1, 3)), source="vision"
    )
    assert lake.history(AGG_TRADES, limit=1)[0]["lineage"]["partitions"] == [DAY1, DAY2]
    assert lake.changed_partitions(AGG_TRADES, since=result.version - 1) == [DAY1, DAY2]
    # a scoped replace that only deletes still names the partition it deleted from
    scope = Scope.of({"market": ["um"], "symbol": ["BTCUSDT"]}, dates=(DAY3_DATE, DAY3_DATE))
    lake.append(AGG_TRADES, agg_trades(range(3000, 3010), step=timedelta(seconds=60)), source="ws")
    gone = lake.replace_where(AGG_TRADES, AGG_TRADES.empty(), scope=scope, source="vision")
    assert gone.deleted == 10
    assert lake.history(AGG_TRADES, limit=1)[0]["lineage"]["partitions"] == [DAY3]


def test_commits_without_lineage_fall_back_to_the_log_and_compaction_changes_nothing(
    lake: Lake,
) -> None:
    lake.merge(KLINES, rows_for(KLINES, range(5)), source="ws")
    before = lake.open(KLINES).version()
    foreign = rows_for(KLINES, range(5, 10), day=date(2024, 2, 1))
    write_deltalake(  # another tool's commit: no cryptolake metadata
        lake.uri(KLINES),
        to_stored(KLINES, with_partitions(KLINES, KLINES.conform(foreign))),
        mode="append",
    )
    lake.open(KLINES).optimize.compact()
    changed = lake.changed_partitions(KLINES, since=before)
    assert [p["date"] for p in changed] == ["2024-02-01"]
    assert set(changed[0]) == {"market", "kind", "date"}
    with pytest.raises(ValueError, match="since must be a version"):
        lake.changed_partitions(KLINES, since=-1)


def test_an_unpartitioned_table_that_changed_answers_one_empty_partition(lake: Lake) -> None:
    lake.merge(FUNDING, rows_for(FUNDING, range(3)), source="rest")
    assert lake.changed_partitions(FUNDING, since=0) == [{}]


def test_delta_evaluates_the_scope_as_polars_does(lake: Lake) -> None:
    frame = rows_for(KLINES, range(40))
    lake.merge(KLINES, frame, source="ws")
    symbol = frame["symbol"][0]
    scope = Scope.of({"interval": frame["interval"].unique(), "symbol": [symbol]})
    qb = QueryBuilder().register("t", lake.open(KLINES))
    by_delta = pa.table(qb.execute(f"select count(*) as n from t where {scope.sql(KLINES)}"))
    by_polars = lake.scan(KLINES, with_partitions=True).filter(scope.expr()).collect().height
    assert by_delta["n"][0].as_py() == by_polars > 0
