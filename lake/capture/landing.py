"""The landing sink: from the socket read loop to fsynced segments without blocking the loop.

Each stream has its own in-memory buffer; the read loop holds the buffer's ``add`` for every
stream it knows and calls it per frame: three appends to in-memory arrays, no system call, no
``await``. Frames of no known stream (control records, replies) go through :meth:`append`.
:meth:`LandingSink.flush` (called at least every ``flush_interval_s``) turns every non-empty
buffer into one chunk and puts the flush on a bounded queue; a writer thread drains the queue,
writes each flush with one ``write``, fsyncs, and rotates segments by age and size. If the disk
stalls so long that the queue fills and the buffers pass their memory bound, frames are counted
as dropped (never silently) until a flush gets through; the id-gap scan then finds and repairs
what they held.
"""

from __future__ import annotations

import queue
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lake.capture.segments import SegmentWriter, encode_chunk, recover


@dataclass
class SinkStats:
    """Counters for visibility; written by one thread each, read by anyone."""

    frames: int = 0
    bytes: int = 0
    durable_frames: int = 0
    chunks: int = 0
    segments_closed: int = 0
    closed_paths: list[Path] = field(default_factory=list)


class _Gate:
    __slots__ = ("dropped", "dropping")

    def __init__(self) -> None:
        self.dropping = False
        self.dropped = 0


class _Buffer:
    """One stream's frames since the last flush, as the columns of a chunk."""

    __slots__ = ("count", "data", "gate", "label", "lens", "recv")

    def __init__(self, label: bytes, gate: _Gate) -> None:
        self.label = label
        self.gate = gate
        self.reset()

    def reset(self) -> None:
        self.recv = array("Q")
        self.lens = array("I")
        self.data = bytearray()
        self.count = 0

    def add(self, recv_ns: int, frame: bytes) -> None:
        if self.gate.dropping:
            self.gate.dropped += 1
            return
        self.recv.append(recv_ns)
        self.lens.append(len(frame))
        self.data += frame
        self.data += b"\n"
        self.count += 1

    def payload(self) -> bytes:
        n = len(self.label)
        header = n.to_bytes(2, "little") + self.label
        return header + self.recv.tobytes() + self.lens.tobytes() + self.data


class LandingSink:
    """Buffers frames of one market and lands them in segments under ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        prefix: str,
        rotate_s: float = 60.0,
        max_segment_bytes: int = 64 * 1024 * 1024,
        max_buffer_bytes: int = 256 * 1024 * 1024,
        max_pending_flushes: int = 64,
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.rotate_s = rotate_s
        self.max_segment_bytes = max_segment_bytes
        self.max_buffer_bytes = max_buffer_bytes
        self.stats = SinkStats()
        self._gate = _Gate()
        self._buffers: dict[bytes, _Buffer] = {}
        # each item is one flush: its chunks, encoded, and how many frames they hold
        self._queue: queue.Queue[tuple[bytes, int, int] | None] = queue.Queue(
            maxsize=max_pending_flushes
        )
        self._writer: SegmentWriter | None = None
        self._opened_at = 0.0
        self._seq = 0
        self._error: BaseException | None = None
        directory.mkdir(parents=True, exist_ok=True)
        recover(directory)
        self._thread = threading.Thread(target=self._run, name=f"landing-{prefix}", daemon=True)
        self._thread.start()

    # --- read-loop side ---------------------------------------------------------------------

    def buffer(self, label: bytes) -> Callable[[int, bytes], None]:
        """The ``add(recv_ns, frame)`` of stream ``label``'s buffer (made on first use)."""
        buf = self._buffers.get(label)
        if buf is None:
            buf = self._buffers[label] = _Buffer(label, self._gate)
        return buf.add

    def append(self, recv_ns: int, frame: bytes, label: bytes = b"") -> None:
        """Buffer one frame of stream ``label`` (empty: no known stream). Never blocks."""
        self.buffer(label)(recv_ns, frame)

    @property
    def pending(self) -> int:
        """Frames buffered and not yet handed to the writer."""
        return sum(b.count for b in self._buffers.values())

    @property
    def dropped(self) -> int:
        return self._gate.dropped

    def flush(self) -> None:
        """Hand what is buffered to the writer thread (which fsyncs it)."""
        if self._error is not None:
            raise RuntimeError(f"landing writer failed: {self._error}") from self._error
        full = [b for b in self._buffers.values() if b.count]
        if not full:
            return
        chunks = b"".join(encode_chunk(b.payload(), b.count) for b in full)
        count = sum(b.count for b in full)
        try:
            self._queue.put_nowait((chunks, count, len(full)))
        except queue.Full:
            # the writer is behind: keep buffering, up to the memory bound
            self._gate.dropping = sum(len(b.data) for b in full) > self.max_buffer_bytes
            return
        self._gate.dropping = False
        self.stats.frames += count
        self.stats.bytes += len(chunks)
        for b in full:
            b.reset()

    def close(self, timeout: float = 30.0) -> list[Path]:
        """Flush everything, close the open segment, stop the writer. Returns closed segments."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            self.flush()
            if self.pending:
                time.sleep(0.01)
        self._queue.put(None)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._error is not None:
            raise RuntimeError(f"landing writer failed: {self._error}") from self._error
        return list(self.stats.closed_paths)

    # --- writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                self._write(*item)
        except BaseException as exc:  # surfaced to the read loop by flush()/close()
            self._error = exc
        finally:
            self._close_segment()

    def _write(self, chunks: bytes, count: int, n_chunks: int) -> None:
        now = time.time()
        writer = self._writer
        if writer is not None and (
            now - self._opened_at >= self.rotate_s
            or writer.bytes_written + len(chunks) > self.max_segment_bytes
        ):
            self._close_segment()
            writer = None
        if writer is None:
            self._seq += 1
            name = f"{self.prefix}-{time.time_ns():020d}-{self._seq:06d}"
            writer = self._writer = SegmentWriter(self.directory, name)
            self._opened_at = now
        writer.write_encoded(chunks, count)
        self.stats.chunks += n_chunks
        self.stats.durable_frames += count

    def _close_segment(self) -> None:
        if self._writer is not None:
            self.stats.closed_paths.append(self._writer.close())
            self.stats.segments_closed += 1
            self._writer = None
