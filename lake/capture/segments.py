"""Append-only landing segments: the durable first stop of every captured frame.

A segment is a file of *chunks*. Each chunk is what one flush wrote::

    magic b"CLS2" | u32 record count n | u32 payload length | u32 crc32(payload) | payload

and the payload is ``n × u64 recv_ns | n × u32 frame length | the n frames, each followed by
b"\\n"`` (little endian): columns rather than records, so a reader splits a chunk with one
``bytes.split`` (WebSocket text frames of compact JSON hold no raw newline; a chunk where one
does is split by the lengths instead). A chunk is
written with one ``write`` and then fsynced, so after a crash a segment holds whole chunks
followed at most by one torn chunk, which the reader detects (short or failing its CRC) and
drops: what was acknowledged as durable is exactly what is read back.

Segments live in ``{landing}/{market}/``: ``*.open`` while written, renamed to ``*.seg`` when
closed, and moved to ``landed/`` once their rows are in bronze. A ``*.open`` file found at start
belongs to a writer that died; :func:`recover` closes it so it is landed like any other.
"""

from __future__ import annotations

import os
import struct
import zlib
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"CLS2"
_CHUNK = struct.Struct("<4sIII")
OPEN_SUFFIX = ".open"
CLOSED_SUFFIX = ".seg"
LANDED_DIR = "landed"


def encode_payload(recv_ns: Sequence[int], frames: Sequence[bytes]) -> bytes:
    """The payload of one chunk holding ``frames`` received at ``recv_ns``."""
    return (
        array("Q", recv_ns).tobytes()
        + array("I", [len(f) for f in frames]).tobytes()
        + b"".join(f + b"\n" for f in frames)
    )


def encode_chunk(payload: bytes, count: int) -> bytes:
    """A chunk header followed by ``payload`` (holding ``count`` frames)."""
    return _CHUNK.pack(MAGIC, count, len(payload), zlib.crc32(payload)) + payload


@dataclass(frozen=True)
class SegmentContents:
    """The frames of a segment, in arrival order, and what could not be read."""

    frames: list[bytes]
    recv_ns: list[int]
    chunks: int
    torn_bytes: int

    def __len__(self) -> int:
        return len(self.frames)


def _chunks(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield ``(count, payload)`` for each whole, valid chunk; stop at the first bad one."""
    pos, end = 0, len(data)
    while pos + _CHUNK.size <= end:
        magic, count, length, crc = _CHUNK.unpack_from(data, pos)
        start = pos + _CHUNK.size
        if magic != MAGIC or start + length > end:
            return
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            return
        yield count, payload
        pos = start + length


def decode_segment(data: bytes) -> SegmentContents:
    """Decode a segment's bytes; a torn or corrupt tail is counted in ``torn_bytes``."""
    frames: list[bytes] = []
    recv: list[int] = []
    used = chunks = 0
    for count, payload in _chunks(data):
        chunks += 1
        used += _CHUNK.size + len(payload)
        recv += np.frombuffer(payload, dtype="<u8", count=count).tolist()
        lengths = np.frombuffer(payload, dtype="<u4", count=count, offset=8 * count)
        parts = payload[12 * count : -1].split(b"\n") if count else []
        if len(parts) == count and all(map(int.__eq__, map(len, parts), lengths.tolist())):
            frames += parts
            continue
        # a frame held a raw newline: split by the lengths
        starts = (np.cumsum(lengths + 1, dtype=np.int64) - (lengths + 1) + 12 * count).tolist()
        frames += [payload[a : a + n] for a, n in zip(starts, lengths.tolist(), strict=True)]
    return SegmentContents(frames, recv, chunks, len(data) - used)


def read_segment(path: Path) -> SegmentContents:
    return decode_segment(path.read_bytes())


class SegmentWriter:
    """Writes chunks to one open segment; not thread-safe (one writer thread owns it)."""

    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{name}{OPEN_SUFFIX}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.bytes_written = 0
        self.records_written = 0
        _fsync_dir(directory)

    def write_chunk(self, payload: bytes, count: int) -> None:
        """Append one chunk and make it durable before returning."""
        if not count:
            return
        chunk = encode_chunk(payload, count)
        view = memoryview(chunk)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self.bytes_written += len(chunk)
        self.records_written += count

    def close(self) -> Path:
        """Close and rename to ``*.seg``: the segment is now ready to land."""
        os.fsync(self._fd)
        os.close(self._fd)
        closed = self.path.with_suffix(CLOSED_SUFFIX)
        os.replace(self.path, closed)
        _fsync_dir(self.path.parent)
        return closed


def recover(directory: Path) -> list[Path]:
    """Close segments left open by a writer that died; returns their new paths."""
    recovered = []
    for path in sorted(directory.glob(f"*{OPEN_SUFFIX}")):
        closed = path.with_suffix(CLOSED_SUFFIX)
        os.replace(path, closed)
        recovered.append(closed)
    if recovered:
        _fsync_dir(directory)
    return recovered


def closed_segments(directory: Path) -> list[Path]:
    """Closed segments waiting to be landed, oldest first (names sort by start time)."""
    return sorted(directory.glob(f"*{CLOSED_SUFFIX}")) if directory.is_dir() else []


def mark_landed(path: Path) -> Path:
    """Move a landed segment aside, where retention deletes it later."""
    target_dir = path.parent / LANDED_DIR
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    os.replace(path, target)
    return target


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
