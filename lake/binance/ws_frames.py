"""(pure) What capture holds of a stream: its frames, the facts they report, control records.

* :class:`StreamBuffer`: one stream's frames since the landing sink last took them (the read
  loop appends, the sink takes); what a connection reports about a stream is read from here.
* :func:`frame_facts`: the id and exchange time a frame reports about itself, decoded only when
  a break in coverage or a silence is written down (never on the hot path).
* :func:`control_frame`: a record the collector writes into the landing stream about itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import msgspec

CONTROL_PREFIX = b'{"cryptolake":'


class _EventTime(msgspec.Struct):
    E: int = 0


class _Wrapped(msgspec.Struct):
    data: _EventTime


_E_DECODER = msgspec.json.Decoder(_Wrapped)


class _FactsData(msgspec.Struct):
    E: int | None = None
    T: int | None = None
    a: int | str | None = None  # aggTrade id (a bookTicker's "a" is its ask price, a string)
    t: int | None = None  # trade id
    u: int | None = None  # book update id


class _FactsFrame(msgspec.Struct):
    data: _FactsData


_FACTS = msgspec.json.Decoder(_FactsFrame)


def frame_facts(frame: bytes) -> tuple[int | None, int | None]:
    """``(id, exchange ms)`` a frame reports about itself; ``(None, None)`` for anything else.

    The id is ``a`` (aggTrade), ``t`` (trade) or ``u`` (bookTicker); the time is the trade time
    ``T`` of a trade or aggTrade, else the event time ``E`` (markPrice's ``T`` is the next
    funding time, not the event's). Spot bookTicker frames carry neither time.
    """
    try:
        d = _FACTS.decode(frame).data
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None, None
    agg = d.a if isinstance(d.a, int) else None
    if agg is not None or d.t is not None:
        return (agg if agg is not None else d.t), (d.T if d.T is not None else d.E)
    if d.u is not None:
        return d.u, (d.T if d.T is not None else d.E)
    return None, d.E


def control_frame(kind: str, **fields: object) -> bytes:
    """A frame the collector writes into the landing stream about itself (not from Binance)."""
    return msgspec.json.encode({"cryptolake": kind, **fields})


class StreamBuffer:
    """One stream's frames since the sink last took them: the read loop appends, the sink takes.

    Two lists that are never replaced, so the read loop holds their ``append`` and spends two
    C calls per frame; :meth:`take` empties them in place. What a connection reports about a
    stream (messages, last receive time, latency) is read from here, so the read loop keeps no
    counters of its own.
    """

    __slots__ = ("_last", "frames", "label", "recv", "taken")

    def __init__(self, label: bytes) -> None:
        self.label = label
        self.frames: list[bytes] = []
        self.recv: list[int] = []
        self.taken = 0
        self._last: tuple[int, bytes] = (0, b"")

    def add(self, recv_ns: int, frame: bytes) -> None:
        self.frames.append(frame)
        self.recv.append(recv_ns)

    def take(self) -> tuple[list[bytes], list[int]]:
        """The frames added so far and their receive times, removed from the buffer."""
        n = min(len(self.frames), len(self.recv))
        frames, recv = self.frames[:n], self.recv[:n]
        del self.frames[:n], self.recv[:n]
        if n:
            self._last = (recv[-1], frames[-1])
            self.taken += n
        return frames, recv

    @property
    def received(self) -> int:
        """Frames added since the buffer was made."""
        return self.taken + len(self.frames)

    def last(self) -> tuple[int, bytes]:
        """``(receive time ns, frame)`` of the newest frame; ``(0, b"")`` before the first."""
        if self.frames and self.recv:
            return self.recv[-1], self.frames[-1]
        return self._last


class FrameSink(Protocol):
    """Where a connection puts frames (a :class:`lake.capture.landing.LandingSink`)."""

    def buffer(self, label: bytes) -> StreamBuffer: ...

    def append(self, recv_ns: int, frame: bytes, label: bytes = b"") -> None: ...

    def latest_exchange_ms(self) -> int | None: ...


def latest_exchange_ms(buffers: Iterable[StreamBuffer]) -> int | None:
    """The newest exchange time any of ``buffers``' last frames reports (the exchange's "now" as
    far as the collector has seen it), or None before any timed frame."""
    times = [ms for b in buffers if b.label and (ms := frame_facts(b.last()[1])[1]) is not None]
    return max(times) if times else None


class StreamStats:
    """One stream's figures, read from its landing buffer when asked."""

    __slots__ = ("_buffer",)

    def __init__(self, buffer: StreamBuffer) -> None:
        self._buffer = buffer

    @property
    def messages(self) -> int:
        return self._buffer.received

    @property
    def last_recv_ns(self) -> int:
        return self._buffer.last()[0]

    @property
    def latency_ms(self) -> float | None:
        """Receive time minus event time ``E`` of the newest frame (None without one)."""
        recv_ns, frame = self._buffer.last()
        try:
            event_ms = _E_DECODER.decode(frame).data.E if frame else 0
        except msgspec.DecodeError:
            return None
        return (recv_ns - event_ms * 1_000_000) / 1e6 if event_ms else None
