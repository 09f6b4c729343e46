"""``exchange: sim``: start the built-in exchange in a child process for the length of a run.

The child gets its own interpreter (and core), so a busy simulated market never competes with the
collector for the GIL. Its first stdout line is its base URL.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from lake.settings import MARKETS, Market, Settings


class SimulatorError(RuntimeError):
    """The built-in exchange did not start."""


def sim_symbols(settings: Settings, symbols: Mapping[Market, Sequence[str]] | None = None) -> str:
    """The ``--symbols`` argument that serves every configured symbol on its market, and every
    symbol of ``symbols`` (what a command was asked for) beside them."""
    wanted: dict[Market, list[str]] = {m: list(settings.markets.get(m).symbols) for m in MARKETS}
    for market, extra in (symbols or {}).items():
        wanted[market] += extra
    return ",".join(f"{m}:{s}" for m in MARKETS for s in dict.fromkeys(wanted[m]))


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
            last = err.splitlines()[-1].removeprefix("error: ") if err else repr(url)
            raise SimulatorError(f"the built-in exchange did not start: {last}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def exchange_url(
    settings: Settings, symbols: Mapping[Market, Sequence[str]] | None = None
) -> Iterator[str]:
    """The exchange to talk to: ``live``, the configured base URL, or a started simulator that
    serves the configured symbols and ``symbols``."""
    if settings.exchange != "sim":
        yield settings.exchange
        return
    with built_in_exchange(sim_symbols(settings, symbols)) as url:
        yield url
