"""``cryptolake query``: DuckDB over the lake's tables and the views ``bars_1m`` and
``latest_price``, printed as a table, JSON or CSV; bad SQL is one error line and exit 2."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner, Result

import lake
from lake.cli import app
from lake.query import run_query
from lake.schemas import BARS_1S, KLINES, TRADES
from lake.storage import Lake
from tests.factories import rows_for
from tests.integration.test_read_api import seconds, trades

pytestmark = pytest.mark.integration


@pytest.fixture
def lk(lake_root: Path) -> Lake:
    """BTCUSDT trades 0-9 (version 1), then ETHUSDT trades 0-4 (version 2)."""
    out = Lake(str(lake_root))
    out.create(TRADES)
    out.merge(TRADES, trades("BTCUSDT", range(10)), source="rest")
    out.merge(TRADES, trades("ETHUSDT", range(5), step=timedelta(hours=1)), source="rest")
    return out


def cli(store: Lake, *args: str) -> Result:
    return CliRunner().invoke(app, ["--lake", store.root, "query", *args])


def test_latest_price_is_one_row_per_symbol_with_its_last_trade(lk: Lake) -> None:
    done = cli(lk, "select * from latest_price")
    assert done.exit_code == 0, done.stderr
    lines = [ln for ln in done.stdout.splitlines() if "USDT" in ln]
    assert len(lines) == 2
    assert "BTCUSDT" in lines[0] and "109.5" in lines[0]
    assert "ETHUSDT" in lines[1] and "104.5" in lines[1]
    assert "2 row(s)" in done.stdout


def test_json_is_valid_and_nothing_else(lk: Lake) -> None:
    done = cli(lk, "select symbol, price, trade_time from latest_price", "--json")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"symbol": "BTCUSDT", "price": 109.5, "trade_time": "2024-01-03T15:00:00+00:00"},
        {"symbol": "ETHUSDT", "price": 104.5, "trade_time": "2024-01-01T04:00:00+00:00"},
    ]


def test_csv_and_both_names_of_a_table(lk: Lake) -> None:
    sql = (
        "select symbol, count(*) as n from bronze.trades join bronze_trades "
        "using (market, symbol, trade_id) group by symbol order by symbol"
    )
    done = cli(lk, sql, "--csv")
    assert done.exit_code == 0, done.stderr
    assert done.stdout == "symbol,n\nBTCUSDT,10\nETHUSDT,5\n"


def test_as_of_reads_every_named_table_at_that_version(lk: Lake) -> None:
    done = cli(lk, "select symbol from latest_price", "--as-of", "1", "--json")
    assert json.loads(done.stdout) == [{"symbol": "BTCUSDT"}]
    beyond = cli(lk, "select * from latest_price", "--as-of", "3")
    assert beyond.exit_code == 2 and beyond.stdout == ""
    assert beyond.stderr == (
        "error: as_of version 3 is outside the history of bronze.trades (versions 0 to 2)\n"
    )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("selec * from latest_price", 'error: Parser Error: syntax error at or near "selec"'),
        ("select * from nope", "error: Catalog Error: Table with name nope does not exist"),
        ("select nope from bronze.trades", 'Referenced column "nope" not found'),
        ("copy (select 1) to 'out.csv'", "file system operations are disabled"),
    ],
)
def test_bad_sql_is_one_error_line_and_exit_2(
    lk: Lake, sql: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    done = cli(lk, sql)
    assert done.exit_code == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert message in done.stderr
    assert not (tmp_path / "out.csv").exists()


def test_bars_1m_view_matches_the_bars_api(lake_root: Path) -> None:
    store = Lake(str(lake_root))
    store.create(BARS_1S)
    store.merge(BARS_1S, seconds(), source="rest")
    got = run_query(store, "select * from bars_1m")
    expected = lake.bars("BTCUSDT", "1m", root=store).collect()
    assert got.columns == expected.columns
    assert got.height == expected.height == 181
    for name in expected.columns:
        if expected[name].dtype == pl.Float64:
            assert (got[name] - expected[name]).abs().max() < 1e-6, name  # type: ignore[operator]
            assert got[name].null_count() == expected[name].null_count(), name
        else:
            assert got[name].cast(expected[name].dtype).to_list() == expected[name].to_list(), name


def test_klines_show_interval_and_a_missing_table_reads_empty(lake_root: Path) -> None:
    store = Lake(str(lake_root))
    store.create(KLINES)
    store.merge(KLINES, rows_for(KLINES, range(3)), source="rest")
    frame = run_query(store, 'select distinct "interval" from bronze.klines')
    assert frame["interval"].to_list() == ["1m"]
    assert run_query(store, "select count(*) as n from latest_price")["n"].item() == 0
