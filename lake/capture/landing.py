"""The landing sink: from the socket read loop to fsynced segments without blocking the loop.

Each stream has its own in-memory buffer (:class:`~lake.binance.ws_frames.StreamBuffer`); the
read loop holds the appends of the buffer's two lists for every stream it knows: two C calls per
frame, no system call, no ``await``. Frames of no known stream (control records, replies) go through
:meth:`LandingSink.append`. :meth:`LandingSink.flush` (called at least every
``flush_interval_s``) turns every non-empty buffer into one chunk and puts the flush on a bounded
queue; a writer thread drains the queue, writes each flush with one ``write``, fsyncs, and
rotates segments by age and size. If the disk stalls so long that the queue fills and the
buffers pass their memory bound, their frames are dropped, counted and recorded as a coverage
gap (never silently); the id-gap scan then finds and repairs what trade streams lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lake.binance.ws_frames import StreamBuffer, control_frame, frame_facts, latest_exchange_ms
from lake.capture.segments import SegmentWriter, chunk_parts, recover

log = logging.getLogger("cryptolake.landing")


@dataclass
class SinkStats:
    """Counters for visibility; written by one thread each, read by anyone."""

    frames: int = 0
    bytes: int = 0
    durable_frames: int = 0
    chunks: int = 0
    segments_closed: int = 0
    closed_paths: list[Path] = field(default_factory=list)


class LandingSink:
    """Buffers frames of one market and lands them in segments under ``directory``.

    ``flush`` and ``close`` are called by one thread at a time (the event loop's, or after the
    loop stopped, any one).
    """

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
        self._dropped = 0
        self._buffers: dict[bytes, StreamBuffer] = {}
        # each item is one flush: its chunks (as pieces), how many frames and chunks they hold
        self._queue: queue.Queue[tuple[list[bytes], int, int] | None] = queue.Queue(
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

    def buffer(self, label: bytes) -> StreamBuffer:
        """Stream ``label``'s buffer (made on first use)."""
        buf = self._buffers.get(label)
        if buf is None:
            buf = self._buffers[label] = StreamBuffer(label)
        return buf

    def append(self, recv_ns: int, frame: bytes, label: bytes = b"") -> None:
        """Buffer one frame of stream ``label`` (empty: no known stream). Never blocks."""
        self.buffer(label).add(recv_ns, frame)

    def latest_exchange_ms(self) -> int | None:
        """The newest exchange time the last frame of any stream reports (None before any)."""
        return latest_exchange_ms(list(self._buffers.values()))

    @property
    def pending(self) -> int:
        """Frames buffered and not yet handed to the writer."""
        return sum(len(b.frames) for b in self._buffers.values())

    @property
    def dropped(self) -> int:
        return self._dropped

    def flush(self) -> None:
        """Hand what is buffered to the writer thread (which fsyncs it)."""
        if self._error is not None:
            raise RuntimeError(f"landing writer failed: {self._error}") from self._error
        full = [b for b in self._buffers.values() if b.frames]
        if not full:
            return
        if self._queue.full():  # the writer is behind: keep buffering, up to the memory bound
            if sum(len(f) for b in full for f in b.frames) > self.max_buffer_bytes:
                self._drop([b for b in full if b.label])
            return
        parts: list[bytes] = []
        count = 0
        for b in full:
            frames, recv = b.take()
            parts += chunk_parts(recv, frames, b.label)
            count += len(frames)
        self._queue.put_nowait((parts, count, len(full)))  # never full: the only producer is us
        self.stats.frames += count
        self.stats.bytes += sum(map(len, parts))

    def _drop(self, buffers: list[StreamBuffer]) -> None:
        """Discard what ``buffers`` hold, and write down what was lost as a coverage gap whose
        window is what the lost frames themselves report (ids and exchange times)."""
        lost = [(b.label.decode(), *b.take()) for b in buffers]
        lost = [(name, frames, recv) for name, frames, recv in lost if recv]
        if not lost:
            return
        n = sum(len(recv) for _, _, recv in lost)
        self._dropped += n
        log.error("landing writer behind: %d buffered frames dropped", n)
        fallback = self.latest_exchange_ms()
        before: dict[str, list[int | None]] = {}
        ends = []
        for name, frames, _ in lost:
            ident, first_ms = frame_facts(frames[0])
            _, last_ms = frame_facts(frames[-1])
            before[name] = [None if ident is None else ident - 1, first_ms or fallback]
            ends.append(last_ms or fallback)
        after = [ms for ms in ends if ms is not None]
        gap = control_frame(
            "coverage_gap",
            cause="landing-behind",
            streams=[name for name, _, _ in lost],
            from_ns=min(recv[0] for _, _, recv in lost),
            to_ns=max(recv[-1] for _, _, recv in lost),
            before=before,
            after_ms=max(after) if after else None,
        )
        self.append(time.time_ns(), gap)

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

    def _write(self, parts: list[bytes], count: int, n_chunks: int) -> None:
        now = time.time()
        writer = self._writer
        if writer is not None and (
            now - self._opened_at >= self.rotate_s
            or writer.bytes_written + sum(map(len, parts)) > self.max_segment_bytes
        ):
            self._close_segment()
            writer = None
        if writer is None:
            self._seq += 1
            name = f"{self.prefix}-{time.time_ns():020d}-{self._seq:06d}"
            writer = self._writer = SegmentWriter(self.directory, name)
            self._opened_at = now
        writer.write_parts(parts, count)
        self.stats.chunks += n_chunks
        self.stats.durable_frames += count

    def _close_segment(self) -> None:
        if self._writer is not None:
            self.stats.closed_paths.append(self._writer.close())
            self.stats.segments_closed += 1
            self._writer = None
