"""The landing sink: from the socket read loop to fsynced segments without blocking the loop.

The read loop calls :meth:`LandingSink.append` for every frame: three appends to in-memory
arrays, no system call and no ``await``. :meth:`LandingSink.flush` (called at least every
``flush_interval_s``) swaps the buffer out and puts it on a bounded queue; a writer thread
drains the queue, writes each buffer as one chunk, fsyncs, and rotates segments by age and size.
If the disk stalls so long that the queue and the buffer bound fill up, frames are counted as
dropped (never silently): the id-gap scan then finds and repairs what they held.
"""

from __future__ import annotations

import queue
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from lake.capture.segments import SegmentWriter, recover


@dataclass
class SinkStats:
    """Counters for visibility; written by one thread each, read by anyone."""

    frames: int = 0
    bytes: int = 0
    durable_frames: int = 0
    dropped: int = 0
    chunks: int = 0
    segments_closed: int = 0
    closed_paths: list[Path] = field(default_factory=list)


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
        max_pending_chunks: int = 64,
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.rotate_s = rotate_s
        self.max_segment_bytes = max_segment_bytes
        self.max_buffer_bytes = max_buffer_bytes
        self.stats = SinkStats()
        self._recv = array("Q")
        self._lens = array("I")
        self._buf = bytearray()
        self._count = 0
        # (payload, record count) chunks; None stops the writer
        self._queue: queue.Queue[tuple[bytes, int] | None] = queue.Queue(maxsize=max_pending_chunks)
        self._writer: SegmentWriter | None = None
        self._opened_at = 0.0
        self._seq = 0
        self._error: BaseException | None = None
        directory.mkdir(parents=True, exist_ok=True)
        recover(directory)
        self._thread = threading.Thread(target=self._run, name=f"landing-{prefix}", daemon=True)
        self._thread.start()

    # --- read-loop side ---------------------------------------------------------------------

    def append(self, recv_ns: int, frame: bytes) -> None:
        """Buffer one frame. Never blocks; drops (and counts) only past the memory bound."""
        if len(self._buf) > self.max_buffer_bytes:
            self.stats.dropped += 1
            return
        self._recv.append(recv_ns)
        self._lens.append(len(frame))
        self._buf += frame
        self._buf += b"\n"
        self._count += 1

    def flush(self) -> None:
        """Hand what is buffered to the writer thread (which fsyncs it)."""
        if self._error is not None:
            raise RuntimeError(f"landing writer failed: {self._error}") from self._error
        if not self._count:
            return
        payload = self._recv.tobytes() + self._lens.tobytes() + self._buf
        try:
            self._queue.put_nowait((payload, self._count))
        except queue.Full:
            return  # the writer is behind; keep buffering (bounded by max_buffer_bytes)
        self.stats.frames += self._count
        self.stats.bytes += len(payload)
        self._recv = array("Q")
        self._lens = array("I")
        self._buf = bytearray()
        self._count = 0

    def close(self, timeout: float = 30.0) -> list[Path]:
        """Flush everything, close the open segment, stop the writer. Returns closed segments."""
        deadline = time.monotonic() + timeout
        while self._count and time.monotonic() < deadline:
            self.flush()
            if self._count:
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

    def _write(self, payload: bytes, count: int) -> None:
        now = time.time()
        writer = self._writer
        if writer is not None and (
            now - self._opened_at >= self.rotate_s
            or writer.bytes_written + len(payload) > self.max_segment_bytes
        ):
            self._close_segment()
            writer = None
        if writer is None:
            self._seq += 1
            name = f"{self.prefix}-{time.time_ns():020d}-{self._seq:06d}"
            writer = self._writer = SegmentWriter(self.directory, name)
            self._opened_at = now
        writer.write_chunk(payload, count)
        self.stats.chunks += 1
        self.stats.durable_frames += count

    def _close_segment(self) -> None:
        if self._writer is not None:
            self.stats.closed_paths.append(self._writer.close())
            self.stats.segments_closed += 1
            self._writer = None
