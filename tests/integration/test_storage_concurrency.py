"""Two processes merging overlapping batches into one table at once: nothing lost, nothing twice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lake.schemas import AGG_TRADES
from lake.storage import Lake

REPO = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import sys
    from lake.schemas import AGG_TRADES
    from lake.storage import Lake
    from tests.factories import agg_trades

    root, worker, batches, update = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    lake = Lake(root)
    retries = 0
    for k in range(batches):
        lo = k * 400 + worker * 200          # every batch overlaps the other worker's by half
        r = lake.merge(AGG_TRADES, agg_trades(range(lo, lo + 400)), source="rest",
                       batch_id=f"w{worker}-{k}", update=update)
        retries += r.attempts - 1
    print(retries)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "updates",
    [("changed", "changed"), ("never", "changed"), ("never", "never")],
    ids=["merge-merge", "insert-merge", "insert-insert"],
)
def test_two_processes_merge_overlapping_batches(lake_root: Path, updates: tuple[str, str]) -> None:
    lake = Lake(str(lake_root))
    lake.create_all([AGG_TRADES])
    batches = 15
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(lake_root), str(w), str(batches), updates[w]],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in (0, 1)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    retries = sum(int(out.strip()) for out, _ in outputs)

    ids = lake.read(AGG_TRADES)["agg_trade_id"]
    expected = set(range(0, (batches - 1) * 400 + 200 + 400))
    assert ids.len() == ids.n_unique() == len(expected)
    assert set(ids.to_list()) == expected
    # every row names the commit that wrote it, and that commit is in the log: none was lost
    committed = {c["lineage"].get("batch_id") for c in lake.history(AGG_TRADES)}
    written_by = set(lake.read(AGG_TRADES)["batch_id"].unique())
    assert written_by <= committed
    assert any(b.startswith("w0-") for b in written_by)
    assert any(b.startswith("w1-") for b in written_by)
    dedupes = sum(1 for c in lake.history(AGG_TRADES) if c["lineage"].get("source") == "dedupe")
    print(f"{updates}: commit conflicts retried {retries}, duplicate repairs {dedupes}")
