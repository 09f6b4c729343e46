"""Replay of recorded sessions, byte for byte, at the original pace or N times faster.

Formats (see ``../shared/realdata/README.md``):

* cryptofeed: first line ``<wss url> <-> <connect ts>``, then ``<recv ts>: <frame>``;
* hftbacktest: gzip text ``<recv ts> <frame>`` (ns in ``*.gz``, µs in ``*.dat.gz``; the unit is
  read from the magnitude); lines without ``"stream"`` are REST depth snapshots and are skipped.

Every frame is a combined-stream wrapper. Each stream is served on its real route (USD-M
``bookTicker``/``depth`` on ``/um/public``, the rest on ``/um/market``; spot on ``/spot``): a
combined subscriber gets the recorded line itself, a raw subscriber its ``data`` part. The replay
clock starts when the first client subscribes, and every subscription starts at the recording's
first frame (frames already due arrive at once), so a late client misses nothing.

The recording also answers REST for the (market, symbol) pairs it holds
(:attr:`Recording.replayed`): :mod:`lake.exchange.replay_data` keeps their trades, aggTrades,
closed klines and mark prices, and a row is served once its frame is due on the replay clock.
COIN-M recordings are refused: a ``dstream`` URL header, a ``cm``/``coinm`` folder, or a COIN-M
symbol such as ``btcusd_perp``.
"""

from __future__ import annotations

import gzip
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lake.exchange import replay_data
from lake.exchange.wsframe import Framed, build

_WRAPPED = re.compile(rb'^\{"stream":"([^"]+)","data":')
_EVENT_MS = re.compile(rb'"E":(\d+)')
_COIN_M = re.compile(r"^[a-z0-9]+usd_(?:perp|\d{6})@")  # btcusd_perp, ethusd_240927 (not usdt_)
_REFUSED = "COIN-M recordings are not served (only spot and USD-M)"


class ReplayError(ValueError):
    """A recording that cannot be replayed; the message names the file and the problem."""


@dataclass
class _Stream:
    seq: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)


def _to_seconds(ts: float) -> float:
    if ts > 1e17:
        return ts / 1e9
    if ts > 1e14:
        return ts / 1e6
    if ts > 1e11:
        return ts / 1e3
    return ts


def route_for(market: str, stream: str) -> str:
    """Real route of a recorded stream."""
    if market == "spot":
        return "spot"
    return "um_public" if "@bookTicker" in stream or "@depth" in stream else "um_market"


def market_of(route: str) -> str:
    """The market (``spot`` or ``um``) of a WebSocket route."""
    return "spot" if route == "spot" else "um"


class Recording:
    """Recorded frames grouped by (route, stream), with a shared replay clock."""

    def __init__(self, paths: list[Path], speed: float = 1.0, market: str = "auto") -> None:
        """Load ``paths``.

        Args:
            paths: recording files (cryptofeed or hftbacktest format).
            speed: replay speed; 0 means as fast as the client reads.
            market: "spot", "um" or "auto" (from the URL header, the path, then the content).

        Raises:
            ReplayError: if a file is missing, empty, or not in a known format.
        """
        self.speed = speed
        self.start_wall: float | None = None
        self.streams: dict[tuple[str, str], _Stream] = {}
        self._framed: dict[tuple[str, str, bool], tuple[Framed, npt.NDArray[np.float64]]] = {}
        self.frames = 0
        self.origin_ms: int | None = None  # exchange time at replay second 0 (first file's E)
        for n, path in enumerate(paths):
            self._load(path, n, market)
        names = ", ".join(map(str, paths))
        if not self.frames:
            raise ReplayError(
                f"no stream frames in {names}: not a recording (expected cryptofeed or "
                "hftbacktest lines)"
            )
        self.duration_s = max(max(s.times) for s in self.streams.values())
        by_stream = (
            (market_of(route), name, s.times, s.payloads)
            for (route, name), s in self.streams.items()
        )
        try:
            self.tables = replay_data.build(by_stream)
        except ValueError as exc:
            raise ReplayError(f"{names}: {exc}") from None
        self.replayed: frozenset[tuple[str, str]] = frozenset(self.tables)
        """The (market, SYMBOL) pairs the recording holds any frame of: ``("um", "BTCUSDT")``."""

    def _load(self, path: Path, file_no: int, market: str) -> None:
        if not path.is_file():
            raise ReplayError(f"replay file not found: {path}")
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rb") as fh:
                raw = fh.read()
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise ReplayError(f"{path} cannot be read as a recording: {exc}") from None
        lines = raw.split(b"\n")
        header = lines[0] if lines else b""
        if b" <-> " in header:  # cryptofeed
            url = header.split(b" <-> ")[0].decode(errors="replace")
            if "dstream" in url:
                raise ReplayError(f"{path}: {_REFUSED}")
            file_market = "um" if "fstream" in url else "spot"
            body, sep = lines[1:], b": "
        else:
            body, sep = lines, b" "
            if {"cm", "coinm"} & {part.lower() for part in path.parts}:
                raise ReplayError(f"{path}: {_REFUSED}")
            file_market = "spot" if "spot" in path.parts else "um"
            if "usdm" not in path.parts and "spot" not in path.parts:
                file_market = (
                    "um" if b'"e":"bookTicker"' in raw or b'"X":"MARKET"' in raw else "spot"
                )
        if market != "auto":
            file_market = market
        t0: float | None = None
        for i, line in enumerate(body):
            ts_raw, found, frame = line.partition(sep)
            if not found or not frame.startswith(b'{"stream"'):
                continue  # blank line or a REST snapshot recorded beside the stream
            try:
                ts = _to_seconds(float(ts_raw))
            except ValueError:
                raise ReplayError(f"{path}:{i + 1}: bad timestamp {ts_raw[:30]!r}") from None
            m = _WRAPPED.match(frame)
            if not m or not frame.endswith(b"}"):
                raise ReplayError(f"{path}:{i + 1}: not a combined-stream frame")
            stream = m.group(1).decode()
            if _COIN_M.match(stream):
                raise ReplayError(f"{path}:{i + 1}: {stream} is a COIN-M stream; {_REFUSED}")
            t0 = ts if t0 is None else t0
            if file_no == 0 and self.origin_ms is None and (e := _EVENT_MS.search(frame)):
                self.origin_ms = int(e.group(1)) - round((ts - t0) * 1000)
            s = self.streams.setdefault((route_for(file_market, stream), stream), _Stream())
            s.seq.append(file_no * 10**9 + i)
            s.times.append(ts - t0)
            s.lines.append(frame)
            s.payloads.append(frame[m.end() : -1])
            self.frames += 1

    def start(self) -> float:
        """Start the replay clock on first use; returns its wall start."""
        if self.start_wall is None:
            self.start_wall = time.monotonic()
        return self.start_wall

    def elapsed(self) -> float:
        """Recording seconds replayed so far."""
        if self.speed <= 0:
            return float("inf")
        return (time.monotonic() - self.start()) * self.speed

    def exchange_ms(self) -> int | None:
        """The replay clock as exchange time: the first frame's ``E`` plus the replayed time.

        At speed 0 every frame is due, so the clock stands at the end of the recording. None
        when no frame of the first file carries an event time.
        """
        if self.origin_ms is None:
            return None
        elapsed = self.duration_s if self.speed <= 0 else self.elapsed()
        return self.origin_ms + int(elapsed * 1000)

    def source(self, route: str, name: str, combined: bool) -> ReplaySource | None:
        """A new subscription to a recorded stream, or None if the route does not carry it."""
        s = self.streams.get((route, name))
        if s is None:
            return None
        key = (route, name, combined)
        if key not in self._framed:
            seq = np.array(s.seq, dtype=np.int64)
            self._framed[key] = (
                build(seq, s.lines if combined else s.payloads, None),
                np.array(s.times),
            )
        framed, times = self._framed[key]
        self.start()
        return ReplaySource(self, framed, times)


class ReplaySource:
    """One subscription's cursor in a recorded stream (``e_ms`` holds file order)."""

    def __init__(self, rec: Recording, framed: Framed, times: npt.NDArray[np.float64]) -> None:
        """Start at the first frame."""
        self.rec, self.framed, self.times, self.index = rec, framed, times, 0

    def now(self) -> float:
        """Recording seconds replayed so far."""
        return self.rec.elapsed()

    def take(self, max_n: int, now: float) -> tuple[Framed, int, int]:
        """The frames due at replay time ``now`` (at most ``max_n``)."""
        i = self.index
        j = min(int(np.searchsorted(self.times, now, side="right")), i + max_n)
        self.index = max(i, j)
        return self.framed, i, self.index

    def wake_in(self) -> float:
        """Wall seconds until the next frame is due (inf at the end)."""
        if self.index >= len(self.times):
            return float("inf")
        if self.rec.speed <= 0:
            return 0.0
        return max(0.0, (float(self.times[self.index]) - self.rec.elapsed()) / self.rec.speed)
