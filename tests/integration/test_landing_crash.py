"""kill -9 of a process writing landing segments loses nothing it reported durable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lake.capture.segments import closed_segments, read_segment, recover

REPO = Path(__file__).resolve().parents[2]
WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lake.capture.landing import LandingSink
    sink = LandingSink(Path(sys.argv[1]), prefix="um", rotate_s=0.3)
    i = 0
    while True:
        for _ in range(500):
            sink.append(time.time_ns(), b'{"a":%d}' % i)
            i += 1
        sink.flush()
        print(sink.stats.durable_frames, flush=True)
        time.sleep(0.01)
    """
)


@pytest.mark.slow
def test_kill_9_keeps_every_durable_frame(tmp_path: Path) -> None:
    rng = random.Random(11)
    for round_ in range(5):
        directory = tmp_path / f"round{round_}"
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        # The clock starts at the first durable report: start-up (imports) and the writer
        # thread's first fsync take an unknown time on a loaded machine.
        reported = 0
        started = time.monotonic()
        while reported == 0:
            assert time.monotonic() - started < 60, "the writer reported nothing durable in 60 s"
            reported = int(proc.stdout.readline())
        deadline = time.monotonic() + rng.uniform(0.3, 1.2)
        while time.monotonic() < deadline:
            reported = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        recover(directory)
        got: list[bytes] = []
        for path in closed_segments(directory):
            got += read_segment(path).frames
        assert reported > 0
        assert len(got) >= reported
        assert got == [b'{"a":%d}' % i for i in range(len(got))]  # a prefix, no holes
