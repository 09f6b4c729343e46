"""``bronze.klines`` stores ``interval`` as ``kline_interval``; tables written before are migrated
by ``cryptolake init`` (``Lake.create_all``), and their old versions still read."""

from __future__ import annotations

from pathlib import Path

import pytest
from deltalake import DeltaTable, write_deltalake

from lake.schemas import KLINES, delta_arrow_schema
from lake.storage import Lake
from lake.storage.writes import with_partitions
from tests.factories import rows_for


def old_klines_table(lake: Lake, ids: range) -> None:
    """bronze.klines as written before the rename: the column stored as ``interval``."""
    schema = delta_arrow_schema(KLINES)
    rows = with_partitions(KLINES, rows_for(KLINES, ids)).select(schema.names)
    write_deltalake(
        lake.uri(KLINES), rows.to_arrow().cast(schema), partition_by=list(KLINES.partition_by)
    )


def test_new_klines_tables_store_interval_under_another_name(lake_root: Path) -> None:
    lake = Lake(str(lake_root))
    lake.create_all([KLINES])
    lake.merge(KLINES, rows_for(KLINES, range(5)), source="rest")
    stored = [f.name for f in DeltaTable(lake.uri(KLINES)).schema().fields]
    assert "kline_interval" in stored and "interval" not in stored
    assert lake.read(KLINES).get_column("interval").to_list() == ["1m"] * 5


def test_init_migrates_an_old_klines_table_and_keeps_its_history(lake_root: Path) -> None:
    lake = Lake(str(lake_root))
    old_klines_table(lake, range(10))
    before = lake.read(KLINES)
    assert before.get_column("interval").to_list() == ["1m"] * 10  # reads need no migration
    with pytest.raises(
        ValueError, match="stores interval under an old name: run `cryptolake init`"
    ):
        lake.merge(KLINES, rows_for(KLINES, range(10, 12)), source="rest")

    assert lake.create_all([KLINES]) == []
    assert lake.read(KLINES).equals(before)
    assert lake.history(KLINES, limit=1)[0]["lineage"]["operation"] == "migrate"
    assert lake.read(KLINES, version=0).equals(before)  # the old layout, by time travel
    lake.merge(KLINES, rows_for(KLINES, range(5, 15)), source="rest")
    assert lake.read(KLINES).height == 15
    assert lake.create_all([KLINES]) == []  # nothing left to migrate: no commit
    assert lake.history(KLINES, limit=1)[0]["lineage"]["operation"] == "merge"
