"""Ctrl-C on long commands: `cryptolake demo` (run outside the checkout, so Prefect's embedded
settings must apply there too) and `backfill` stop within seconds with exit 130 and one clear
line, and what they wrote is whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lake.exchange.testing import exchange_factory  # noqa: F401
from lake.schemas import AGG_TRADES
from lake.storage import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("target", ["process", "group"])
def test_sigint_stops_the_demo_within_seconds_with_exit_130(tmp_path: Path, target: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKE_", "PREFECT_"))}
    env |= {"HOME": str(tmp_path / "home"), "DO_NOT_TRACK": "1"}
    err = tmp_path / "stderr.txt"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lake.cli", "--lake", str(tmp_path / "lake"), "demo"],
            cwd=tmp_path,  # no prefect.toml here
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # a terminal's process group of its own
        )
        deadline = time.monotonic() + 120
        while "collecting" not in err.read_text() and "exchange:" not in err.read_text():
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "the demo never started capturing"
            time.sleep(0.5)
        time.sleep(4)  # capture under way
        asked = time.monotonic()
        (os.killpg if target == "group" else os.kill)(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=30)
        took = time.monotonic() - asked
    text = err.read_text()
    assert code == 130, text
    assert took < 10, f"stopped after {took:.1f} s"
    assert "Traceback" not in text and "database is locked" not in text, text
    assert [line for line in text.splitlines() if line.startswith("interrupted:")], text
    assert (
        tmp_path / "home" / ".cryptolake" / "prefect"
    ).is_dir()  # not ./.prefect, not ~/.prefect
    assert not (tmp_path / ".prefect").exists()
    rows = Lake(str(tmp_path / "lake")).read(AGG_TRADES)  # what it landed reads back whole
    assert (
        rows.height > 0
        and rows.select("market", "symbol", "agg_trade_id").is_duplicated().sum() == 0
    )


def test_sigint_stops_a_backfill_with_exit_130_and_leaves_no_download_folder(
    exchange_factory: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    ex = exchange_factory(symbols="um:BTCUSDT")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    args = ["--symbols", "BTCUSDT", "--markets", "um", "--datasets", "aggTrades"]
    args += ["--start", "2025-01-01", "--end", "2025-03-01", "--exchange", ex.base_url]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lake.cli", "--lake", str(tmp_path / "lake"), "backfill", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    work = tmp_path / "lake" / "_work" / "backfill"
    deadline = time.monotonic() + 60
    while not (work.is_dir() and any(work.iterdir())):  # downloading
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted:"), err
    assert list(work.iterdir()) == []
