"""``cryptolake backfill``: bad input is one line and exit 2 with nothing written; ``--dry-run``
prints the plan and fetches nothing; ``--json`` prints JSON only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lake.exchange.clock import Clock
from tests.exchange_helpers import ms

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("cryptolake"))
SMALL = {"agg_rate": 0.02, "book_rate": 0.02, "liq_per_hour": 2}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    cmd = [CLI, "--lake", "lk", "backfill", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-02-30"], "bad --start '2024-02-30': expected a date YYYY-MM-DD"),
        (["--start", "2024-03-05"], "--end 2024-03-02 is before --start 2024-03-05"),
        (["--end", "2999-01-01"], "--end 2999-01-01 is in the future (today is "),
        (["--datasets", "klines,depth"], "unknown dataset 'depth' in --datasets"),
        (["--symbols", "BTC/USDT"], "bad symbol 'BTC/USDT' in --symbols"),
        (["--markets", "futures"], "unknown market 'futures' in --markets"),
        (["--source", "s3"], "unknown --source 's3' (use auto, vision or rest)"),
        (["--markets", "spot", "--datasets", "metrics"], "metrics exists only on um"),
        (["--exchange", "ftp://x"], "exchange: 'ftp://x' is not an exchange"),
    ],
)
def test_bad_input_is_one_error_line_exit_2_and_nothing_written(
    tmp_path: Path, args: list[str], message: str
) -> None:
    from typer.testing import CliRunner

    from lake.cli import app

    base = ["--lake", str(tmp_path / "lk"), "backfill", "--symbols", "BTCUSDT"]
    base += ["--start", "2024-03-01", "--end", "2024-03-02"]
    base += ["--exchange", "http://127.0.0.1:9"]  # never reached: input is checked first
    r = CliRunner().invoke(app, [*base, *args])  # in-process: nine interpreters cost 9 s
    assert r.exit_code == 2, r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr
    assert not (tmp_path / "lk").exists()


def test_an_end_past_the_exchanges_today_is_refused(exchange_factory: Any, tmp_path: Path) -> None:
    ex = exchange_factory(clock=Clock(ms("2024-04-10T12:00:00"), speed=0), symbol_overrides=SMALL)
    args = ["--symbols", "BTCUSDT", "--start", "2024-04-09", "--end", "2024-04-11"]
    r = cli(*args, "--exchange", ex.base_url, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == (
        f"error: --end 2024-04-11 is in the future for the exchange at {ex.base_url} "
        "(its today is 2024-04-10)\n"
    )
    assert not (tmp_path / "lk").exists() and ex.stats.vision_requests == 0


def test_dry_run_prints_the_plan_and_writes_nothing(exchange_factory: Any, tmp_path: Path) -> None:
    ex = exchange_factory(clock=Clock(ms("2024-04-10T12:00:00"), speed=0), symbol_overrides=SMALL)
    args = ["--symbols", "BTCUSDT", "--start", "2024-03-01", "--end", "2024-04-10"]
    args += ["--datasets", "aggTrades,bookTicker,fundingRate", "--exchange", ex.base_url]
    r = cli(*args, "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "backfill plan: BTCUSDT on spot,um, 2024-03-01 to 2024-04-10" in out
    assert "vision monthly" in out  # March is wanted whole and published: one file
    assert "rest (not in the archive yet)" in out  # the tail: 04-10 and anything unpublished
    assert "the archive ended 2024-03-30; no REST route for bookTicker" in out
    assert "REST day(s) to fetch; 0 day(s) held" in out
    js = cli(*args, "--dry-run", "--json", cwd=tmp_path)
    plan = json.loads(js.stdout)
    actions = {(r["market"], r["dataset"], r["action"]) for r in plan["plan"]}
    assert ("spot", "aggTrades", "vision monthly") in actions
    assert ("um", "fundingRate", "vision monthly") in actions
    assert plan["files"] > 0 and plan["bytes"] > 0
    assert not (tmp_path / "lk").exists() and ex.stats.vision_requests == 0  # nothing fetched


def test_json_run_prints_only_the_summary(exchange_factory: Any, tmp_path: Path) -> None:
    ex = exchange_factory(clock=Clock(ms("2024-04-10T12:00:00"), speed=0), symbol_overrides=SMALL)
    args = ["--symbols", "ETHUSDT", "--start", "2024-04-08", "--end", "2024-04-09"]
    args += ["--markets", "um", "--datasets", "klines,metrics", "--exchange", ex.base_url]
    r = cli(*args, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["statuses"] == {"ingested": 4}
    assert summary["rows"] == 2 * 1440 + 2 * 288 and summary["throttled"] == 0
    again = json.loads(cli(*args, "--json", cwd=tmp_path).stdout)
    assert again["statuses"] == {} and again["held_days"] == 4 and again["rows"] == 0


def test_days_before_a_listing_are_skipped_and_said_so(
    exchange_factory: Any, tmp_path: Path
) -> None:
    ex = exchange_factory(clock=Clock(ms("2020-01-03T12:00:00"), speed=0), symbol_overrides=SMALL)
    args = ["--symbols", "BTCUSDT", "--start", "2019-12-30", "--end", "2020-01-02"]
    args += ["--markets", "um", "--datasets", "klines", "--exchange", ex.base_url]
    r = cli(*args, "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["before_listing_days"] == 2
    assert [(g["first"], g["last"], g["kind"]) for g in summary["gaps"]] == [
        ("2019-12-30", "2019-12-31", "before listing")
    ]
    keys = [o["key"] for o in summary["outcomes"]]
    assert len(keys) == 2 and not any("2019-" in k for k in keys)  # only listed days fetched
    human = cli(*args, "--dry-run", cwd=tmp_path)
    assert "before listing: listed 2020-01-01" in human.stdout
