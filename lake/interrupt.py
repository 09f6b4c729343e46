"""Ctrl-C for long commands: a clean stop within seconds, exit 130, nothing half-written.

A command that runs Prefect flows cannot simply take ``KeyboardInterrupt``: the flow engine
turns it into a crash it then tries to report to its API, and a Ctrl-C sent to the terminal's
process group has already stopped that API (the ephemeral server is a child process), so the
command hangs. Instead such a command runs its work in a child process in a session of its own
(:func:`run_supervised`), which the terminal's Ctrl-C does not reach. The parent forwards the
first SIGINT/SIGTERM as a polite request; the child (:func:`cooperative_stop`) sets :data:`STOP`,
which the long steps poll between commits (capture stops, flushes and lands; a backfill lets
running files finish their atomic commit and starts no other). If the child has not ended within
``grace_s``, its whole session is terminated, and killed after a few more seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType

EXIT_INTERRUPTED = 130
STOP = threading.Event()
"""Set once a stop was asked for (first SIGINT/SIGTERM in a cooperative process)."""


STOPPED = "stopped on request (Ctrl-C or SIGTERM); every commit made is whole"


class Interrupted(Exception):
    """A long step saw :data:`STOP` and ended early, having left nothing half-written."""


def check_stop() -> None:
    """Raise :class:`Interrupted` once a stop was asked for."""
    if STOP.is_set():
        raise Interrupted("stopped on request")


@contextlib.contextmanager
def cooperative_stop() -> Iterator[None]:
    """Turn the first SIGINT/SIGTERM into :data:`STOP` (a second one interrupts at once)."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if STOP.is_set():
            raise KeyboardInterrupt
        STOP.set()
        print("stopping: finishing the current commit (Ctrl-C again to abort)", file=sys.stderr)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_supervised(cmd: Sequence[str], *, grace_s: float = 10.0, kill_s: float = 5.0) -> int:
    """Run ``cmd`` in a session of its own and return its exit code (130 once interrupted).

    The first SIGINT/SIGTERM is forwarded to the child as SIGINT; past ``grace_s`` the child's
    session gets SIGTERM, and past ``kill_s`` more, SIGKILL.
    """
    proc = subprocess.Popen(list(cmd), start_new_session=True)
    asked: list[float] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if not asked:
            asked.append(time.monotonic())
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                code = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if asked and time.monotonic() - asked[0] > grace_s:
                _end_session(proc, kill_s)
                code = proc.wait()
                print(
                    f"error: interrupted; the work did not stop within {grace_s:.0f} s and was "
                    "ended (every Delta commit is atomic: nothing is half-written)",
                    file=sys.stderr,
                )
                break
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return EXIT_INTERRUPTED if asked else code


def _end_session(proc: subprocess.Popen[bytes], kill_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=kill_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
