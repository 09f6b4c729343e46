"""A damaged Delta log is one ``error:`` line naming the table and the file, never a traceback or
wrong numbers; ``cryptolake doctor`` names it and says how to recover."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from deltalake import DeltaTable
from typer.testing import CliRunner

from lake.cli import app
from lake.schemas import ALL_TABLES, TRADES
from lake.storage import DamagedTableError, Lake
from tests.factories import rows_for

REPO = Path(__file__).resolve().parents[2]
COMMITS = 3  # merges after the create: versions 1..3
LAST = f"{COMMITS:020d}.json"


def damage(kind: str, data: bytes) -> bytes:
    if kind == "truncated":
        return data[: len(data) // 2]
    if kind == "garbage":
        return b"\x00\x17 not a commit {{{\n" * 3
    return b""  # empty


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """Every table created; bronze.trades with three merges (versions 1..3)."""
    lake = Lake(str(tmp_path / "lk"))
    lake.create_all()
    for k in range(COMMITS):
        lake.merge(TRADES, rows_for(TRADES, range(k * 10, k * 10 + 10)), source="rest")
    return lake


def log_file(lake: Lake, name: str = LAST) -> Path:
    return Path(lake.uri(TRADES)) / "_delta_log" / name


def cli(lake: Lake, *args: str) -> Result:
    return CliRunner().invoke(app, ["--lake", lake.root, *args])


def assert_one_error_line(r: Result, *names: str) -> None:
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit)  # no traceback
    for name in names:
        assert name in r.stderr


@pytest.mark.parametrize("kind", ["truncated", "garbage", "empty"])
def test_a_damaged_last_commit_is_one_error_line_in_every_reading_command(
    lake: Lake, kind: str
) -> None:
    path = log_file(lake)
    path.write_bytes(damage(kind, path.read_bytes()))

    for args in (["tables"], ["tables", "--json"], ["history", "trades"], ["show-watermark"]):
        assert_one_error_line(cli(lake, *args), "table bronze.trades", str(path))

    with pytest.raises(DamagedTableError, match=f"commit file {path} is damaged"):
        lake.read(TRADES)
    # the versions before it read whole by time travel
    assert lake.read(TRADES, version=COMMITS - 1).height == (COMMITS - 1) * 10

    doctor = cli(lake, "doctor")
    assert doctor.exit_code == 1
    assert f"damaged  bronze.trades  commit file {path} is damaged (" in doctor.stdout
    assert f"time travel to version {COMMITS - 1}, the last good one" in doctor.stdout
    report = json.loads(cli(lake, "doctor", "--json").stdout)  # JSON and nothing else
    assert report["ok"] is False and report["damaged"] == ["bronze.trades"]
    trades = next(t for t in report["tables"] if t["table"] == "bronze.trades")
    assert trades["last_good_version"] == COMMITS - 1
    assert [d["file"] for d in trades["damage"]] == [str(path)]


def test_the_installed_command_prints_no_traceback(lake: Lake) -> None:
    path = log_file(lake)
    path.write_bytes(damage("truncated", path.read_bytes()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    r = subprocess.run(
        [sys.executable, "-m", "lake.cli", "--lake", lake.root, "tables"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr == (
        f"error: table bronze.trades: commit file {path} is damaged (line 1 is not valid JSON) "
        "(run `cryptolake doctor`)\n"
    )


def test_a_missing_commit_is_named_with_the_versions_around_it(lake: Lake) -> None:
    log_file(lake, f"{2:020d}.json").unlink()
    r = cli(lake, "history", "bronze.trades")
    assert_one_error_line(r, f"{2:020d}.json is missing (the log goes from version 1 to 3)")
    report = json.loads(cli(lake, "doctor", "--json").stdout)
    trades = next(t for t in report["tables"] if t["table"] == "bronze.trades")
    assert trades["last_good_version"] == 1


def test_a_damaged_checkpoint_is_named(lake: Lake) -> None:
    DeltaTable(lake.uri(TRADES)).create_checkpoint()
    (checkpoint,) = log_file(lake).parent.glob("*.checkpoint.parquet")
    checkpoint.write_bytes(b"not parquet")
    r = cli(lake, "doctor")
    assert r.exit_code == 1
    assert f"checkpoint file {checkpoint} is damaged (not a Parquet file)" in r.stdout
    assert "_last_checkpoint out of _delta_log" in r.stdout


def test_doctor_on_a_whole_lake_says_so_and_exits_0(lake: Lake, tmp_path: Path) -> None:
    r = cli(lake, "doctor")
    assert r.exit_code == 0, r.stdout
    assert f"ok       bronze.trades  version {COMMITS}" in r.stdout
    assert r.stdout.rstrip().endswith("every table's log is whole")
    report = json.loads(cli(lake, "doctor", "--json").stdout)
    assert report["ok"] is True and report["damaged"] == []
    assert [t["status"] for t in report["tables"]] == ["ok"] * len(ALL_TABLES)
    empty = CliRunner().invoke(app, ["--lake", str(tmp_path / "none"), "doctor", "--json"])
    assert empty.exit_code == 0
    assert {t["status"] for t in json.loads(empty.stdout)["tables"]} == {"absent"}


def test_following_the_advice_makes_the_table_whole_at_the_last_good_version(lake: Lake) -> None:
    path = log_file(lake)
    path.write_bytes(b"")
    path.rename(path.with_suffix(".damaged"))  # "move … out of _delta_log"
    assert cli(lake, "doctor").exit_code == 0
    assert lake.stats(TRADES).version == COMMITS - 1
    lake.merge(TRADES, rows_for(TRADES, range(100, 110)), source="rest")  # and writes go on
    assert lake.read(TRADES).height == COMMITS * 10
