"""The installed ``cryptolake`` command: outputs, JSON, exit codes, nothing written on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lake.schemas import ALL_TABLES

CLI = str(Path(sys.executable).with_name("cryptolake"))


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")} | (env or {})
    return subprocess.run(
        [CLI, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_init_then_tables_json_lists_every_table_empty(tmp_path: Path) -> None:
    first = run("--lake", "lk", "init", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "15 table(s) created" in first.stdout
    listing = run("--lake", "lk", "tables", "--json", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    tables = json.loads(listing.stdout)  # JSON and nothing else on stdout
    assert [t["table"] for t in tables] == [t.key for t in ALL_TABLES]
    assert all(t["exists"] and t["rows"] == 0 and t["version"] == 0 for t in tables)
    again = run("--lake", "lk", "init", "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["created"] == []


def test_default_root_comes_from_config(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "lake.yaml").write_text("storage: {root: ./from-config}\n")
    assert run("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "from-config" / "bronze" / "agg_trades" / "_delta_log").is_dir()
    env_root = run("init", cwd=tmp_path, env={"LAKE_STORAGE__ROOT": str(tmp_path / "env-root")})
    assert env_root.returncode == 0
    assert (tmp_path / "env-root" / "gold" / "futures_um_1m").is_dir()


def test_history_and_watermark_json(tmp_path: Path) -> None:
    from lake.schemas import AGG_TRADES
    from lake.storage import Lake
    from tests.factories import agg_trades

    lake = Lake(str(tmp_path / "lk"))
    lake.create_all()
    lake.merge(AGG_TRADES, agg_trades(range(20)), source="rest", batch_id="rest:demo")
    hist = run("--lake", "lk", "history", "agg_trades", "--json", cwd=tmp_path)
    assert hist.returncode == 0, hist.stderr
    commits = json.loads(hist.stdout)
    assert commits[0]["lineage"]["batch_id"] == "rest:demo"
    assert commits[0]["lineage"]["rows"] == "20"
    wm = json.loads(run("--lake", "lk", "show-watermark", "--json", cwd=tmp_path).stdout)
    assert wm == [
        {
            "table": "bronze.agg_trades",
            "market": "um",
            "symbol": "BTCUSDT",
            "watermark": "2024-01-01T00:02:13+00:00",
            "rows": 20,
        }
    ]
    human = run("--lake", "lk", "history", "bronze.agg_trades", cwd=tmp_path)
    assert "rest:demo" in human.stdout


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("markets: {spot: {symbols: [btc/usdt]}}\n", "is not a valid symbol"),
        ("storage: {root: ./lk}\nmystery: true\n", "mystery: unknown key"),
        ("storage: {root: ./a-file/lk}\n", "is not writable"),
    ],
)
def test_bad_config_one_line_exit_2_nothing_created(
    tmp_path: Path, config: str, message: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "bad.yaml").write_text(config)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run("--config", "bad.yaml", "init", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_unknown_table_and_missing_lake_exit_2(tmp_path: Path) -> None:
    unknown = run("--lake", "lk", "history", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown table 'nope'" in unknown.stderr
    missing = run("--lake", "lk", "history", "agg_trades", cwd=tmp_path)
    assert missing.returncode == 2 and "cryptolake init" in missing.stderr
    assert not (tmp_path / "lk").exists()


def test_help_is_fast_and_imports_no_heavy_framework(tmp_path: Path) -> None:
    code = (
        "import sys, lake.cli; "
        "heavy = [m for m in ('prefect', 'great_expectations', 'deltalake', 'polars') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert run("--help", cwd=tmp_path).returncode == 0


def test_init_takes_a_new_or_empty_directory_or_a_lake_and_refuses_foreign_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from lake.cli import app

    for key in [k for k in os.environ if k.upper().startswith("LAKE_")]:
        monkeypatch.delenv(key)
    empty_volume = tmp_path / "volume"
    (empty_volume / "lost+found").mkdir(parents=True)
    (empty_volume / ".keep").write_text("")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("x")
    runner = CliRunner()
    for root in (tmp_path / "new" / "lake", empty_volume):
        done = runner.invoke(app, ["--lake", str(root), "init", "--json"])
        assert done.exit_code == 0, done.stderr
        assert len(json.loads(done.stdout)["created"]) == len(ALL_TABLES)
        (root / "notes.txt").write_text("beside a lake, foreign files are fine")
        again = runner.invoke(app, ["--lake", str(root), "init", "--json"])
        assert again.exit_code == 0 and json.loads(again.stdout)["created"] == []
    refused = runner.invoke(app, ["--lake", str(foreign), "init"])
    assert refused.exit_code == 2 and "no cryptolake lake" in refused.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
