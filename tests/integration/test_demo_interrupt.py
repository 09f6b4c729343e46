"""Ctrl-C on `cryptolake demo`, run outside the checkout: it stops within seconds with exit 130 and
one clear line, Prefect's embedded settings apply there too, and what it wrote is whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
