"""Silence rules: which silent streams are recycled, and which are only reported (once)."""

from __future__ import annotations

import itertools

from lake.binance.liveness import Liveness

S = 1_000_000_000  # ns


class Streams:
    """Receive times the test sets by hand, and a Liveness watching them."""

    def __init__(self, streams: list[str], limits: dict[str, float], max_recycles: int = 3):
        self.last = dict.fromkeys(streams, 0)
        self.live = Liveness(max_recycles=max_recycles)
        self.live.watch(streams, limits, {s: self._reader(s) for s in streams}, now_ns=0)

    def _reader(self, stream: str):  # type: ignore[no-untyped-def]
        return lambda: self.last[stream]

    def deliver(self, t_s: float, *streams: str) -> None:
        for s in streams:
            self.last[s] = int(t_s * S)


UM = ["btcusdt@aggTrade", "btcusdt@trade", "btcusdt@markPrice@1s", "ethusdt@aggTrade"]
LIMITS = {"aggTrade": 10.0, "trade": 10.0, "markPrice@1s": 5.0}


def test_a_stream_that_never_delivered_is_reported_once_and_never_recycled() -> None:
    st = Streams(UM, LIMITS)
    reports = []
    for t in range(1, 120):
        st.deliver(t, "btcusdt@aggTrade", "btcusdt@trade", "ethusdt@aggTrade")
        v = st.live.check(UM, opened_ns=0, now_ns=t * S)
        assert v.recycle == ()
        reports += v.reports
    assert [(r.stream, r.reason) for r in reports] == [("btcusdt@markPrice@1s", "never delivered")]


def test_a_halted_symbol_is_quiet_and_never_recycled_while_others_trade() -> None:
    st = Streams(UM, LIMITS)
    reports = []
    for t in range(1, 300):
        st.deliver(t, "ethusdt@aggTrade", "btcusdt@markPrice@1s")  # the mark price keeps ticking
        if t < 30:
            st.deliver(t, "btcusdt@aggTrade", "btcusdt@trade")
        v = st.live.check(UM, opened_ns=0, now_ns=t * S)
        assert v.recycle == ()
        reports += v.reports
    assert sorted((r.stream, r.reason) for r in reports) == [
        ("btcusdt@aggTrade", "symbol quiet"),
        ("btcusdt@trade", "symbol quiet"),
    ]


def test_a_stuck_stream_is_recycled_with_backoff_then_given_up() -> None:
    st = Streams(UM, LIMITS)
    recycles, reports, opened = [], [], 0
    for t in range(1, 600):
        st.deliver(t, "btcusdt@aggTrade", "btcusdt@markPrice@1s", "ethusdt@aggTrade")
        if t < 20:
            st.deliver(t, "btcusdt@trade")  # then stuck while its symbol still trades
        v = st.live.check(UM, opened_ns=opened * S, now_ns=t * S)
        if v.recycle:
            recycles.append(t)
            opened = t  # a new connection
        reports += v.reports
    assert len(recycles) == 3  # bounded
    gaps = [b - a for a, b in itertools.pairwise(recycles)]
    assert gaps[0] >= 20 and gaps[1] >= 40  # each wait twice the last
    assert [(r.stream, r.reason) for r in reports] == [("btcusdt@trade", "given up")]


def test_a_stream_that_flows_again_starts_afresh() -> None:
    st = Streams(UM, LIMITS, max_recycles=1)
    recycled = []
    opened = 0
    for t in range(1, 200):
        st.deliver(t, "btcusdt@aggTrade", "btcusdt@markPrice@1s", "ethusdt@aggTrade")
        if t < 20 or 40 <= t < 60:
            st.deliver(t, "btcusdt@trade")
        v = st.live.check(UM, opened_ns=opened * S, now_ns=t * S)
        if v.recycle:
            recycled.append(t)
            opened = t
    # one recycle for each of the two silences: the first one's count was forgotten
    assert len(recycled) == 2 and recycled[0] < 40 < recycled[1]


def test_nothing_flowing_at_all_recycles_the_connection() -> None:
    st = Streams(UM, LIMITS)
    st.deliver(1, *UM)
    v = st.live.check(UM, opened_ns=0, now_ns=30 * S)
    assert set(v.recycle) == set(UM)


def test_streams_without_a_limit_are_not_watched() -> None:
    streams = ["btcusdt@forceOrder", "btcusdt@aggTrade"]
    st = Streams(streams, LIMITS)
    for t in range(1, 100):
        st.deliver(t, "btcusdt@aggTrade")
        v = st.live.check(streams, opened_ns=0, now_ns=t * S)
        assert v == v.__class__()


def test_a_halt_seen_one_stream_at_a_time_is_not_taken_for_a_stuck_stream() -> None:
    # the trade stream's last frame came 2 s before the aggTrade stream's: when trade crosses
    # its limit, aggTrade has not yet, and nothing proves the symbol still trades
    st = Streams(UM, LIMITS)
    reports = []
    for t in range(1, 100):
        st.deliver(t, "ethusdt@aggTrade", "btcusdt@markPrice@1s")
        if t <= 28:
            st.deliver(t, "btcusdt@trade")
        if t <= 30:
            st.deliver(t, "btcusdt@aggTrade")
        v = st.live.check(UM, opened_ns=0, now_ns=t * S)
        assert v.recycle == (), t
        reports += v.reports
    assert {r.reason for r in reports} == {"symbol quiet"} and len(reports) == 2
