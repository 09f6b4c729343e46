"""(I/O) Scratch folders in the lake's own work area, cleaned even after a ``kill -9``.

A local lake keeps them under ``{root}/_work/{purpose}``; a remote one (``s3://…``) under the
system's temp directory, in a folder named after the root. Each run's folder is named
``{pid}-{token}``; a run removes its own folder when it ends and, when it starts, every folder
whose process is gone, so a killed run leaves nothing behind past the next one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

WORK_DIR_NAME = "_work"


def work_root(lake_root: str) -> Path:
    """The lake's work area on local disk."""
    if "://" not in lake_root or lake_root.startswith("file://"):
        return Path(lake_root.removeprefix("file://")) / WORK_DIR_NAME
    digest = hashlib.sha256(lake_root.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"cryptolake-work-{digest}"


@contextlib.contextmanager
def scratch(lake_root: str, purpose: str) -> Iterator[Path]:
    """A fresh folder for this run under the work area's ``purpose``; removed on the way out,
    after the folders of runs that died were removed on the way in."""
    base = work_root(lake_root) / purpose
    base.mkdir(parents=True, exist_ok=True)
    clean_stale(base)
    folder = base / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def clean_stale(base: Path) -> list[Path]:
    """Remove the run folders under ``base`` whose process no longer runs; returns them."""
    removed = []
    for entry in base.iterdir():
        pid = entry.name.split("-", 1)[0]
        if entry.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
