"""(I/O) Is a table's Delta log whole? Damage found before delta-rs trips over it.

delta-rs reports a truncated or garbage commit file as a Rust error with a backtrace, and reads
a 0-byte one as a commit that did nothing: the table silently loses the rows that commit added.
:func:`check_log` looks at what delta-rs will replay (the commit files after the last
checkpoint): every file non-empty, every line a JSON object, the versions contiguous, and the
checkpoint itself a Parquet file. Commit files never change once written, so a file found whole
is not read again by this process while its size and modification time stay the same.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from deltalake.exceptions import TableNotFoundError
from deltalake.fs import DeltaStorageHandler
from pyarrow.fs import FileSelector, FileType, PyFileSystem

LOG_DIR = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.\d+\.\d+)?\.parquet$")
_PARQUET_MAGIC = b"PAR1"

# table uri -> {version: (size, mtime)} of the commit files found whole (after the last
# checkpoint only)
_WHOLE: dict[str, dict[int, tuple[int, Any]]] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Damage:
    """One damaged file of a table's log."""

    version: int
    path: str
    reason: str
    kind: str = "commit file"

    def line(self) -> str:
        return f"{self.kind} {self.path} is {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "file": self.path, "kind": self.kind, "why": self.reason}


class DamagedTableError(ValueError):
    """A table's Delta log is damaged; the message is one line naming the table and the file."""

    def __init__(self, table: str, damage: Damage) -> None:
        self.table = table
        self.damage = damage
        super().__init__(f"table {table}: {damage.line()} (run `cryptolake doctor`)")


@dataclass(frozen=True)
class LogState:
    """What the log holds: its versions, its last checkpoint and what is damaged in it."""

    exists: bool
    latest: int | None
    checkpoint: int | None
    damage: tuple[Damage, ...]

    @property
    def last_good(self) -> int | None:
        """The newest version that reads whole: the one before the first damaged file."""
        if not self.damage:
            return self.latest
        first = min(d.version for d in self.damage)
        if self.checkpoint is not None and first <= self.checkpoint:
            return None  # the checkpoint itself is damaged: nothing after it can be read
        return first - 1 if first > 0 else None


def inspect_log(
    uri: str, storage_options: dict[str, str] | None = None, *, upto: int | None = None
) -> LogState:
    """Check the commit files after the last checkpoint (up to version ``upto``)."""
    absent = LogState(exists=False, latest=None, checkpoint=None, damage=())
    try:
        fs = PyFileSystem(DeltaStorageHandler(uri, storage_options))
        infos = fs.get_file_info(FileSelector(LOG_DIR, allow_not_found=True))
    except (TableNotFoundError, FileNotFoundError):
        return absent
    root = uri.rstrip("/")
    commits: dict[int, tuple[int, Any]] = {}
    checkpoints: dict[int, list[tuple[str, int]]] = {}
    for info in infos:
        if info.type != FileType.File:
            continue
        name = info.path.rsplit("/", 1)[-1]
        if m := _COMMIT.match(name):
            commits[int(m.group(1))] = (info.size or 0, info.mtime)
        elif m := _CHECKPOINT.match(name):
            checkpoints.setdefault(int(m.group(1)), []).append((name, info.size or 0))
    if upto is not None:
        commits = {v: s for v, s in commits.items() if v <= upto}
        checkpoints = {v: c for v, c in checkpoints.items() if v <= upto}
    if not commits and not checkpoints:
        return absent

    damage: list[Damage] = []
    checkpoint = max(checkpoints) if checkpoints else None
    if checkpoint is not None:
        for name, size in checkpoints[checkpoint]:
            reason = _checkpoint_damage(fs, f"{LOG_DIR}/{name}", size)
            if reason:
                path = f"{root}/{LOG_DIR}/{name}"
                damage.append(Damage(checkpoint, path, reason, kind="checkpoint file"))

    first = checkpoint + 1 if checkpoint is not None else 0
    latest = max([*commits, checkpoint] if checkpoint is not None else commits)
    with _LOCK:
        whole = _WHOLE.setdefault(uri, {})
        for version in [v for v in whole if v < first]:
            del whole[version]  # superseded by the checkpoint
    for version in range(first, latest + 1):
        path = f"{root}/{LOG_DIR}/{version:020d}.json"
        if version not in commits:
            after = min(v for v in commits if v > version)
            reason = f"missing (the log goes from version {version - 1} to {after})"
            damage.append(Damage(version, path, reason))
            continue
        if whole.get(version) == commits[version]:
            continue
        reason = _commit_damage(fs, f"{LOG_DIR}/{version:020d}.json", commits[version][0])
        if reason:
            damage.append(Damage(version, path, reason))
        else:
            with _LOCK:
                whole[version] = commits[version]
    return LogState(exists=True, latest=latest, checkpoint=checkpoint, damage=tuple(damage))


def check_log(
    table: str, uri: str, storage_options: dict[str, str] | None = None, *, upto: int | None = None
) -> None:
    """Raise :class:`DamagedTableError` for the first damaged file delta-rs would read.

    Raises:
        DamagedTableError: a commit file after the last checkpoint is empty, holds a line that is
            not a JSON object or is missing, or the last checkpoint is not a Parquet file.
    """
    state = inspect_log(uri, storage_options, upto=upto)
    if state.damage:
        raise DamagedTableError(table, min(state.damage, key=lambda d: d.version))


def read_commit(
    uri: str, storage_options: dict[str, str] | None, version: int
) -> list[dict[str, Any]] | None:
    """The actions of commit ``version`` (one dict per line), or ``None`` when its file is gone
    (logs older than ``delta.logRetentionDuration`` are removed at checkpoint time)."""
    fs = PyFileSystem(DeltaStorageHandler(uri, storage_options))
    try:
        with fs.open_input_stream(f"{LOG_DIR}/{version:020d}.json") as f:
            raw: bytes = f.read()
    except FileNotFoundError:
        return None
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]


def _commit_damage(fs: PyFileSystem, path: str, size: int) -> str | None:
    if size == 0:
        return "damaged (0 bytes)"
    with fs.open_input_stream(path) as f:
        raw: bytes = f.read()
    if not raw.strip():
        return f"damaged ({len(raw)} bytes, all blank)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "damaged (not UTF-8 text)"
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            action = json.loads(line)
        except ValueError:
            return f"damaged (line {number} is not valid JSON)"
        if not isinstance(action, dict):
            return f"damaged (line {number} is not a JSON object)"
    return None


def _checkpoint_damage(fs: PyFileSystem, path: str, size: int) -> str | None:
    if size < 2 * len(_PARQUET_MAGIC):
        return f"damaged ({size} bytes)"
    with fs.open_input_file(path) as f:
        head = f.read(len(_PARQUET_MAGIC))
        f.seek(size - len(_PARQUET_MAGIC))
        tail = f.read(len(_PARQUET_MAGIC))
    if head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
        return "damaged (not a Parquet file)"
    return None
