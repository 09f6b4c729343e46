"""WebSocket payloads, encoded in bulk with polars (one hour of one stream at a time).

Key order and number formats follow the real frames (BINANCE.md §1.2, realdata recordings):
USD-M aggTrade ``e,E,a,s,p,q,f,l,T,m``; spot aggTrade ``e,E,s,a,p,q,f,l,T,m,M``; USD-M trade
``e,E,T,s,t,p,q,X,m``; spot bookTicker ``u,s,b,B,a,A`` (no ``e/E/T``); markPrice
``e,E,s,p,P,i,r,T``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from lake.exchange.book import BookBlock
from lake.exchange.config import SymbolSpec
from lake.exchange.derivs import LiqBlock
from lake.exchange.fmt import dec_expr
from lake.exchange.klines import Bars
from lake.exchange.trades import AggBlock

I64 = npt.NDArray[np.int64]
L = pl.lit
ST_FROM_MS = 1_767_225_600_000  # 2026-01-01: live frames carry undocumented extra keys


def _c(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String)


def _bool(name: str) -> pl.Expr:
    return pl.when(pl.col(name)).then(L("true")).otherwise(L("false"))


def _run(columns: Mapping[str, npt.NDArray[Any]], parts: list[pl.Expr]) -> list[bytes]:
    df = pl.DataFrame({k: np.asarray(v) for k, v in columns.items()})
    out = df.select(pl.concat_str(parts).alias("j")).to_series()
    return [s.encode() for s in out.to_list()]


def _price(spec: SymbolSpec, name: str) -> pl.Expr:
    return dec_expr(pl.col(name), spec.price_dec, spec.price_out_dec)


def _qty(spec: SymbolSpec, name: str) -> pl.Expr:
    return dec_expr(pl.col(name), spec.qty_dec, spec.qty_out_dec)


def agg_trades(spec: SymbolSpec, b: AggBlock) -> list[bytes]:
    """``<symbol>@aggTrade`` payloads."""
    cols: dict[str, npt.NDArray[Any]] = {
        "E": b.e_ms,
        "a": b.a,
        "p": b.price,
        "q": b.qty,
        "f": b.first,
        "l": b.last,
    }
    cols |= {"T": b.t_ms, "m": b.maker}
    s = spec.symbol
    if spec.market == "um":
        parts = [L('{"e":"aggTrade","E":'), _c("E"), L(',"a":'), _c("a"), L(f',"s":"{s}","p":"')]
    else:
        parts = [L('{"e":"aggTrade","E":'), _c("E"), L(f',"s":"{s}","a":'), _c("a"), L(',"p":"')]
    parts += [_price(spec, "p"), L('","q":"'), _qty(spec, "q"), L('","f":'), _c("f")]
    parts += [L(',"l":'), _c("l"), L(',"T":'), _c("T"), L(',"m":'), _bool("m")]
    parts += [L("}") if spec.market == "um" else L(',"M":true}')]
    return _run(cols, parts)


def trades(spec: SymbolSpec, b: AggBlock) -> tuple[I64, list[bytes]]:
    """``<symbol>@trade`` payloads and their event times (one per trade)."""
    ids, price, qty, t_us, e_ms, maker = b.trade_rows()
    cols: dict[str, npt.NDArray[Any]] = {
        "E": e_ms,
        "T": t_us // 1000,
        "t": ids,
        "p": price,
        "q": qty,
        "m": maker,
    }
    s = spec.symbol
    if spec.market == "um":
        parts = [L('{"e":"trade","E":'), _c("E"), L(',"T":'), _c("T"), L(f',"s":"{s}","t":')]
        parts += [_c("t"), L(',"p":"'), _price(spec, "p"), L('","q":"'), _qty(spec, "q")]
        parts += [L('","X":"MARKET","m":'), _bool("m"), L("}")]
    else:
        parts = [L('{"e":"trade","E":'), _c("E"), L(f',"s":"{s}","t":'), _c("t"), L(',"p":"')]
        parts += [_price(spec, "p"), L('","q":"'), _qty(spec, "q"), L('","T":'), _c("T")]
        parts += [L(',"m":'), _bool("m"), L(',"M":true}')]
    return e_ms, _run(cols, parts)


def book_tickers(spec: SymbolSpec, b: BookBlock) -> list[bytes]:
    """``<symbol>@bookTicker`` payloads."""
    cols: dict[str, npt.NDArray[Any]] = {
        "u": b.u,
        "b": b.bid,
        "B": b.bid_qty,
        "a": b.ask,
        "A": b.ask_qty,
        "T": b.t_ms,
    }
    cols["E"] = b.e_ms
    s = spec.symbol
    head = [L('{"e":"bookTicker","u":')] if spec.market == "um" else [L('{"u":')]
    parts = [*head, _c("u"), L(f',"s":"{s}","b":"'), _price(spec, "b"), L('","B":"')]
    parts += [_qty(spec, "B"), L('","a":"'), _price(spec, "a"), L('","A":"'), _qty(spec, "A")]
    if spec.market == "spot":
        parts += [L('"}')]
    else:
        extra = pl.when(pl.col("E") >= ST_FROM_MS).then(L(',"st":0')).otherwise(L(""))
        parts += [L('","T":'), _c("T"), L(',"E":'), _c("E"), extra, L("}")]
    return _run(cols, parts)


def mark_prices(
    spec: SymbolSpec, e_ms: I64, mark: I64, settle: I64, index: I64, rate: I64, next_t: I64
) -> list[bytes]:
    """``<symbol>@markPrice[@1s]`` payloads; prices and rate in 1e-8 units."""
    cols: dict[str, npt.NDArray[Any]] = {
        "E": e_ms,
        "p": mark,
        "P": settle,
        "i": index,
        "r": rate,
        "T": next_t,
    }
    parts = [L('{"e":"markPriceUpdate","E":'), _c("E"), L(f',"s":"{spec.symbol}","p":"')]
    parts += [dec_expr(pl.col("p"), 8), L('","P":"'), dec_expr(pl.col("P"), 8), L('","i":"')]
    parts += [dec_expr(pl.col("i"), 8), L('","r":"'), dec_expr(pl.col("r"), 8), L('","T":')]
    parts += [_c("T"), L("}")]
    return _run(cols, parts)


def kline_events(
    spec: SymbolSpec,
    interval: str,
    e_ms: I64,
    closes: I64,
    closed: npt.NDArray[np.bool_],
    bars: Bars,
) -> list[bytes]:
    """``<symbol>@kline_<interval>`` payloads, one per (partial or closed) bar state."""
    pd, qd = spec.price_dec, spec.qty_dec
    qs = pd + qd
    qout = 8 if spec.market == "spot" else qs
    cols: dict[str, npt.NDArray[Any]] = {
        "E": e_ms,
        "t": bars.open_time,
        "T": closes,
        "f": bars.first_id,
        "L": bars.last_id,
    }
    cols |= {"o": bars.open, "c": bars.close, "h": bars.high, "l": bars.low, "v": bars.volume}
    cols |= {"n": bars.count, "x": closed, "q": bars.quote, "V": bars.taker_base}
    cols["Q"] = bars.taker_quote
    s = spec.symbol
    parts = [L('{"e":"kline","E":'), _c("E"), L(f',"s":"{s}","k":{{"t":'), _c("t"), L(',"T":')]
    parts += [_c("T"), L(f',"s":"{s}","i":"{interval}","f":'), _c("f"), L(',"L":'), _c("L")]
    for key in ("o", "c", "h", "l"):
        parts += [L(f',"{key}":"'), _price(spec, key), L('"')]
    parts += [L(',"v":"'), _qty(spec, "v"), L('","n":'), _c("n"), L(',"x":'), _bool("x")]
    parts += [L(',"q":"'), dec_expr(pl.col("q"), qs, qout), L('","V":"'), _qty(spec, "V")]
    parts += [L('","Q":"'), dec_expr(pl.col("Q"), qs, qout), L('","B":"0"}}')]
    return _run(cols, parts)


def force_orders(spec: SymbolSpec, b: LiqBlock) -> list[bytes]:
    """``<symbol>@forceOrder`` payloads (``o`` carries the undocumented ``ps`` key)."""
    cols: dict[str, npt.NDArray[Any]] = {
        "E": b.e_ms,
        "S": b.sell,
        "q": b.qty,
        "p": b.price,
        "ap": b.avg_price,
        "T": b.t_ms,
    }
    side = pl.when(pl.col("S")).then(L("SELL")).otherwise(L("BUY"))
    s = spec.symbol
    parts = [L('{"e":"forceOrder","E":'), _c("E"), L(f',"o":{{"s":"{s}","ps":"{spec.pair}","S":"')]
    parts += [side, L('","o":"LIMIT","f":"IOC","q":"'), _qty(spec, "q"), L('","p":"')]
    parts += [_price(spec, "p"), L('","ap":"'), _price(spec, "ap"), L('","X":"FILLED","l":"')]
    parts += [_qty(spec, "q"), L('","z":"'), _qty(spec, "q"), L('","T":'), _c("T"), L("}}")]
    return _run(cols, parts)
