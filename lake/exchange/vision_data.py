"""CSV contents of Vision files, with the header and timestamp rules of BINANCE.md §3.2.

Spot files never have a header, print booleans ``True/False`` and switch to µs timestamps from
2025-01-01; USD-M files print ``true/false``, kline-type files have a header from 2022-05 on, and
trades/aggTrades only after 2022-08-10. Content is produced a day at a time so monthly trade files
never sit in memory uncompressed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime

import numpy as np
import polars as pl

from lake.exchange import klines as kl
from lake.exchange.config import SymbolSpec
from lake.exchange.fmt import bool_expr, dec_expr, float_units
from lake.exchange.market import Market, slot_times
from lake.exchange.prices import MS_DAY, MS_HOUR, S_METRICS, hashed_uniform
from lake.exchange.trades import concat
from lake.exchange.vision_tree import KLINE_TYPES, VFile

_KLINE_COLS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
_COLUMNS: dict[str, tuple[str, ...]] = {
    "klines": _KLINE_COLS,
    "aggTrades": (
        "agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
        "transact_time", "is_buyer_maker",
    ),
    "trades": ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker"),
    "fundingRate": ("calc_time", "funding_interval_hours", "last_funding_rate"),
    "metrics": (
        "create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
        "count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio",
        "count_long_short_ratio", "sum_taker_long_short_vol_ratio",
    ),
    "bookDepth": ("timestamp", "percentage", "depth", "notional"),
    "bookTicker": (
        "update_id", "best_bid_price", "best_bid_qty", "best_ask_price", "best_ask_qty",
        "transaction_time", "event_time",
    ),
    "liquidationSnapshot": (
        "time", "side", "order_type", "time_in_force", "original_quantity", "price",
        "average_price", "order_status", "last_fill_quantity", "accumulated_fill_quantity",
    ),
}  # fmt: skip
HEADERS = {name: ",".join(cols) for name, cols in _COLUMNS.items()}
KLINE_HEADER = HEADERS["klines"]
SPOT_MICROS_FROM = date(2025, 1, 1)
BOOK_DEPTH_MS = 30_000
_BANDS = np.array([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5])


def default_header(f: VFile) -> bool:
    """Whether the file carries a header row by Binance's rules."""
    if f.market == "spot":
        return False
    if f.dataset in KLINE_TYPES:
        return f.first_day >= date(2022, 5, 1)
    if f.dataset in ("trades", "aggTrades"):
        return f.first_day > date(2022, 8, 10)
    return True


def header_line(f: VFile) -> bytes:
    """The header row of the file's dataset."""
    return (HEADERS.get(f.dataset) or KLINE_HEADER).encode() + b"\n"


def micros(f: VFile) -> bool:
    """Spot timestamps are µs from 2025-01-01."""
    return f.market == "spot" and f.first_day >= SPOT_MICROS_FROM


def row_count(m: Market, f: VFile) -> int:
    """Data rows of the file, closed-form (used for its size before it is built)."""
    spec = m.spec(f.market, f.symbol)
    days = (f.end_ms - f.start_ms) // MS_DAY
    per_day = {
        "aggTrades": spec.aggs_per_hour * 24,
        "trades": spec.trades_per_hour * 24,
        "bookTicker": spec.books_per_hour * 24,
        "metrics": 288,
        "bookDepth": MS_DAY // BOOK_DEPTH_MS * len(_BANDS),
        "liquidationSnapshot": spec.liq_per_hour * 24 * 2,
        "fundingRate": 3,
    }
    if f.dataset in per_day:
        return int(per_day[f.dataset] * days)
    return len(kl.opens_between(f.start_ms, f.end_ms - 1, _iv(f.interval)))


def _iv(interval: str) -> str:
    return "1M" if interval == "1mo" else interval


TRADE_LEVEL = ("aggTrades", "trades", "bookTicker", "liquidationSnapshot")


def chunks(m: Market, f: VFile, header: bool, hours: int = 24) -> Iterator[bytes]:
    """The CSV of ``f`` in chunks (one per day for trade-level data).

    ``hours`` < 24 keeps only the first hours of each day of trade-level data (a size sample).
    """
    if header:
        yield header_line(f)
    spec = m.spec(f.market, f.symbol)
    if f.dataset in TRADE_LEVEL:
        for day in range(f.start_ms, f.end_ms, MS_DAY):
            yield _csv(_day_frame(m, spec, f, day, hours))
        return
    yield _csv(_frame(m, spec, f))


def _csv(df: pl.DataFrame) -> bytes:
    if not df.height:
        return b""
    buf = io.BytesIO()
    df.write_csv(buf, include_header=False)
    return buf.getvalue()


def _times(col: str, mult: int) -> pl.Expr:
    return pl.col(col) * mult if mult != 1 else pl.col(col)


def _day_frame(m: Market, spec: SymbolSpec, f: VFile, day: int, n_hours: int) -> pl.DataFrame:
    hours = range(day // MS_HOUR, day // MS_HOUR + n_hours)
    spot = f.market == "spot"
    pd, po, qd, qo = spec.price_dec, spec.price_out_dec, spec.qty_dec, spec.qty_out_dec
    if f.dataset in ("aggTrades", "trades"):
        b = concat([m.agg_hour(spec, h) for h in hours])
        t = b.t_us if micros(f) else b.t_ms
        if f.dataset == "aggTrades":
            df = pl.DataFrame(
                {
                    "a": b.a,
                    "p": b.price,
                    "q": b.qty,
                    "f": b.first,
                    "l": b.last,
                    "t": t,
                    "m": b.maker,
                }
            )
            cols = [
                pl.col("a"),
                dec_expr(pl.col("p"), pd, po),
                dec_expr(pl.col("q"), qd, qo),
                pl.col("f"),
                pl.col("l"),
                pl.col("t"),
                bool_expr(pl.col("m"), spot),
            ]
        else:
            ids, price, qty, t_us, _, maker = b.trade_rows()
            tt = t_us if micros(f) else t_us // 1000
            df = pl.DataFrame({"a": ids, "p": price, "q": qty, "t": tt, "m": maker})
            qq = dec_expr(pl.col("p") * pl.col("q"), pd + qd, 8 if spot else pd + qd)
            cols = [
                pl.col("a"),
                dec_expr(pl.col("p"), pd, po),
                dec_expr(pl.col("q"), qd, qo),
                qq,
                pl.col("t"),
                bool_expr(pl.col("m"), spot),
            ]
        if spot:
            cols.append(pl.lit("True"))
        return df.select([c.alias(f"c{i}") for i, c in enumerate(cols)])
    if f.dataset == "bookTicker":
        bk = [m.book_hour(spec, h) for h in hours]
        cat = np.concatenate
        df = pl.DataFrame(
            {
                k: cat([getattr(x, k) for x in bk])
                for k in ("u", "bid", "bid_qty", "ask", "ask_qty", "t_ms", "e_ms")
            }
        )
        return df.select(
            pl.col("u"),
            dec_expr(pl.col("bid"), pd, po).alias("b"),
            dec_expr(pl.col("bid_qty"), qd, qo).alias("B"),
            dec_expr(pl.col("ask"), pd, po).alias("a"),
            dec_expr(pl.col("ask_qty"), qd, qo).alias("A"),
            pl.col("t_ms"),
            pl.col("e_ms"),
        )
    lq = [m.liq_hour(spec, h) for h in hours]
    cat = np.concatenate
    df = pl.DataFrame(
        {k: cat([getattr(x, k) for x in lq]) for k in ("t_ms", "sell", "qty", "price", "avg_price")}
    )
    q = dec_expr(pl.col("qty"), qd, qo)
    out = df.select(
        pl.col("t_ms"),
        pl.when(pl.col("sell")).then(pl.lit("SELL")).otherwise(pl.lit("BUY")).alias("side"),
        pl.lit("LIMIT").alias("ot"),
        pl.lit("IOC").alias("tif"),
        q.alias("oq"),
        dec_expr(pl.col("price"), pd, po).alias("p"),
        dec_expr(pl.col("avg_price"), pd, po).alias("ap"),
        pl.lit("FILLED").alias("st"),
        q.alias("lq"),
        q.alias("aq"),
    )
    # The historic snapshot files repeat every row (PDI#259, #337).
    return pl.concat([out, out]).sort("t_ms", maintain_order=True)


def _frame(m: Market, spec: SymbolSpec, f: VFile) -> pl.DataFrame:
    if f.dataset in KLINE_TYPES:
        return _klines_frame(m, spec, f)
    if f.dataset == "fundingRate":
        fu = m.funding(spec, f.start_ms, f.end_ms - 1)
        rate = float_units(fu.rate, 8)
        df = pl.DataFrame({"t": fu.funding_time, "r": rate})
        return df.select(pl.col("t"), pl.lit(8).alias("h"), dec_expr(pl.col("r"), 8).alias("r"))
    if f.dataset == "metrics":
        t = slot_times(f.start_ms, f.end_ms - 1)
        mt = m.metrics(spec, t)
        buy, sell = m.taker_volumes(spec, t, 300_000)
        ratio = np.where(sell > 0, buy / np.maximum(sell, 1), 0.0)
        text = [
            datetime.fromtimestamp(x / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") for x in t.tolist()
        ]
        return pl.DataFrame(
            {
                "create_time": text,
                "symbol": [spec.symbol] * len(t),
                "oi": [f"{x:.8f}" for x in mt.oi],
                "oiv": [f"{x:.8f}" for x in mt.oi_value],
                "a": [f"{x:.4f}" for x in mt.top_account],
                "b": [f"{x:.4f}" for x in mt.top_position],
                "c": [f"{x:.4f}" for x in mt.global_account],
                "d": [f"{x:.4f}" for x in ratio],
            }
        )
    return _book_depth(m, spec, f)


def _klines_frame(m: Market, spec: SymbolSpec, f: VFile) -> pl.DataFrame:
    iv = _iv(f.interval)
    opens = kl.opens_between(f.start_ms, f.end_ms - 1, iv)
    kind = {"klines": "trade", "markPriceKlines": "mark", "indexPriceKlines": "index"}.get(
        f.dataset, "premium"
    )
    if kind == "trade":
        bars = m.trade_klines(spec, iv, opens, f.end_ms)
        scale, out = spec.price_dec, spec.price_out_dec
    else:
        bars = m.sample_klines(spec, kind, iv, opens, f.end_ms)
        scale = out = 8
    mult = 1000 if micros(f) else 1
    closes = kl.next_open(bars.open_time, iv) * mult - 1
    df = pl.DataFrame(
        {
            k: getattr(bars, k)
            for k in (
                "open_time",
                "open",
                "high",
                "low",
                "close",
                "volume",
                "quote",
                "count",
                "taker_base",
                "taker_quote",
            )
        }
        | {"ct": closes}
    )
    pd, qd, qo = spec.price_dec, spec.qty_dec, spec.qty_out_dec
    qout = 8 if f.market == "spot" else pd + qd
    if kind == "trade":
        vols = [
            dec_expr(pl.col("volume"), qd, qo),
            dec_expr(pl.col("quote"), pd + qd, qout),
            dec_expr(pl.col("taker_base"), qd, qo),
            dec_expr(pl.col("taker_quote"), pd + qd, qout),
        ]
    else:
        vols = [pl.lit("0")] * 4
    return df.select(
        _times("open_time", mult).alias("t"),
        *(dec_expr(pl.col(c), scale, out).alias(c) for c in ("open", "high", "low", "close")),
        vols[0].alias("v"),
        pl.col("ct"),
        vols[1].alias("q"),
        pl.col("count"),
        vols[2].alias("tb"),
        vols[3].alias("tq"),
        pl.lit("0").alias("i"),
    )


def _book_depth(m: Market, spec: SymbolSpec, f: VFile) -> pl.DataFrame:
    t = np.arange(f.start_ms, f.end_ms, BOOK_DEPTH_MS, dtype=np.int64)
    mid = m.path(spec).mark(t) if spec.market == "um" else m.path(spec).spot_mid(t)
    n = len(_BANDS)
    idx = (t[:, None] // BOOK_DEPTH_MS) * n + np.arange(n)
    u = hashed_uniform(m.seed, spec.key, S_METRICS + 50, idx.ravel()).reshape(len(t), n)
    step = 2e6 / spec.base_price * (0.7 + 0.6 * u)
    depth = np.empty_like(step)
    depth[:, 5:] = np.cumsum(step[:, 5:], axis=1)  # 1..5 % above mid
    depth[:, :5] = np.cumsum(step[:, :5][:, ::-1], axis=1)[:, ::-1]  # -1..-5 % below
    notional = depth * mid[:, None] * (1 + _BANDS / 200)
    text = [datetime.fromtimestamp(x / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") for x in t.tolist()]
    return pl.DataFrame(
        {
            "timestamp": np.repeat(text, n),
            "percentage": np.tile(_BANDS, len(t)),
            "depth": [f"{x:.{spec.qty_dec}f}" for x in depth.ravel()],
            "notional": [f"{x:.2f}" for x in notional.ravel()],
        }
    )
