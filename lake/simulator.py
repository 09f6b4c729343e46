"""``exchange: sim``: start the built-in exchange in a child process for the length of a run.

The child gets its own interpreter (and core), so a busy simulated market never competes with the
collector for the GIL. Its first stdout line is its base URL.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from lake.settings import Settings


class SimulatorError(RuntimeError):
    """The built-in exchange did not start."""


def sim_symbols(settings: Settings) -> str:
    """The ``--symbols`` argument that serves every configured symbol on its market."""
    spot = [f"spot:{s}" for s in settings.markets.spot.symbols]
    um = [f"um:{s}" for s in settings.markets.um.symbols]
    return ",".join(spot + um)


@contextmanager
def built_in_exchange(
    symbols: str, *, seed: int = 42, extra: Sequence[str] = (), startup_s: float = 60.0
) -> Iterator[str]:
    """Run ``cryptolake exchange serve`` in a child process; yields its base URL."""
    cmd = [
        sys.executable,
        "-m",
        "lake.exchange",
        "serve",
        "--port",
        "0",
        "--seed",
        str(seed),
        "--symbols",
        symbols,
        *extra,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            err = proc.stderr.read().strip() if proc.stderr and proc.poll() is not None else ""
            raise SimulatorError(f"the built-in exchange did not start: {err or url!r}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def exchange_url(settings: Settings) -> Iterator[str]:
    """The exchange to talk to: ``live``, the configured base URL, or a started simulator."""
    if settings.exchange != "sim":
        yield settings.exchange
        return
    with built_in_exchange(sim_symbols(settings)) as url:
        yield url
