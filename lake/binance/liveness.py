"""Which silent streams a recycle could help, and which are quiet on the exchange (pure).

A stream is *silent* once it has gone longer than its limit (``capture.liveness_s``) without a
frame. What that means depends on what else is flowing:

* **never delivered** — no frame on any connection since the collector started: a recycle cannot
  bring what never came (a stream the exchange does not publish, a replay without it, a symbol
  that never trades). Reported once; never recycled.
* **symbol quiet** — every trade-driven stream of its symbol (trades, aggTrades, book, klines;
  markPrice ticks on a timer and does not count) is silent on every connection of the market,
  while other symbols still flow: the symbol is halted or delisted. Reported once; never recycled.
* **stuck** — another trade-driven stream of its symbol delivered a whole limit after it fell
  silent (the symbol trades), or nothing at all flows on the connection: the connection is
  recycled (make-before-break). Each further recycle for the same stream waits twice as long,
  and after ``max_recycles`` fruitless ones the stream is given up: reported once as capture loss.

A stream that delivers again starts afresh. One :class:`Liveness` serves every connection of a
market (a symbol's streams live on two USD-M routes); it reads receive times through
:class:`Watched` and takes the clock as an argument, so every decision is a unit test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

SilenceReason = Literal["never delivered", "symbol quiet", "given up"]

# Streams that tick on a timer whatever the market does: their silence says nothing about trading.
TIMER_STREAMS = ("markPrice",)


@dataclass
class Watched:
    """One stream under watch: its limit and how to read its last receive time (ns, 0: never)."""

    stream: str
    limit_s: float
    last_recv_ns: Callable[[], int]
    recycles: int = 0
    next_recycle_ns: int = 0
    reported: SilenceReason | None = None
    mark_ns: int = 0  # the last recycle or report: a frame after it means the stream flows again
    since_ns: int = 0  # when watching began (the first connection carrying it opened)

    @property
    def symbol(self) -> str:
        return self.stream.split("@", 1)[0]

    @property
    def trade_driven(self) -> bool:
        name = self.stream.split("@", 1)[1] if "@" in self.stream else self.stream
        return not name.startswith(TIMER_STREAMS)

    def silent_for_s(self, now_ns: int, opened_ns: int) -> float:
        return (now_ns - max(self.last_recv_ns(), opened_ns, self.since_ns)) / 1e9


@dataclass(frozen=True)
class Silence:
    """A stream reported silent, once per episode (a control record and a ledger row)."""

    stream: str
    reason: SilenceReason
    last_recv_ns: int


@dataclass(frozen=True)
class Verdict:
    """What one check of a connection decided."""

    recycle: tuple[str, ...] = ()
    reports: tuple[Silence, ...] = ()


@dataclass
class Liveness:
    """Silence rules for every stream of one market (see the module docstring)."""

    max_recycles: int = 3
    watched: dict[str, Watched] = field(default_factory=dict)

    def watch(
        self,
        streams: Iterable[str],
        limits: Mapping[str, float],
        last_recv: Mapping[str, Callable[[], int]],
        now_ns: int,
    ) -> None:
        """Put ``streams`` with a configured limit under watch (keyed by the name's suffix)."""
        for stream in streams:
            name = stream.split("@", 1)[1] if "@" in stream else stream
            limit = limits.get(name)
            if limit is not None and stream not in self.watched:
                self.watched[stream] = Watched(stream, limit, last_recv[stream], since_ns=now_ns)

    def check(self, streams: Iterable[str], *, opened_ns: int, now_ns: int) -> Verdict:
        """Decide for the streams of one connection, opened at ``opened_ns``."""
        mine = [self.watched[s] for s in streams if s in self.watched]
        silent = [w for w in mine if w.silent_for_s(now_ns, opened_ns) > w.limit_s]
        for w in mine:
            if w.mark_ns and w.last_recv_ns() > w.mark_ns:
                w.recycles, w.next_recycle_ns, w.reported, w.mark_ns = 0, 0, None, 0  # flows again
        if not silent:
            return Verdict()
        reports: list[Silence] = []
        recycle: list[str] = []
        all_silent = len(silent) == len(mine)
        for w in silent:
            if w.reported is not None:
                continue
            if w.last_recv_ns() == 0:
                w.reported = "never delivered"
            elif all_silent or self._still_trades(w):
                if w.recycles >= self.max_recycles:
                    w.reported = "given up"
                elif now_ns >= w.next_recycle_ns:
                    w.recycles += 1
                    w.next_recycle_ns = now_ns + _ns(w.limit_s * 2**w.recycles)
                    w.mark_ns = now_ns
                    recycle.append(w.stream)
            elif self._symbol_quiet(w.symbol, now_ns):
                w.reported = "symbol quiet"
            # else: its symbol's other streams are going quiet too; judged at a later check
            if w.reported is not None:
                w.mark_ns = now_ns
                reports.append(Silence(w.stream, w.reported, w.last_recv_ns()))
        return Verdict(tuple(recycle), tuple(reports))

    def _still_trades(self, w: Watched) -> bool:
        """Another trade-driven stream of ``w``'s symbol delivered a whole limit after ``w``
        fell silent: the symbol trades, so ``w`` is stuck on its connection."""
        bound = w.last_recv_ns() + _ns(w.limit_s)
        return any(
            o.last_recv_ns() > bound
            for o in self.watched.values()
            if o is not w and o.symbol == w.symbol and o.trade_driven
        )

    def _symbol_quiet(self, symbol: str, now_ns: int) -> bool:
        """Every trade-driven stream of ``symbol`` is silent (on any connection) while some
        other stream still flows, so the connections are alive."""
        own = [w for w in self.watched.values() if w.symbol == symbol and w.trade_driven]
        if not own or any(w.silent_for_s(now_ns, 0) <= w.limit_s for w in own):
            return False
        return any(
            w.silent_for_s(now_ns, 0) <= w.limit_s for w in self.watched.values() if w not in own
        )


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)
