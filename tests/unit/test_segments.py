"""Landing segments: round trip, torn tails, corruption and resynchronisation, recovery, rotation,
drop accounting."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from lake.capture.landing import LandingSink
from lake.capture.segments import (
    SegmentWriter,
    chunk_parts,
    closed_segments,
    decode_segment,
    encode_chunk,
    encode_payload,
    mark_landed,
    read_segment,
    recover,
)


def frames(n: int, start: int = 0) -> list[bytes]:
    return [b'{"stream":"btcusdt@aggTrade","data":{"a":%d}}' % i for i in range(start, start + n)]


def write_chunks(directory: Path, batches: list[list[bytes]]) -> Path:
    writer = SegmentWriter(directory, "um-test")
    ns = 0
    for batch in batches:
        writer.write_chunk(encode_payload(range(ns, ns + len(batch)), batch), len(batch))
        ns += len(batch)
    return writer.close()


def test_chunk_pieces_survive_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.writev

    def short(fd: int, buffers: list[memoryview]) -> int:  # the kernel may write less
        return real(fd, [bytes(buffers[0][:7])])

    monkeypatch.setattr(os, "writev", short)
    writer = SegmentWriter(tmp_path, "um-short")
    batches = [frames(3), frames(2, 3)]
    parts = chunk_parts([0, 1, 2], batches[0], b"btcusdt@aggTrade") + chunk_parts(
        [3, 4], batches[1], b"btcusdt@aggTrade"
    )
    writer.write_parts(parts, 5)
    got = read_segment(writer.close())
    assert got.frames == frames(5) and got.recv_ns == [0, 1, 2, 3, 4]
    assert got.damaged_bytes == 0 and [c.label for c in got.chunks] == [b"btcusdt@aggTrade"] * 2
    # the pieces are the same bytes as a chunk encoded whole
    assert b"".join(parts[:6]) == encode_chunk(
        encode_payload([0, 1, 2], batches[0], b"btcusdt@aggTrade"), 3
    )


def test_pieces_cut_a_chunk_on_frame_boundaries_even_with_raw_newlines(tmp_path: Path) -> None:
    sent = frames(10)
    sent[4] = b'{"odd":"line\nbreak"}'  # a raw newline inside a frame
    path = write_chunks(tmp_path, [sent])
    (chunk,) = read_segment(path).chunks
    pieces = list(chunk.pieces(3))
    assert [len(p) for p in pieces] == [3, 3, 3, 1]
    assert [f for p in pieces for f in p.frames()] == sent
    assert [ns for p in pieces for ns in p.recv_ns] == list(range(10))
    assert b"".join(p.lines for p in pieces) == chunk.lines
    assert list(chunk.pieces(10)) == [chunk]


def test_round_trip(tmp_path: Path) -> None:
    batches = [frames(10), frames(5, 10), frames(1, 15)]
    path = write_chunks(tmp_path, batches)
    assert path.suffix == ".seg"
    got = read_segment(path)
    assert got.frames == frames(16)
    assert got.recv_ns == list(range(16))
    assert (len(got.chunks), got.damaged_bytes, got.damage) == (3, 0, [])


def test_a_torn_tail_loses_only_the_unfinished_chunk(tmp_path: Path) -> None:
    path = write_chunks(tmp_path, [frames(10), frames(10, 10), frames(10, 20)])
    data = path.read_bytes()
    rng = random.Random(7)
    for _ in range(50):
        cut = rng.randrange(len(data))
        got = decode_segment(data[:cut])
        assert got.frames == frames(len(got.frames))  # always a whole-chunk prefix
        assert len(got.frames) % 10 == 0
        used = sum(16 + 2 + 12 * len(c) + len(c.lines) for c in got.chunks)
        assert got.damaged_bytes == cut - used
        if cut > used:  # the torn chunk is reported, where it starts
            (torn,) = got.damage
            assert (torn.offset, torn.why, torn.before) == (used, "truncated", len(got.chunks))
        assert got.recv_ns == list(range(len(got.frames)))


def test_frames_with_raw_newlines_survive(tmp_path: Path) -> None:
    odd = [b'{"a":\n1}', b"", b"\n\n", b'{"b":2}']
    path = write_chunks(tmp_path, [odd, frames(3)])
    assert read_segment(path).frames == odd + frames(3)


def chunk_offsets(path: Path) -> list[int]:
    """Where each chunk of an undamaged segment starts."""
    data, offsets, pos = path.read_bytes(), [], 0
    while pos < len(data):
        offsets.append(pos)
        pos += 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")
    return offsets


def labelled(directory: Path, batches: list[tuple[bytes, list[bytes]]]) -> Path:
    writer = SegmentWriter(directory, "um-labelled")
    for label, batch in batches:
        writer.write_parts(chunk_parts(range(len(batch)), batch, label), len(batch))
    return writer.close()


def test_a_corrupt_chunk_costs_only_its_own_frames(tmp_path: Path) -> None:
    path = write_chunks(tmp_path, [frames(3), frames(3, 3), frames(3, 6)])
    starts = chunk_offsets(path)
    data = bytearray(path.read_bytes())
    data[starts[2] - 5] ^= 0xFF  # a byte among the second chunk's frames
    got = decode_segment(bytes(data))
    assert got.frames == frames(3) + frames(3, 6)  # reading resumed at the third chunk
    (bad,) = got.damage
    assert (bad.offset, bad.end, bad.why, bad.before) == (starts[1], starts[2], "corrupt", 1)
    assert bad.data == bytes(data[starts[1] : starts[2]])
    assert got.damaged_bytes == starts[2] - starts[1]


def test_a_damaged_header_is_skipped_to_the_next_chunk(tmp_path: Path) -> None:
    path = labelled(tmp_path, [(b"btcusdt@aggTrade", frames(3)), (b"btcusdt@trade", frames(4))])
    starts = chunk_offsets(path)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF  # the first chunk's magic: nothing of its header can be trusted
    got = decode_segment(bytes(data))
    assert [c.label for c in got.chunks] == [b"btcusdt@trade"]
    (bad,) = got.damage
    assert (bad.offset, bad.end, bad.why, bad.label) == (0, starts[1], "unframed", None)


def test_the_label_of_a_corrupt_chunk_is_read_when_its_header_holds(tmp_path: Path) -> None:
    path = labelled(tmp_path, [(b"btcusdt@aggTrade", frames(3)), (b"btcusdt@trade", frames(4))])
    data = bytearray(path.read_bytes())
    data[chunk_offsets(path)[1] - 3] ^= 0x01  # one bit of the first chunk's last frame
    (bad,) = decode_segment(bytes(data)).damage
    assert (bad.why, bad.label) == ("corrupt", b"btcusdt@aggTrade")
    torn = decode_segment(path.read_bytes()[:-10]).damage  # the second chunk, torn
    assert [(d.why, d.label) for d in torn] == [("truncated", b"btcusdt@trade")]


def test_any_flipped_byte_loses_at_most_the_chunk_it_hits(tmp_path: Path) -> None:
    batches = [frames(4, 4 * k) for k in range(6)]
    path = write_chunks(tmp_path, batches)
    starts = [*chunk_offsets(path), path.stat().st_size]
    clean = path.read_bytes()
    rng = random.Random(3)
    for _ in range(200):
        at = rng.randrange(len(clean))
        data = bytearray(clean)
        data[at] ^= rng.randrange(1, 256)
        got = decode_segment(bytes(data))
        hit = next(k for k in range(6) if starts[k] <= at < starts[k + 1])
        assert got.frames == [f for k, b in enumerate(batches) if k != hit for f in b]
        (bad,) = got.damage
        assert (bad.offset, bad.end) == (starts[hit], starts[hit + 1])


def test_recover_closes_segments_left_open(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, "um-dead")
    writer.write_chunk(encode_payload([1], [b"x"]), 1)  # the process "dies" here: never closed
    assert closed_segments(tmp_path) == []
    recovered = recover(tmp_path)
    assert [p.name for p in recovered] == ["um-dead.seg"]
    assert read_segment(recovered[0]).frames == [b"x"]
    landed = mark_landed(recovered[0])
    assert landed.parent.name == "landed" and closed_segments(tmp_path) == []


def test_sink_lands_everything_and_rotates_by_size(tmp_path: Path) -> None:
    sink = LandingSink(tmp_path, prefix="um", max_segment_bytes=4096)
    sent = frames(2000)
    for i, frame in enumerate(sent):
        sink.append(i, frame)
        if i % 100 == 99:
            sink.flush()
    closed = sink.close()
    assert len(closed) > 5
    assert closed == closed_segments(tmp_path)
    got: list[bytes] = []
    for path in closed:
        got += read_segment(path).frames
    assert got == sent
    assert sink.stats.frames == sink.stats.durable_frames == 2000
    assert sink.dropped == 0


def test_sink_counts_drops_past_its_memory_bound(tmp_path: Path) -> None:
    sink = LandingSink(tmp_path, prefix="um", max_buffer_bytes=1000, max_pending_flushes=1)
    disk = threading.Event()
    write = sink._write

    def stalled(*args: Any) -> None:  # the disk stalls until the test lets it go
        disk.wait()
        write(*args)

    sink._write = stalled  # type: ignore[method-assign]
    buf = sink.buffer(b"btcusdt@aggTrade")
    for i, frame in enumerate(frames(200)):
        buf.add(1_000 + i, frame)
        sink.flush()  # once the queue is full and past the bound, frames are dropped, counted
    assert sink.dropped > 0
    disk.set()
    sink.close()
    chunks = [c for p in closed_segments(tmp_path) for c in read_segment(p).chunks]
    kept = sum(len(c) for c in chunks if c.label)
    assert kept + sink.dropped == 200
    # every drop is written down as a coverage gap of the stream, spanning the frames lost
    gaps = [msgspec.json.decode(f) for c in chunks if not c.label for f in c.frames()]
    assert gaps and all(g["cryptolake"] == "coverage_gap" for g in gaps)
    assert {s for g in gaps for s in g["streams"]} == {"btcusdt@aggTrade"}
    kept_recv = {ns for c in chunks if c.label for ns in c.recv_ns}
    lost_recv = set(range(1_000, 1_200)) - kept_recv
    assert min(lost_recv) == min(g["from_ns"] for g in gaps)
    assert max(lost_recv) == max(g["to_ns"] for g in gaps)


def test_sink_keeps_one_chunk_per_stream(tmp_path: Path) -> None:
    sink = LandingSink(tmp_path, prefix="um")
    aggs, trades = sink.buffer(b"btcusdt@aggTrade"), sink.buffer(b"btcusdt@trade")
    for i in range(10):
        aggs.add(i, b'{"a":%d}' % i)
        trades.add(100 + i, b'{"t":%d}' % i)
    sink.append(7, b'{"cryptolake":"x"}')
    sink.flush()
    (path,) = sink.close()
    by_label = {c.label: c for c in read_segment(path).chunks}
    assert set(by_label) == {b"btcusdt@aggTrade", b"btcusdt@trade", b""}
    assert by_label[b"btcusdt@trade"].frames() == [b'{"t":%d}' % i for i in range(10)]
    assert by_label[b"btcusdt@trade"].recv_ns == list(range(100, 110))
    assert by_label[b"btcusdt@aggTrade"].lines == b"".join(b'{"a":%d}\n' % i for i in range(10))


def test_sink_rotates_by_age(tmp_path: Path) -> None:
    sink = LandingSink(tmp_path, prefix="spot", rotate_s=0.05)
    for k in range(3):
        sink.append(k, b"f%d" % k)
        sink.flush()
        while sink.stats.durable_frames <= k:  # written, so the next write finds it aged
            time.sleep(0.005)
        time.sleep(0.1)
    assert len(sink.close()) == 3
