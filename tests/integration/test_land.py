"""Landing segments into bronze: idempotent, quarantines bad frames, records every gap."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from lake.binance.ws_frames import control_frame
from lake.capture.land import land_market
from lake.capture.landing import LandingSink
from lake.capture.repair import RepairResult
from lake.capture.segments import closed_segments
from lake.schemas import AGG_TRADES, GAPS, MARK_PRICE, QUARANTINE
from lake.storage import Lake

T0_MS = 1_704_067_200_000  # 2024-01-01


def agg(a: int, symbol: str = "BTCUSDT") -> bytes:
    payload = {
        "e": "aggTrade",
        "E": T0_MS + a * 10 + 1,
        "s": symbol,
        "a": a,
        "p": "42000.1",
        "q": "0.5",
        "f": 3 * a,
        "l": 3 * a + 2,
        "T": T0_MS + a * 10,
        "m": a % 2 == 0,
    }
    return json.dumps({"stream": f"{symbol.lower()}@aggTrade", "data": payload}).encode()


def mark(second: int) -> bytes:
    payload = {
        "e": "markPriceUpdate",
        "E": T0_MS + second * 1000,
        "s": "BTCUSDT",
        "p": "42000.0",
        "i": "41999.0",
        "P": "42001.0",
        "r": "0.0001",
        "T": T0_MS + 8 * 3600_000,
    }
    return json.dumps({"stream": "btcusdt@markPrice@1s", "data": payload}).encode()


def write(directory: Path, frames: list[bytes]) -> None:
    """Land frames as the collector does: each stream's frames in its own buffer."""
    sink = LandingSink(directory, prefix="um")
    for i, f in enumerate(frames):
        label = f[11 : f.find(b'"', 11)] if f.startswith(b'{"stream":"') else b""
        sink.append(1_000 + i, f, label=label)
    sink.flush()
    sink.close()


def test_land_merges_quarantines_and_records_gaps(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    landing = tmp_path / "landing" / "um"
    frames = [agg(a) for a in range(100) if not 40 <= a < 45]
    frames += [mark(s) for s in (0, 1, 2, 6, 7)]
    frames += [b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade",', b'{"result":null,"id":1}']
    frames.append(
        control_frame(
            "coverage_gap",
            cause="reconnect",
            from_ns=T0_MS * 10**6,
            to_ns=(T0_MS + 500) * 10**6,
            streams=["btcusdt@bookTicker", "btcusdt@aggTrade", "btcusdt@trade"],
            # what the exchange said last before the break; trade had not delivered at all
            before={"btcusdt@bookTicker": [7, T0_MS + 400], "btcusdt@aggTrade": [99, T0_MS + 990]},
            after_ms=T0_MS + 1_500,
        )
    )
    frames.append(  # a replay that started over: the window runs backwards and hides nothing
        control_frame(
            "coverage_gap",
            cause="reconnect",
            streams=["ethusdt@aggTrade"],
            before={"ethusdt@aggTrade": [99, T0_MS + 990]},
            after_ms=T0_MS,
        )
    )
    write(landing, frames)

    result = land_market(lake, landing, "um")
    assert result.segments == 1 and result.rejected == 1
    assert result.rows == {"agg_trades": 95, "mark_price": 5}
    assert closed_segments(landing) == []
    bronze = lake.read(AGG_TRADES)
    assert bronze.height == 95 and set(bronze["source"]) == {"ws"}
    assert lake.read(MARK_PRICE).height == 5
    quarantined = lake.read(QUARANTINE)
    assert quarantined.height == 1 and "aggTrade" in quarantined["payload"][0]

    gaps = lake.read(GAPS).sort("table_name", "kind")
    by_kind = {(r["table_name"], r["kind"]): r for r in gaps.iter_rows(named=True)}
    hole = by_kind[("bronze.agg_trades", "id")]
    assert (hole["start_id"], hole["end_id"], hole["status"]) == (40, 44, "open")
    assert by_kind[("bronze.mark_price", "cadence")]["status"] == "capture_loss"
    book = by_kind[("bronze.book_ticker", "disconnect")]
    assert book["status"] == "capture_loss" and book["start_id"] is None
    dis = by_kind[("bronze.agg_trades", "disconnect")]
    assert dis["status"] == "open" and dis["start_id"] == 100  # the first id that may be missing
    # the window is the exchange's times, not the collector's clock
    assert dis["start_time"].timestamp() * 1000 == T0_MS + 990
    assert dis["end_time"].timestamp() * 1000 == T0_MS + 1_500
    assert set(gaps.filter(pl.col("kind") == "disconnect")["symbol"]) == {"BTCUSDT"}
    assert gaps.filter(pl.col("table_name") == "bronze.trades").height == 0

    # the same frames landed again (e.g. after a crash before the segment was moved) change nothing
    versions = {t: lake.open(t).version() for t in (AGG_TRADES, GAPS, MARK_PRICE, QUARANTINE)}
    write(landing, frames)
    again = land_market(lake, landing, "um")
    assert again.segments == 1
    assert {t: lake.open(t).version() for t in versions} == versions


def test_a_hole_between_stored_rows_and_a_new_batch_is_found(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    landing = tmp_path / "landing" / "um"
    write(landing, [agg(a) for a in range(10)])
    land_market(lake, landing, "um")
    write(landing, [agg(a) for a in range(20, 30)])
    land_market(lake, landing, "um")
    ids = lake.read(GAPS).filter(pl.col("kind") == "id").select("start_id", "end_id").rows()
    assert ids == [(10, 19)]


def test_units_run_across_segments_and_every_segment_is_moved_aside(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    landing = tmp_path / "landing" / "um"
    sink = LandingSink(landing, prefix="um", max_segment_bytes=2_000)  # a few chunks a segment
    for a in range(300):
        sink.append(1_000 + a, agg(a), label=b"btcusdt@aggTrade")
        if a % 7 == 6:
            sink.flush()
    torn = landing / "um-99999999999999999999-999999.seg"
    torn.write_bytes(b"torn")  # no whole chunk
    segments = sink.close()
    assert len(segments) > 10

    result = land_market(lake, landing, "um", unit_frames=50)
    assert result.segments == len(segments) and closed_segments(landing) == []
    assert sorted((landing / "landed").iterdir()) == sorted(
        landing / "landed" / p.name for p in segments
    )
    # the segment with no whole chunk is moved aside too, but as damaged, never silently
    assert [d.segment for d in result.damaged] == [torn.name]
    assert list((landing / "damaged").iterdir()) == [landing / "damaged" / torn.name]
    assert result.rows == {"agg_trades": 300}
    assert 6 <= len(result.batches) == len(set(result.batches)) <= 8  # about 50 frames a unit
    rows = lake.read(AGG_TRADES)
    assert rows.get_column("agg_trade_id").sort().to_list() == list(range(300))
    assert rows.get_column("batch_id").n_unique() == len(result.batches)
    gaps = lake.read(GAPS)
    assert gaps.select("table_name", "kind", "start_id").rows() == [
        ("bronze.agg_trades", "damaged", 300)  # after the last id of the segment before it
    ]


def test_each_symbol_is_checked_against_its_own_stored_ids(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    landing = tmp_path / "landing" / "um"
    write(landing, [agg(a, s) for s in ("AAAUSDT", "BBBUSDT", "CCCUSDT") for a in range(10)])
    land_market(lake, landing, "um")
    later = [agg(a, "AAAUSDT") for a in range(10, 20)]  # continues
    later += [agg(a, "BBBUSDT") for a in range(15, 20)]  # 10..14 lost
    later += [agg(a, "CCCUSDT") for a in range(30, 40)]  # 10..29 lost: found by the wider search
    later += [agg(a, "DDDUSDT") for a in range(500, 510)]  # a new symbol: nothing before it
    write(landing, later)
    land_market(lake, landing, "um")
    gaps = lake.read(GAPS).filter(pl.col("kind") == "id").sort("symbol")
    assert gaps.select("symbol", "start_id", "end_id").rows() == [
        ("BBBUSDT", 10, 14),
        ("CCCUSDT", 10, 29),
    ]


def _disconnect_at_the_end(tmp_path: Path) -> Lake:
    """Ids 0..9 stored, then a disconnect window after id 9 with no stored row after it."""
    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    landing = tmp_path / "landing" / "um"
    frames = [agg(a) for a in range(10)]
    frames.append(
        control_frame(
            "coverage_gap",
            cause="reconnect",
            streams=["btcusdt@aggTrade"],
            from_ns=(T0_MS + 95) * 10**6,
            to_ns=(T0_MS + 200) * 10**6,
            before={"btcusdt@aggTrade": [9, T0_MS + 90]},
            after_ms=T0_MS + 200,
        )
    )
    write(landing, frames)
    land_market(lake, landing, "um")
    return lake


def _repair(lake: Lake, pages: list[list[dict[str, object]]], **kw: int) -> RepairResult:
    import asyncio

    import httpx
    import respx

    from lake.binance.endpoints import Endpoints
    from lake.binance.rest import RestClient, RetryPolicy
    from lake.capture.repair import repair_open_gaps

    base = "http://127.0.0.1:9"
    with respx.mock:
        respx.get(f"{base}/fapi/v1/aggTrades").mock(
            side_effect=[httpx.Response(200, json=p) for p in pages]
        )

        async def go() -> RepairResult:
            async with RestClient(Endpoints.for_exchange(base), retry=RetryPolicy(1)) as client:
                return await repair_open_gaps(lake, client, **kw)

        return asyncio.run(go())


def rest_agg(a: int) -> dict[str, object]:
    return {
        "a": a,
        "p": "42000.1",
        "q": "0.5",
        "f": 3 * a,
        "l": 3 * a + 2,
        "T": T0_MS + a * 10,
        "m": a % 2 == 0,
    }


def test_a_disconnect_at_the_end_is_settled_by_rest(tmp_path: Path) -> None:
    lake = _disconnect_at_the_end(tmp_path)
    gap = lake.read(GAPS).filter(pl.col("table_name") == "bronze.agg_trades")
    assert gap["status"].to_list() == ["open"]
    _repair(lake, [[rest_agg(a) for a in range(10, 25)]])  # ids 10..20 in the window, 21.. after
    assert lake.read(GAPS).filter(pl.col("table_name") == "bronze.agg_trades")[
        "status"
    ].to_list() == ["repaired"]
    ids = lake.read(AGG_TRADES)["agg_trade_id"].sort().to_list()
    assert ids == list(range(21))  # the window's rows; none beyond it


def test_rest_rows_outside_the_window_are_refused_and_the_gap_is_unrepairable(
    tmp_path: Path,
) -> None:
    lake = _disconnect_at_the_end(tmp_path)
    # ids that continue the capture, but with times from before the last captured trade: an
    # exchange whose history is another market's (a replay's REST serving the simulation)
    fabricated = [{**rest_agg(a), "T": T0_MS - 86_400_000 + a} for a in range(10, 15)]
    result = _repair(lake, [fabricated])
    gap = lake.read(GAPS).filter(pl.col("table_name") == "bronze.agg_trades").row(0, named=True)
    assert gap["status"] == "unrepairable" and "refused 5 REST row(s)" in gap["detail"]
    assert result.refused_rows == 5 and result.unrepairable == 1
    assert lake.read(AGG_TRADES).height == 10  # nothing written
    again = _repair(lake, [])  # settled: a later pass does not ask again
    assert (again.requests, again.left_open) == (0, 0)


def test_an_id_hole_is_filled_only_inside_its_times(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    landing = tmp_path / "landing" / "um"
    write(landing, [agg(a) for a in range(30) if not 10 <= a < 15])
    land_market(lake, landing, "um")
    skewed = [rest_agg(a) for a in range(10, 13)] + [
        {**rest_agg(a), "T": T0_MS + 3_600_000}
        for a in (13, 14)  # an hour later: not the hole's
    ]
    result = _repair(lake, [skewed])
    gap = lake.read(GAPS).filter(pl.col("kind") == "id").row(0, named=True)
    assert gap["status"] == "unrepairable" and "refused 2" in gap["detail"]
    ids = lake.read(AGG_TRADES)["agg_trade_id"].sort().to_list()
    assert ids == [a for a in range(30) if a not in (13, 14)]
    assert result.rows == 3


def test_an_id_hole_the_exchange_does_not_have_is_unrepairable(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.create_all()
    landing = tmp_path / "landing" / "um"
    write(landing, [agg(a) for a in range(30) if not 10 <= a < 15])
    land_market(lake, landing, "um")
    _repair(lake, [[rest_agg(a) for a in range(15, 30)]])  # REST skips the hole too
    gap = lake.read(GAPS).filter(pl.col("kind") == "id").row(0, named=True)
    assert gap["status"] == "unrepairable"
    assert "the exchange has no rows for 5 of ids 10..14" in gap["detail"]


def test_a_repair_pass_is_bounded_in_requests(tmp_path: Path) -> None:
    lake = _disconnect_at_the_end(tmp_path)
    full = [[rest_agg(a)] * 1 for a in range(10, 13)]  # one row a page: the window needs more
    result = _repair(lake, full, max_requests=2)
    assert result.requests == 2 and result.left_open == 1 and result.repaired == 0
    assert "request budget of 2 spent" in result.notes[-1] and result.errors == []


def test_a_quiet_tail_after_a_disconnect_is_complete(tmp_path: Path) -> None:
    lake = _disconnect_at_the_end(tmp_path)
    _repair(lake, [[]])  # REST: nothing traded after the last stored id
    status = lake.read(GAPS).filter(pl.col("table_name") == "bronze.agg_trades")["status"]
    assert status.to_list() == ["repaired"]
    assert lake.read(AGG_TRADES).height == 10
