"""(pure) What a damaged landing segment lost: which streams, and where in each.

The damage of a segment (:class:`~lake.capture.segments.Damage`) is bytes no chunk could be read
from. Their frames are gone, and usually so is the label naming their stream, so what was lost
is judged from what is known:

* **streams**: the damaged chunk's own label when its header and columns still agree and the
  label is one the segment or its neighbours carry (a flipped byte among the frames);
  otherwise every stream the segment's readable chunks carry (when it has none, those of its
  neighbouring segments), plus a label that was read but is not otherwise known. A chunk of
  control records (empty label) held no market stream.
* **window**, per stream: from the last frame of that stream before the damage (its id and
  exchange time) to the first frame of it after the damage, looked for in the segment and its
  neighbours. A stream with no frame on a side takes the nearest frame of any stream that
  reports an exchange time there; with nothing after the damage (a torn tail), the window ends
  at the newest exchange time held before it; with nothing before it (the lake's first data),
  it starts where it ends. Without a single exchange time on either side (spot bookTicker
  frames carry none), the receive times of the nearest frames stand in: the collector's clock,
  and said so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lake.binance.ws_frames import frame_facts
from lake.capture.segments import Chunk, Damage, SegmentContents


@dataclass(frozen=True)
class LostWindow:
    """Where one stream's lost frames lie: after its frame ``last_id`` (None: unknown) at
    ``start_ms``, before ``end_ms``.

    ``held_before``: some frame with an exchange time precedes the damage (else the window
    starts where it ends: the loss cannot be placed before the first data). ``local``: no
    exchange time was known, and the times are the collector's receive clock.
    """

    stream: str
    last_id: int | None
    start_ms: int
    end_ms: int
    held_before: bool = True
    local: bool = False


@dataclass(frozen=True)
class DamagedStretch:
    """One stretch of unreadable bytes, at ``offset`` in its segment, and what it lost."""

    offset: int
    data: bytes
    why: str
    streams: tuple[str, ...]
    windows: tuple[LostWindow, ...]

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


@dataclass(frozen=True)
class SegmentDamage:
    """A damaged segment, assessed: its readable frames, and each stretch that was lost."""

    segment: str
    size: int
    frames: int
    stretches: tuple[DamagedStretch, ...]

    @property
    def lost_bytes(self) -> int:
        return sum(len(s.data) for s in self.stretches)

    @property
    def streams(self) -> list[str]:
        return sorted({name for s in self.stretches for name in s.streams})

    def describe(self) -> str:
        """One line for the operator."""
        where = ", ".join(f"{s.offset}..{s.end} ({s.why})" for s in self.stretches)
        streams = ", ".join(self.streams) or "no market stream"
        return (
            f"damaged landing segment {self.segment}: {self.lost_bytes:,} of {self.size:,} "
            f"bytes unreadable at {where}; {self.frames:,} readable frames landed, the bytes "
            f"quarantined (base64), gaps recorded for {streams}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "segment": self.segment,
            "size": self.size,
            "frames": self.frames,
            "lost_bytes": self.lost_bytes,
            "stretches": [
                {"offset": s.offset, "bytes": len(s.data), "why": s.why, "streams": list(s.streams)}
                for s in self.stretches
            ],
        }


def assess(
    name: str,
    contents: SegmentContents,
    *,
    before: Sequence[Chunk] = (),
    after: Sequence[Chunk] = (),
) -> SegmentDamage:
    """What segment ``name`` lost, judged from its readable chunks and the chunks of the
    segments written just ``before`` and ``after`` it (see the module docstring)."""
    chunks = contents.chunks
    own = {c.label for c in chunks if c.label}
    near = {c.label for c in (*before, *after) if c.label}
    fallback = own or near
    stretches = []
    for d in contents.damage:
        labels = _labels(d, known=own | near, fallback=fallback)
        earlier = [*before, *chunks[: d.before]][::-1]
        later = [*chunks[d.before :], *after]
        around = _Around.of(earlier, later)
        windows = [_window(label, earlier, later, around) for label in labels]
        stretches.append(
            DamagedStretch(
                d.offset,
                d.data,
                d.why,
                tuple(label.decode() for label in labels),
                tuple(w for w in windows if w is not None),
            )
        )
    return SegmentDamage(name, contents.size, len(contents), tuple(stretches))


def _labels(d: Damage, *, known: set[bytes], fallback: set[bytes]) -> list[bytes]:
    if d.label is not None and (d.label == b"" or d.label in known):
        return [d.label] if d.label else []
    read = {d.label} if d.label and b"@" in d.label else set()
    return sorted(fallback | read)


Facts = tuple[int | None, int | None, int]
"""``(id, exchange ms, receive ns)`` of one frame."""


def _edge(chunk: Chunk, *, first: bool) -> Facts:
    """Facts of the first or the last frame of ``chunk``."""
    n = int(chunk.lengths[0 if first else -1])
    frame = chunk.lines[:n] if first else chunk.lines[-n - 1 : -1]
    ident, ms = frame_facts(frame)
    return ident, ms, chunk.recv_ns[0 if first else -1]


def _nearest(chunks: Iterable[Chunk], label: bytes, *, first: bool) -> Facts | None:
    """Facts of the nearest frame of stream ``label`` (the chunks are in order of nearness)."""
    for c in chunks:
        if c.label == label and len(c):
            return _edge(c, first=first)
    return None


@dataclass(frozen=True)
class _Around:
    """What any stream says on each side of one damaged stretch: the exchange time of the
    nearest timed frame, the receive time of the nearest frame, and the newest exchange time
    held before it."""

    before_ms: int | None
    before_ns: int | None
    after_ms: int | None
    after_ns: int | None
    newest_before_ms: int | None

    @classmethod
    def of(cls, earlier: list[Chunk], later: list[Chunk]) -> _Around:
        before_ms, before_ns = _nearest_time(earlier, first=False)
        after_ms, after_ns = _nearest_time(later, first=True)
        newest = _newest_time(earlier) if after_ms is None else None
        return cls(before_ms, before_ns, after_ms, after_ns, newest)


def _nearest_time(chunks: Iterable[Chunk], *, first: bool) -> tuple[int | None, int | None]:
    """The exchange time of the nearest frame of any stream that reports one, and the receive
    time of the nearest frame of any stream."""
    recv = None
    for c in chunks:
        if not c.label or not len(c):
            continue
        _, ms, ns = _edge(c, first=first)
        recv = ns if recv is None else recv
        if ms is not None:
            return ms, recv
    return None, recv


def _newest_time(chunks: Iterable[Chunk]) -> int | None:
    """The newest exchange time the last frame of any of ``chunks`` reports."""
    times = [_edge(c, first=False)[1] for c in chunks if c.label and len(c)]
    return max((t for t in times if t is not None), default=None)


def _window(
    label: bytes, earlier: list[Chunk], later: list[Chunk], around: _Around
) -> LostWindow | None:
    """Where stream ``label``'s lost frames lie; ``earlier`` runs backwards from the damage,
    ``later`` forwards. None when no frame at all is known on either side."""
    mine_before = _nearest(earlier, label, first=False)
    mine_after = _nearest(later, label, first=True)
    start = mine_before[1] if mine_before and mine_before[1] is not None else around.before_ms
    end = mine_after[1] if mine_after and mine_after[1] is not None else around.after_ms
    if end is None:  # nothing after it: as far as anything held before it reached
        end = around.newest_before_ms
    last_id = mine_before[0] if mine_before else None
    local = start is None and end is None
    if local:  # nothing reports an exchange time: the collector's clock, said so
        before_ns = mine_before[2] if mine_before else around.before_ns
        after_ns = mine_after[2] if mine_after else around.after_ns
        start = None if before_ns is None else before_ns // 1_000_000
        end = None if after_ns is None else after_ns // 1_000_000
    held = start is not None
    lo = start if start is not None else end
    hi = end if end is not None else start
    if lo is None or hi is None:
        return None
    return LostWindow(label.decode(), last_id, lo, max(lo, hi), held_before=held, local=local)
