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
followed at most by one torn chunk: what was acknowledged as durable is exactly what is read back.

Bytes that hold no readable chunk (a torn tail, a flipped byte, lost framing) are returned as
:class:`Damage`, never dropped silently, and reading resumes at the next chunk header whose
payload passes its CRC: one bad chunk costs that chunk's frames and no others.

Segments live in ``{landing}/{market}/``: ``*.open`` while written, renamed to ``*.seg`` when
closed, and moved to ``landed/`` once their rows are in bronze (``damaged/`` when some of their
bytes could not be read). A ``*.open`` file found at start belongs to a writer that died;
:func:`recover` closes it so it is landed like any other.
"""

from __future__ import annotations

import os
import struct
import zlib
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

MAGIC = b"CLS3"
_CHUNK = struct.Struct("<4sIII")
_LABEL = struct.Struct("<H")
OPEN_SUFFIX = ".open"
CLOSED_SUFFIX = ".seg"
LANDED_DIR = "landed"
DAMAGED_DIR = "damaged"
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


DamageKind = Literal["corrupt", "truncated", "unframed"]


@dataclass(frozen=True)
class Damage:
    """Bytes of a segment that hold no readable chunk.

    ``offset`` is where they start in the segment and ``before`` how many readable chunks
    precede them. ``why``: ``corrupt`` (one whole chunk whose payload fails its CRC),
    ``truncated`` (a chunk running past the end of the segment: a torn tail) or ``unframed``
    (no chunk header could be read; possibly several chunks). ``label`` is the stream label
    the chunk's own header names, read only when its header and columns still agree (None
    otherwise); ``b""`` names a chunk of control records.
    """

    offset: int
    data: bytes
    before: int
    why: DamageKind
    label: bytes | None

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


@dataclass(frozen=True)
class SegmentContents:
    """The readable chunks of a segment in the order written, its size, and the bytes that
    could not be read."""

    chunks: list[Chunk]
    size: int = 0
    damage: list[Damage] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks)

    @property
    def damaged_bytes(self) -> int:
        return sum(len(d.data) for d in self.damage)

    @property
    def frames(self) -> list[bytes]:
        """Every frame, chunk after chunk (in arrival order within each stream)."""
        return [f for c in self.chunks for f in c.frames()]

    @property
    def recv_ns(self) -> list[int]:
        return [ns for c in self.chunks for ns in c.recv_ns]


def decode_segment(data: bytes) -> SegmentContents:
    """Decode a segment's bytes.

    A stretch that holds no readable chunk is returned in ``damage``, and reading resumes at
    the next chunk header (found by its magic) whose payload passes its CRC and whose columns
    add up.
    """
    view = memoryview(data)
    chunks: list[Chunk] = []
    damage: list[Damage] = []
    pos, end, bad = 0, len(data), -1
    while pos < end:
        found = _chunk_at(data, view, pos, resync=bad >= 0)
        if found is None:
            if bad < 0:
                bad = pos
            nxt = data.find(MAGIC, pos + 1)
            pos = end if nxt < 0 else nxt
            continue
        if bad >= 0:
            damage.append(_damage(data, bad, pos, len(chunks)))
            bad = -1
        chunk, pos = found
        chunks.append(chunk)
    if bad >= 0:
        damage.append(_damage(data, bad, end, len(chunks)))
    return SegmentContents(chunks, end, damage)


def _chunk_at(data: bytes, view: memoryview, pos: int, *, resync: bool) -> tuple[Chunk, int] | None:
    """The chunk whose header starts at ``pos`` and where the next one starts, or None.

    When ``resync`` (a header found by its magic after bytes that did not read), its columns
    must also add up, since bytes that only look like a chunk could pass a CRC by chance.
    """
    if pos + _CHUNK.size > len(data):
        return None
    magic, count, length, crc = _CHUNK.unpack_from(data, pos)
    start = pos + _CHUNK.size
    if magic != MAGIC or start + length > len(data):
        return None
    payload = view[start : start + length]
    if zlib.crc32(payload) != crc or length < _LABEL.size:
        return None
    (n,) = _LABEL.unpack_from(payload, 0)
    at = _LABEL.size + n
    lines = at + 12 * count
    if lines > length or (resync and _label_end(payload, count) is None):
        return None
    recv = np.frombuffer(payload, dtype="<u8", count=count, offset=at).tolist()
    lengths = np.frombuffer(payload, dtype="<u4", count=count, offset=at + 8 * count)
    return Chunk(
        bytes(payload[_LABEL.size : at]), recv, bytes(payload[lines:]), lengths
    ), start + length


def _label_end(payload: memoryview | bytes, count: int) -> int | None:
    """Where the label of a chunk's payload ends, if label, columns and frames add up."""
    if len(payload) < _LABEL.size:
        return None
    (n,) = _LABEL.unpack_from(payload, 0)
    at = _LABEL.size + n
    lines = at + 12 * count
    if lines > len(payload):
        return None
    lengths = np.frombuffer(payload, dtype="<u4", count=count, offset=at + 8 * count)
    return at if int(lengths.sum(dtype=np.int64)) + count == len(payload) - lines else None


def _damage(data: bytes, start: int, stop: int, before: int) -> Damage:
    """What ``data[start:stop]`` (no readable chunk) was, as far as its first header tells."""
    bad = data[start:stop]
    why: DamageKind = "unframed"
    label = None
    if len(bad) >= _CHUNK.size:
        magic, count, length, _ = _CHUNK.unpack_from(bad, 0)
        declared = start + _CHUNK.size + length
        if magic == MAGIC and declared == stop:
            why = "corrupt"
            at = _label_end(bad[_CHUNK.size :], count)
            label = None if at is None else bad[_CHUNK.size + _LABEL.size : _CHUNK.size + at]
        elif magic == MAGIC and declared > stop == len(data):
            why = "truncated"
            label = _torn_label(bad[_CHUNK.size :])
    elif stop == len(data) and MAGIC.startswith(bad[: len(MAGIC)]):
        why = "truncated"  # a torn header
    if label is not None and not all(0x21 <= b <= 0x7E for b in label):
        label = None
    return Damage(start, bad, before, why, label)


def _torn_label(payload: bytes) -> bytes | None:
    """The label at the start of a torn chunk's payload, when all of it was written."""
    if len(payload) < _LABEL.size:
        return None
    (n,) = _LABEL.unpack_from(payload, 0)
    return payload[_LABEL.size : _LABEL.size + n] if _LABEL.size + n <= len(payload) else None


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
    """Move a landed segment aside to ``landed/``, where retention deletes it later."""
    return _move_aside(path, LANDED_DIR)


def mark_damaged(path: Path) -> Path:
    """Move a segment whose readable part is landed and whose damage is recorded aside to
    ``damaged/``, where an operator finds it."""
    return _move_aside(path, DAMAGED_DIR)


def _move_aside(path: Path, folder: str) -> Path:
    target_dir = path.parent / folder
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    os.replace(path, target)
    return target


def segment_before(directory: Path, stem: str) -> Path | None:
    """The newest segment already moved aside (landed or damaged) that was opened before the
    one named ``stem``."""
    moved = [
        p for d in (LANDED_DIR, DAMAGED_DIR) for p in (directory / d).glob(f"*{CLOSED_SUFFIX}")
    ]
    return max((p for p in moved if p.stem < stem), key=lambda p: p.stem, default=None)


def segment_after(directory: Path, stem: str) -> Path | None:
    """The oldest segment still being written (``*.open``) opened after the one named
    ``stem``."""
    writing = directory.glob(f"*{OPEN_SUFFIX}")
    return min((p for p in writing if p.stem > stem), key=lambda p: p.stem, default=None)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
