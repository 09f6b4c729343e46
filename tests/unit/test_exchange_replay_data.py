"""The REST tables of a recording (pure): one row per id, due rows only, Binance's id pages."""

from __future__ import annotations

import pytest

from lake.exchange.replay_data import build


def _trade(i: int, t: int) -> bytes:
    return (
        f'{{"e":"trade","E":{t},"T":{t},"s":"BTCUSDT","t":{i},"p":"61800.30","q":"0.006",'
        f'"X":"MARKET","m":false}}'
    ).encode()


def _kline(t: int, closed: bool) -> bytes:
    k = (
        f'{{"t":{t},"T":{t + 59_999},"s":"BTCUSDT","i":"1m","f":1,"L":2,"o":"1.0","c":"1.1",'
        f'"h":"1.2","l":"0.9","v":"3","n":2,"x":{str(closed).lower()},"q":"3.3","V":"1",'
        f'"Q":"1.1","B":"0"}}'
    )
    return f'{{"e":"kline","E":{t},"s":"BTCUSDT","k":{k}}}'.encode()


def test_trades_are_kept_once_per_id_sorted_and_served_when_due() -> None:
    ids, due = [12, 10, 11, 10, 13], [3.0, 1.0, 2.0, 5.0, 4.0]  # id 10 twice, out of order
    tables = build([("um", "btcusdt@trade", due, [_trade(i, 1000 + i) for i in ids])])
    trades = tables[("um", "BTCUSDT")].trades
    assert trades.key.tolist() == [10, 11, 12, 13]
    assert trades.due.tolist() == [1.0, 2.0, 3.0, 4.0]  # the first copy of id 10
    assert [t.t for t in trades.ids(10, 100, float("inf"))] == [10, 11, 12, 13]
    assert [t.t for t in trades.ids(10, 100, 2.5)] == [10, 11]  # 12 and 13 are not due yet
    assert [t.t for t in trades.ids(11, 2, float("inf"))] == [11, 12]
    assert trades.ids(0, 10, float("inf")) == []  # ids 0..9 are not recorded
    assert trades.ids(14, 10**20, float("inf")) == []  # 20 digits do not overflow
    assert [t.t for t in trades.latest(2, 3.5)] == [11, 12]
    assert [t.t for t in trades.between(1011, 1013, 5, 9.0, oldest=False)] == [11, 12, 13]
    assert [t.t for t in trades.between(None, None, 1, 9.0, oldest=True)] == [10]
    assert (tables[("um", "BTCUSDT")].price_dec, tables[("um", "BTCUSDT")].qty_dec) == (2, 3)


def test_only_closed_bars_are_kept_by_interval() -> None:
    frames = [_kline(0, False), _kline(0, True), _kline(60_000, False), _kline(0, True)]
    rec = build([("spot", "btcusdt@kline_1m", [0.0, 1.0, 2.0, 3.0], frames)])[("spot", "BTCUSDT")]
    assert list(rec.klines) == ["1m"]
    assert rec.klines["1m"].key.tolist() == [0]
    assert rec.klines["1m"].due.tolist() == [1.0]


def test_every_recorded_symbol_gets_a_table_and_bad_frames_are_named() -> None:
    tables = build([("um", "ethusdt@depth@100ms", [0.0], [b'{"e":"depthUpdate"}'])])
    assert list(tables) == [("um", "ETHUSDT")] and tables[("um", "ETHUSDT")].trades.items == []
    with pytest.raises(ValueError, match="btcusdt@trade frames do not decode"):
        build([("um", "btcusdt@trade", [0.0], [b'{"e":"trade","p":"1"}'])])
