"""Append-only landing segments: the durable first stop of every captured frame.

A segment is a file of *chunks*. Each chunk holds the frames of one stream from one flush::

    magic b"CLS3" | u32 frame count n | u32 payload length | u32 crc32(payload) | payload

and the payload is ``u16 label length | label | n × u64 recv_ns | n × u32 frame length | the n
frames, each followed by b"\\n"`` (little endian). The label names the stream
(``btcusdt@aggTrade``), or is empty for frames of no known stream (control records, replies).
Columns rather than records, one stream per chunk: landing decodes a chunk's frames in one call
straight from its bytes (WebSocket text frames of compact JSON hold no raw newline; a chunk where
one does is split by the lengths). A flush's chunks are written with one ``writev`` and then
fsynced, so after a crash a segment holds whole chunks
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
import numpy.typing as npt

MAGIC = b"CLS3"
_CHUNK = struct.Struct("<4sIII")
_LABEL = struct.Struct("<H")
OPEN_SUFFIX = ".open"
CLOSED_SUFFIX = ".seg"
LANDED_DIR = "landed"
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16


def chunk_parts(recv_ns: Sequence[int], frames: Sequence[bytes], label: bytes = b"") -> list[bytes]:
    """One chunk holding ``frames`` of stream ``label``, received at ``recv_ns``, as the pieces
    to write one after the other (header first).

    The frames are copied once (joined); the CRC runs over the pieces, and the pieces go to the
    file with one ``writev``, so the payload is never assembled in memory.
    """
    body = [
        _LABEL.pack(len(label)) + label,
        array("Q", recv_ns).tobytes(),
        array("I", map(len, frames)).tobytes(),
        b"\n".join(frames),
        b"\n" if frames else b"",
    ]
    crc = 0
    for part in body:
        crc = zlib.crc32(part, crc)
    return [_CHUNK.pack(MAGIC, len(frames), sum(map(len, body)), crc), *body]


def encode_payload(recv_ns: Sequence[int], frames: Sequence[bytes], label: bytes = b"") -> bytes:
    """The payload of one chunk (:func:`chunk_parts` without the header, joined)."""
    return b"".join(chunk_parts(recv_ns, frames, label)[1:])


def encode_chunk(payload: bytes, count: int) -> bytes:
    """A chunk header followed by ``payload`` (holding ``count`` frames)."""
    return _CHUNK.pack(MAGIC, count, len(payload), zlib.crc32(payload)) + payload


@dataclass(frozen=True)
class Chunk:
    """The frames of one stream from one flush: ``lines`` is the frames, each ending in \\n."""

    label: bytes
    recv_ns: list[int]
    lines: bytes
    lengths: npt.NDArray[np.uint32]

    def __len__(self) -> int:
        return len(self.recv_ns)

    def pieces(self, max_frames: int) -> Iterator[Chunk]:
        """The chunk cut into chunks of at most ``max_frames`` consecutive frames."""
        if len(self) <= max_frames:
            yield self
            return
        ends = np.cumsum(self.lengths.astype(np.int64) + 1).tolist()
        for a in range(0, len(self), max_frames):
            b = min(a + max_frames, len(self))
            lo = ends[a - 1] if a else 0
            yield Chunk(
                self.label, self.recv_ns[a:b], self.lines[lo : ends[b - 1]], self.lengths[a:b]
            )

    def frames(self) -> list[bytes]:
        """The frames one by one."""
        count = len(self.recv_ns)
        parts = self.lines[:-1].split(b"\n") if count else []
        if len(parts) == count and all(map(int.__eq__, map(len, parts), self.lengths.tolist())):
            return parts
        # a frame held a raw newline: split by the lengths
        ends = np.cumsum(self.lengths.astype(np.int64) + 1)
        starts = (ends - self.lengths - 1).tolist()
        return [self.lines[a : a + n] for a, n in zip(starts, self.lengths.tolist(), strict=True)]


@dataclass(frozen=True)
class SegmentContents:
    """The chunks of a segment, in the order written, and how many bytes could not be read."""

    chunks: list[Chunk]
    torn_bytes: int

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks)

    @property
    def frames(self) -> list[bytes]:
        """Every frame, chunk after chunk (in arrival order within each stream)."""
        return [f for c in self.chunks for f in c.frames()]

    @property
    def recv_ns(self) -> list[int]:
        return [ns for c in self.chunks for ns in c.recv_ns]


def _chunks(data: bytes) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(count, payload)`` for each whole, valid chunk; stop at the first bad one."""
    view = memoryview(data)
    pos, end = 0, len(data)
    while pos + _CHUNK.size <= end:
        magic, count, length, crc = _CHUNK.unpack_from(data, pos)
        start = pos + _CHUNK.size
        if magic != MAGIC or start + length > end:
            return
        payload = view[start : start + length]
        if zlib.crc32(payload) != crc:
            return
        yield count, payload
        pos = start + length


def decode_segment(data: bytes) -> SegmentContents:
    """Decode a segment's bytes; a torn or corrupt tail is counted in ``torn_bytes``."""
    chunks: list[Chunk] = []
    used = 0
    for count, payload in _chunks(data):
        used += _CHUNK.size + len(payload)
        (n,) = _LABEL.unpack_from(payload, 0)
        at = _LABEL.size + n
        label = bytes(payload[_LABEL.size : at])
        recv = np.frombuffer(payload, dtype="<u8", count=count, offset=at).tolist()
        lengths = np.frombuffer(payload, dtype="<u4", count=count, offset=at + 8 * count)
        chunks.append(Chunk(label, recv, bytes(payload[at + 12 * count :]), lengths))
    return SegmentContents(chunks, len(data) - used)


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
        self.write_parts([encode_chunk(payload, count)], count)

    def write_parts(self, parts: Sequence[bytes], count: int) -> None:
        """Append encoded chunks, given as consecutive pieces (``count`` frames in all), with
        ``writev``, then fsync."""
        if not count:
            return
        views = [memoryview(p) for p in parts if p]
        size = sum(map(len, views))
        while views:
            written = os.writev(self._fd, views[:_IOV_MAX])
            done = 0
            while done < len(views) and written >= len(views[done]):
                written -= len(views[done])
                done += 1
            views = views[done:]
            if views and written:
                views[0] = views[0][written:]
        os.fsync(self._fd)
        self.bytes_written += size
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
