"""The read loop's per-stream buffer and the figures read from it."""

from __future__ import annotations

from lake.binance.ws_frames import StreamBuffer, StreamStats


def frame(i: int, event_ms: int) -> bytes:
    return b'{"stream":"btcusdt@trade","data":{"e":"trade","E":%d,"t":%d}}' % (event_ms, i)


def test_take_empties_in_place_and_keeps_the_appends_valid() -> None:
    buf = StreamBuffer(b"btcusdt@trade")
    add_frame, add_recv = buf.frames.append, buf.recv.append  # what the read loop holds
    for i in range(3):
        add_frame(frame(i, 1_000))
        add_recv(10 + i)
    assert buf.take() == ([frame(i, 1_000) for i in range(3)], [10, 11, 12])
    assert buf.frames == [] and buf.recv == []
    add_frame(frame(3, 1_000))
    add_recv(13)
    assert buf.take() == ([frame(3, 1_000)], [13])
    assert buf.received == 4


def test_a_frame_half_added_waits_for_its_receive_time() -> None:
    buf = StreamBuffer(b"x")
    buf.frames.append(b"a")  # the receive time is not appended yet
    assert buf.take() == ([], [])
    buf.recv.append(5)
    assert buf.take() == ([b"a"], [5])


def test_stats_read_messages_last_receive_and_latency_from_the_buffer() -> None:
    buf = StreamBuffer(b"btcusdt@trade")
    stats = StreamStats(buf)
    assert (stats.messages, stats.last_recv_ns, stats.latency_ms) == (0, 0, None)
    buf.add(1_700_000_000_250_000_000, frame(1, 1_700_000_000_000))
    assert stats.messages == 1
    assert stats.last_recv_ns == 1_700_000_000_250_000_000
    assert stats.latency_ms == 250.0
    buf.take()  # after a flush the figures stay those of the newest frame
    assert (stats.messages, stats.last_recv_ns, stats.latency_ms) == (
        1,
        1_700_000_000_250_000_000,
        250.0,
    )
    buf.add(1_700_000_001_000_000_000, b"not json")
    assert stats.messages == 2 and stats.latency_ms is None
