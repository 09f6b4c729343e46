"""(I/O) One process at a time per landing directory: the lock ``collect`` and ``land`` hold.

An ``flock`` on a file in the directory, released by the OS when the process dies; the file
names the holder and its process id so that a process kept out can say who is in.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path


class CollectorBusy(RuntimeError):
    """Another process (a collect or a land) holds the landing directory."""


LOCK_FILE = ".collector.lock"


@contextlib.contextmanager
def landing_lock(
    directory: Path, *, holder: str = "collect", wait_s: float = 0.0
) -> Iterator[None]:
    """Hold the landing directory for this process: one ``collect`` or ``land`` at a time per
    directory (released by the OS if the process dies).

    Waits up to ``wait_s`` seconds for another holder to finish; the lock file names the
    holder (``holder`` and the process id) so that a process kept out can say who is in.

    Raises:
        CollectorBusy: another process still holds the directory after ``wait_s``.
        NotADirectoryError: the directory, or a parent of it, is a file.
    """
    check_landing_dir(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    who = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    waited = f" (waited {wait_s:g} s)" if wait_s > 0 else ""
                    raise CollectorBusy(
                        f"the landing directory {directory} is busy: {who or 'another process'} "
                        f"is using it{waited}; try again when it has finished"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder} (pid {os.getpid()})\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def check_landing_dir(directory: Path) -> None:
    """Nothing, when ``directory`` is a directory or can be made one.

    Raises:
        NotADirectoryError: it, or the nearest of its parents that exists, is not a directory.
    """
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.is_dir():
        return
    what = "is a file" if probe == directory else f"cannot be made: {probe} is a file"
    raise NotADirectoryError(
        f"the landing directory {directory} {what}; move it aside, or point "
        "capture.landing_dir elsewhere"
    )
