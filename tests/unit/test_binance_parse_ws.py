"""parse_ws_frames: every payload shape, what is ignored and what is rejected (with why)."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest

from lake import schemas
from lake.binance.parse import ParsedFrames, parse_ws_frames

SPECS = {
    "agg_trades": schemas.AGG_TRADES,
    "trades": schemas.TRADES,
    "book_ticker": schemas.BOOK_TICKER,
    "mark_price": schemas.MARK_PRICE,
    "klines": schemas.KLINES,
    "liquidations": schemas.LIQUIDATIONS,
}

UM_AGG = {
    "e": "aggTrade",
    "E": 1626992741017,
    "s": "SUSHIUSDT",
    "a": 5933014,
    "p": "7.6110",
    "q": "100",
    "f": 100,
    "l": 105,
    "T": 1626992741012,
    "m": True,
}
UM_TRADE = {
    "e": "trade",
    "E": 1723161256322,
    "T": 1723161256321,
    "s": "BTCUSDT",
    "t": 5266583935,
    "p": "61800.30",
    "q": "0.006",
    "X": "MARKET",
    "m": False,
}
UM_BOOK = {
    "e": "bookTicker",
    "u": 600859600576,
    "s": "SUSHIUSDT",
    "b": "7.6110",
    "B": "2",
    "a": "7.6120",
    "A": "297",
    "T": 1626992741012,
    "E": 1626992741017,
}
SPOT_BOOK = {
    "u": 50093239212,
    "s": "BTCUSDT",
    "b": "61837.63000000",
    "B": "3.78826000",
    "a": "61837.64000000",
    "A": "1.54698000",
}
SPOT_TRADE = {
    "e": "trade",
    "E": 1723161255208,
    "s": "BTCUSDT",
    "t": 3722700001,
    "p": "61837.64000000",
    "q": "0.00100000",
    "T": 1723161255207,
    "m": True,
    "M": True,
}
MARK = {
    "e": "markPriceUpdate",
    "E": 1680652800010,
    "s": "BTCUSDT",
    "p": "28155.10000000",
    "P": "28141.47600845",
    "i": "28165.04857143",
    "r": "0.00002760",
    "T": 1680652800000,
}
KLINE_BAR = {
    "t": 1633998480000,
    "T": 1633998539999,
    "s": "NKNUSDT",
    "i": "1m",
    "f": 19862761,
    "L": 19862790,
    "o": "0.35270000",
    "c": "0.35280000",
    "h": "0.35280000",
    "l": "0.35220000",
    "v": "25877.00000000",
    "n": 30,
    "x": True,
    "q": "9116.04600000",
    "V": "58.00000000",
    "Q": "20.46240000",
    "B": "0",
}
FORCE = {
    "e": "forceOrder",
    "E": 1568014460893,
    "o": {
        "s": "BTCUSDT",
        "S": "SELL",
        "o": "LIMIT",
        "f": "IOC",
        "q": "0.014",
        "p": "9910",
        "ap": "9910",
        "X": "FILLED",
        "l": "0.014",
        "z": "0.014",
        "T": 1568014460893,
    },
}


def wrap(stream: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":")).encode()


def kline(closed: bool) -> dict[str, Any]:
    return {"e": "kline", "E": 1633998523963, "s": "NKNUSDT", "k": {**KLINE_BAR, "x": closed}}


def parse(market: str, frames: list[bytes | str], batch_id: str = "b1") -> ParsedFrames:
    recv = [1_700_000_000_123_456_789 + i for i in range(len(frames))]
    return parse_ws_frames(market, frames, recv, batch_id=batch_id)  # type: ignore[arg-type]


def assert_conformed(parsed: ParsedFrames) -> None:
    for name, spec in SPECS.items():
        frame = getattr(parsed, name)
        assert frame.schema == spec.polars_schema(), name
        spec.conform(frame)


def test_every_usdm_kind_lands_in_its_table() -> None:
    frames = [
        wrap("sushiusdt@aggTrade", UM_AGG),
        wrap("btcusdt@trade", UM_TRADE),
        wrap("sushiusdt@bookTicker", UM_BOOK),
        wrap("btcusdt@markPrice@1s", MARK),
        wrap("nknusdt@kline_1m", kline(True)),
        wrap("btcusdt@forceOrder", FORCE),
    ]
    p = parse("um", frames)
    assert_conformed(p)
    assert {n: f.height for n, f in p.tables().items()} == dict.fromkeys(SPECS, 1)
    assert p.rejected == () and p.ignored == 0
    agg = p.agg_trades.row(0, named=True)
    assert agg["market"] == "um" and agg["symbol"] == "SUSHIUSDT"
    assert (agg["agg_trade_id"], agg["price"], agg["quantity"]) == (5933014, "7.6110", "100")
    assert (agg["first_trade_id"], agg["last_trade_id"], agg["is_buyer_maker"]) == (100, 105, True)
    assert agg["is_best_match"] is None and agg["source"] == "ws" and agg["batch_id"] == "b1"
    times = p.agg_trades.select(
        pl.col("transact_time", "event_time", "ts_recv").dt.epoch("us")
    ).row(0)
    assert times == (1626992741012000, 1626992741017000, 1_700_000_000_123_456)
    assert p.trades.row(0, named=True)["trade_type"] == "MARKET"
    book = p.book_ticker.row(0, named=True)
    assert (book["update_id"], book["bid_qty"], book["ask_price"]) == (600859600576, "2", "7.6120")
    mark = p.mark_price.row(0, named=True)
    assert (mark["index_price"], mark["estimated_settle_price"]) == (
        "28165.04857143",
        "28141.47600845",
    )
    kl = p.klines.row(0, named=True)
    assert (kl["kind"], kl["interval"], kl["trade_count"], kl["close"]) == (
        "trade",
        "1m",
        30,
        "0.35280000",
    )
    liq = p.liquidations.row(0, named=True)
    assert (liq["side"], liq["filled_qty"], liq["avg_price"]) == ("SELL", "0.014", "9910")


def test_spot_book_ticker_has_no_exchange_time_and_trade_keeps_best_match() -> None:
    p = parse("spot", [wrap("btcusdt@bookTicker", SPOT_BOOK), wrap("btcusdt@trade", SPOT_TRADE)])
    assert_conformed(p)
    book = p.book_ticker.row(0, named=True)
    assert book["transaction_time"] is None and book["event_time"] is None
    assert book["ts_recv"] is not None and book["market"] == "spot"
    trade = p.trades.row(0, named=True)
    assert trade["is_best_match"] is True and trade["trade_type"] is None


def test_raw_payloads_and_str_frames_parse_like_wrapped_ones() -> None:
    wrapped = parse("um", [wrap("btcusdt@trade", UM_TRADE), wrap("sushiusdt@bookTicker", UM_BOOK)])
    raw = parse("um", [json.dumps(UM_TRADE).encode(), json.dumps(UM_BOOK)])
    assert raw.trades.equals(wrapped.trades) and raw.book_ticker.equals(wrapped.book_ticker)
    spot_raw = parse("spot", [json.dumps(SPOT_BOOK).encode()])
    assert spot_raw.book_ticker.height == 1
    spaced = parse("um", [json.dumps({"stream": "btcusdt@trade", "data": UM_TRADE}).encode()])
    assert spaced.trades.equals(wrapped.trades)


def test_unknown_keys_are_ignored() -> None:
    extra = {**UM_BOOK, "ps": "SUSHIUSDT", "st": 7, "zz": {"nested": [1, 2]}}
    p = parse("um", [wrap("sushiusdt@bookTicker", extra)])
    assert p.book_ticker.height == 1 and p.rejected == ()


def test_acks_depth_unclosed_klines_and_notices_are_ignored_not_rejected() -> None:
    frames = [
        b'{"result":null,"id":1}',
        wrap(
            "btcusdt@depth@100ms",
            {"e": "depthUpdate", "E": 1, "s": "X", "U": 1, "u": 2, "b": [], "a": []},
        ),
        b'{"lastUpdateId":160,"bids":[["0.1","1"]],"asks":[]}',
        wrap("nknusdt@kline_1m", kline(False)),
        wrap("nknusdt@kline_1m", kline(True)),
        b'{"e":"serverShutdown","E":1}',
    ]
    p = parse("um", frames)
    assert p.rejected == ()
    assert p.ignored == 5
    assert p.klines.height == 1


def test_bad_frames_are_rejected_with_a_reason_and_the_rest_kept() -> None:
    good = wrap("btcusdt@trade", UM_TRADE)
    frames = [
        good,
        good[:-9],  # truncated
        b"not json at all",
        wrap("btcusdt@trade", {**UM_TRADE, "t": "abc"}),  # wrong type
        wrap("btcusdt@trade", {k: v for k, v in UM_TRADE.items() if k != "p"}),  # missing field
        wrap("btcusdt@aggTrade", UM_TRADE),  # wrong shape for the stream
        wrap("btcusdt@bogus", UM_TRADE),  # unknown stream
        b'{"e":"newEvent","E":1}',  # unknown event
        b'{"error":{"code":2,"msg":"Invalid request"},"id":3}',
        b"[1,2,3]",
        good,
    ]
    p = parse("um", frames)
    assert p.trades.height == 2
    assert [r.index for r in p.rejected] == list(range(1, 10))
    reasons = [r.reason for r in p.rejected]
    assert "malformed JSON" in reasons[1]
    assert reasons[2].startswith("trade:") and "int" in reasons[2]
    assert "`p`" in reasons[3]
    assert reasons[4].startswith("agg_trade:")
    assert reasons[5] == "unknown stream 'btcusdt@bogus'"
    assert reasons[6] == "unknown event 'newEvent'"
    assert reasons[7].startswith("subscription error")
    assert reasons[8] == "not a JSON object"
    assert p.rejected[0].payload == frames[1] and p.rejected[0].recv_ns > 0


def test_usdm_only_streams_are_rejected_on_spot() -> None:
    p = parse("spot", [wrap("btcusdt@markPrice@1s", MARK), json.dumps(FORCE).encode()])
    assert [r.reason for r in p.rejected] == [
        "unknown stream 'btcusdt@markPrice@1s'",
        "force_order is not a spot stream",
    ]


def test_microsecond_times_and_delivery_mark_price() -> None:
    us_trade = {**SPOT_TRADE, "E": SPOT_TRADE["E"] * 1000 + 7, "T": SPOT_TRADE["T"] * 1000 + 5}
    p = parse("spot", [wrap("btcusdt@trade", us_trade)])
    assert p.trades.select(pl.col("trade_time").dt.epoch("us")).item() == 1723161255207005
    delivery = {**MARK, "r": "", "T": 0}
    m = parse("um", [wrap("btcusd_211231@markPrice", delivery)]).mark_price.row(0, named=True)
    assert m["funding_rate"] is None and m["next_funding_time"] is None


def test_empty_batch_and_length_mismatch() -> None:
    p = parse("um", [])
    assert_conformed(p)
    assert p.tables() == {} and p.rejected == ()
    with pytest.raises(ValueError, match="2 frames but 1 receive times"):
        parse_ws_frames("um", [b"{}", b"{}"], [1], batch_id="b")


def test_batch_decode_and_frame_by_frame_fallback_agree() -> None:
    frames = [wrap("btcusdt@trade", {**UM_TRADE, "t": i}) for i in range(50)]
    clean = parse("um", frames)
    dirty = parse("um", [*frames[:25], b'{"stream":"btcusdt@trade","data":{', *frames[25:]])
    assert dirty.trades.drop("ts_recv").equals(clean.trades.drop("ts_recv"))
    assert len(dirty.rejected) == 1
