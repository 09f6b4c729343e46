"""(pure) What a recording tells REST: its trades, aggTrades, closed klines and mark prices.

Built once per :class:`~lake.exchange.replay.Recording` from the recorded payloads (the ``data``
part of each frame), per (market, symbol). Each table holds one row per id (or kline open time),
however often the file repeats it, sorted by that key, with the replay second at which its frame
falls due. Queries return due rows only: REST never tells of a trade the replay has not reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec
import numpy as np
import numpy.typing as npt

T = TypeVar("T")
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
_NEVER = 2**62  # beyond any id or time


def _clamp(x: int | None) -> int:
    """An id or time as int64 can hold it (a client may send 20 digits); None is "no bound"."""
    return _NEVER if x is None else min(max(x, -_NEVER), _NEVER)


class Trade(msgspec.Struct, frozen=True, gc=False):
    """A ``<s>@trade`` payload; REST prints these fields::

    {"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,
     "p":"61800.30","q":"0.006","X":"MARKET","m":false}
    """

    t: int  # trade id
    p: str  # price
    q: str  # quantity
    T: int  # trade time, ms
    m: bool  # buyer is maker


class AggTrade(msgspec.Struct, frozen=True, gc=False):
    """A ``<s>@aggTrade`` payload (spot adds ``"M":true``)::

    {"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10",
     "f":23961322,"l":23961322,"T":1626992741421,"m":false}
    """

    a: int  # aggregate trade id
    p: str  # price
    q: str  # quantity
    f: int  # first trade id
    l: int  # last trade id  # noqa: E741
    T: int  # trade time, ms
    m: bool  # buyer is maker
    M: bool = True  # best price match (spot only)


class Kline(msgspec.Struct, frozen=True, gc=False):
    """The ``k`` object of a ``<s>@kline_<interval>`` payload::

    {"t":1626992700000,"T":1626992759999,"s":"SUSHIUSDT","i":"1m","f":126902874,"L":126902986,
     "o":"7.6080","c":"7.6170","h":"7.6180","l":"7.6070","v":"3005","n":113,"x":true,
     "q":"22875.8590","V":"1900","Q":"14464.6960","B":"0"}
    """

    t: int  # open time, ms
    T: int  # close time, ms
    o: str  # open
    h: str  # high
    l: str  # low  # noqa: E741
    c: str  # close
    v: str  # base volume
    n: int  # number of trades
    x: bool  # bar closed
    q: str  # quote volume
    V: str  # taker buy base volume
    Q: str  # taker buy quote volume


class Mark(msgspec.Struct, frozen=True, gc=False):
    """A ``<s>@markPrice[@1s]`` payload::

    {"e":"markPriceUpdate","E":1680652701000,"s":"BTCUSDT","p":"28147.27373413",
     "P":"28142.15563565","i":"28159.75642857","r":"0.00002754","T":1680652800000}
    """

    E: int  # event time, ms
    p: str  # mark price
    i: str = ""  # index price
    P: str = ""  # estimated settle price
    r: str = ""  # funding rate
    T: int = 0  # next funding time, ms


_PAYLOADS: dict[str, type[Any]] = {
    "trade": Trade,
    "aggTrade": AggTrade,
    "markPrice": Mark,
    "markPrice@1s": Mark,
}


class _KlineFrame(msgspec.Struct, frozen=True, gc=False):
    k: Kline


class _Book(msgspec.Struct, frozen=True, gc=False):
    b: str  # best bid price
    B: str  # best bid quantity


@dataclass(frozen=True, slots=True)
class Rows(Generic[T]):
    """Rows sorted by a unique ``key``, with their time (ms) and due replay second."""

    key: I64
    time: I64
    due: F64
    items: list[T]

    def ids(self, first: int, count: int, now_s: float, until_ms: int | None = None) -> list[T]:
        """Due rows with key in ``[first, first + count)`` (none after ``until_ms``).

        Binance's ids are dense, so these are the rows of a ``fromId`` page that the recording
        holds: a page is never filled up with later ids the real exchange would not send.
        """
        i, j = np.searchsorted(self.key, [_clamp(first), _clamp(first + count)])
        ok = (self.due[i:j] <= now_s) & (self.time[i:j] <= _clamp(until_ms))
        return self._pick(int(i) + np.flatnonzero(ok))

    def latest(self, limit: int, now_s: float) -> list[T]:
        """The ``limit`` due rows with the highest keys, oldest first."""
        return self._pick(np.flatnonzero(self.due <= now_s)[-limit:])

    def between(
        self, lo_ms: int | None, hi_ms: int | None, limit: int, now_s: float, *, oldest: bool
    ) -> list[T]:
        """Due rows with time in ``[lo_ms, hi_ms]`` (None: open): the first or last ``limit``."""
        lo = -_NEVER if lo_ms is None else _clamp(lo_ms)
        ok = (self.due <= now_s) & (self.time >= lo) & (self.time <= _clamp(hi_ms))
        idx = np.flatnonzero(ok)
        return self._pick(idx[:limit] if oldest else idx[-limit:])

    def _pick(self, idx: npt.NDArray[np.intp]) -> list[T]:
        return [self.items[i] for i in idx.tolist()]


def _rows(items: list[T], keys: list[int], times: list[int], due: list[float]) -> Rows[T]:
    """Sort by key and keep each key once (its first due copy)."""
    k, d = np.array(keys, dtype=np.int64), np.array(due, dtype=np.float64)
    order = np.lexsort((d, k))
    first = np.ones(len(order), dtype=bool)
    first[1:] = k[order][1:] != k[order][:-1]
    keep = order[first]
    t = np.array(times, dtype=np.int64)
    return Rows(k[keep], t[keep], d[keep], [items[i] for i in keep.tolist()])


def _no_rows() -> Rows[Any]:
    return _rows([], [], [], [])


@dataclass
class Recorded:
    """What a recording holds for one (market, symbol); ``*_dec`` are the printed decimals."""

    trades: Rows[Trade] = field(default_factory=_no_rows)
    aggs: Rows[AggTrade] = field(default_factory=_no_rows)
    klines: dict[str, Rows[Kline]] = field(default_factory=dict)  # closed bars by interval
    marks: Rows[Mark] = field(default_factory=_no_rows)  # keyed by event time
    price_dec: int = 8
    qty_dec: int = 8


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


def _decode(kind: type[T], stream: str, payloads: Sequence[bytes]) -> list[T]:
    try:
        return msgspec.json.decode(b"[" + b",".join(payloads) + b"]", type=list[kind])  # type: ignore[valid-type]
    except msgspec.DecodeError as exc:
        raise ValueError(f"recorded {stream} frames do not decode: {exc}") from None


def build(
    streams: Iterable[tuple[str, str, Sequence[float], Sequence[bytes]]],
) -> dict[tuple[str, str], Recorded]:
    """The tables of every (market, symbol) a recording holds any frame of.

    Args:
        streams: ``(market, stream name, due seconds, payloads)`` per recorded stream.

    Raises:
        ValueError: if a trade, aggTrade, kline or markPrice frame lacks a field REST prints.
    """
    out: dict[tuple[str, str], Recorded] = {}
    parts: dict[tuple[str, str, str], tuple[list[Any], list[float]]] = {}
    for market, stream, due, payloads in streams:
        sym, _, kind = stream.partition("@")
        rec = out.setdefault((market, sym.upper()), Recorded())
        if kind in _PAYLOADS:
            items: list[Any] = _decode(_PAYLOADS[kind], stream, payloads)
        elif kind.startswith("kline_"):
            items = [f.k for f in _decode(_KlineFrame, stream, payloads)]
        else:
            if kind == "bookTicker" and payloads:  # printed decimals, unless trades tell them
                book = _decode(_Book, stream, payloads[:1])[0]
                rec.price_dec, rec.qty_dec = _decimals(book.b), _decimals(book.B)
            continue
        items_due = parts.setdefault((market, sym.upper(), kind.removesuffix("@1s")), ([], []))
        items_due[0].extend(items)
        items_due[1].extend(due)
    for (market, sym, kind), (items, due) in parts.items():
        rec = out[(market, sym)]
        if kind == "markPrice":
            rec.marks = _rows(items, [x.E for x in items], [x.E for x in items], due)
            continue
        if kind == "trade":
            rec.trades = _rows(items, [x.t for x in items], [x.T for x in items], due)
            price, qty = items[0].p, items[0].q
        elif kind == "aggTrade":
            rec.aggs = _rows(items, [x.a for x in items], [x.T for x in items], due)
            price, qty = items[0].p, items[0].q
        else:
            closed = [(k, d) for k, d in zip(items, due, strict=True) if k.x]
            opens = [k.t for k, _ in closed]
            rec.klines[kind.removeprefix("kline_")] = _rows(
                [k for k, _ in closed], opens, opens, [d for _, d in closed]
            )
            price, qty = items[0].o, items[0].v
        rec.price_dec, rec.qty_dec = _decimals(price), _decimals(qty)
    return out
