"""Binance Vision CSV files → bronze frames (BINANCE.md §3.2 and Appendix A).

Every file is read by ``polars.read_csv`` with an explicit schema (no inference): ids and epoch
times as Int64, prices, quantities and booleans as String. Archive quirks handled here: header
rows that come and go (detected per file), ms vs µs epochs (decided per value), booleans spelt
``True/False`` or ``true/false``, metrics' naive text times (UTC), empty ratio fields (null),
monthly aggTrades whose id ranges interleave (sorted), and exact duplicate rows (dropped).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import polars as pl

from lake import schemas
from lake.binance.parse_common import drop_exact_duplicates, epoch_us_column
from lake.binance.vision_paths import KLINE_KIND_BY_DATASET

I64, STR = pl.Int64, pl.String

KLINE_COLS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
              "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")  # fmt: skip
UM_AGGTRADES_COLS = ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
                     "transact_time", "is_buyer_maker")  # fmt: skip
SPOT_AGGTRADES_COLS = (*UM_AGGTRADES_COLS, "is_best_match")
UM_TRADES_COLS = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker")
SPOT_TRADES_COLS = (*UM_TRADES_COLS, "is_best_match")
FUNDING_COLS = ("calc_time", "funding_interval_hours", "last_funding_rate")
METRICS_COLS = ("create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
                "count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio",
                "count_long_short_ratio", "sum_taker_long_short_vol_ratio")  # fmt: skip
BOOKTICKER_COLS = ("update_id", "best_bid_price", "best_bid_qty", "best_ask_price",
                   "best_ask_qty", "transaction_time", "event_time")  # fmt: skip
LIQ_SNAPSHOT_COLS = ("time", "side", "order_type", "time_in_force", "original_quantity", "price",
                     "average_price", "order_status", "last_fill_quantity",
                     "accumulated_fill_quantity")  # fmt: skip

# Columns read as integers; every other column is read as text.
_INT_COLS = frozenset({
    "open_time", "close_time", "count", "agg_trade_id", "first_trade_id", "last_trade_id",
    "transact_time", "id", "time", "calc_time", "funding_interval_hours", "update_id",
    "transaction_time", "event_time",
})  # fmt: skip
_EPOCH_COLS = frozenset({"open_time", "close_time", "transact_time", "time", "calc_time",
                         "transaction_time", "event_time"})  # fmt: skip
_BOOL_COLS = frozenset({"is_buyer_maker", "is_best_match"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}

# dataset → the column layouts a file may have; the field count of the first line picks one.
_LAYOUTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aggTrades": (UM_AGGTRADES_COLS, SPOT_AGGTRADES_COLS),
    "trades": (UM_TRADES_COLS, SPOT_TRADES_COLS),
    **{name: (KLINE_COLS,) for name in KLINE_KIND_BY_DATASET},
    "fundingRate": (FUNDING_COLS,),
    "metrics": (METRICS_COLS,),
    "bookTicker": (BOOKTICKER_COLS,),
    "liquidationSnapshot": (LIQ_SNAPSHOT_COLS,),
}
VISION_CSV_DATASETS = tuple(_LAYOUTS)


def has_header(first_line: str) -> bool:
    """Header rows start with a letter; data rows start with a digit (ids, epochs, dates)."""
    return first_line.lstrip("\ufeff").strip()[:1].isalpha()


def csv_from_zip(data: bytes) -> bytes:
    """The one CSV inside a Vision zip.

    Raises:
        ValueError: not a zip (truncated or corrupt), or not exactly one member.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if len(names) != 1:
                raise ValueError(f"expected one CSV in the zip, found {len(names)}: {names[:5]}")
            return zf.read(names[0])
    except zipfile.BadZipFile as exc:
        reason = f"not a readable zip ({exc}): the download is truncated or corrupt"
        raise ValueError(reason) from None


def _norm(name: str) -> str:
    return name.strip().lstrip("\ufeff").replace("_", "").lower()


def read_vision_csv(data: bytes, dataset: str) -> pl.DataFrame:
    """Read a Vision CSV into its raw columns (named as in Appendix A), header or not.

    Raises:
        ValueError: unknown dataset, or a first line whose field count or header names match
            none of the dataset's layouts.
    """
    layouts = _LAYOUTS.get(dataset)
    if layouts is None:
        raise ValueError(f"no CSV parser for {dataset!r} (known: {', '.join(_LAYOUTS)})")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    end = data.find(b"\n")
    first = data[: end if end >= 0 else len(data)].decode(errors="replace").rstrip("\r")
    if not first.strip():
        names = layouts[0]
        return pl.DataFrame(schema={n: I64 if n in _INT_COLS else STR for n in names})
    fields = first.split(",")
    matching = [cols for cols in layouts if len(cols) == len(fields)]
    if not matching:
        sizes = " or ".join(str(len(c)) for c in layouts)
        raise ValueError(f"{dataset}: first line has {len(fields)} fields, expected {sizes}")
    names = matching[0]
    header = has_header(first)
    if header and [_norm(f) for f in fields] != [_norm(n) for n in names]:
        raise ValueError(f"{dataset}: unexpected header {first!r}; expected {','.join(names)}")
    schema = pl.Schema({n: I64 if n in _INT_COLS else STR for n in names})
    try:
        return pl.read_csv(data, has_header=False, skip_rows=1 if header else 0, schema=schema)
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"{dataset}: unreadable CSV: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _normalise(raw: pl.DataFrame, dataset: str) -> pl.DataFrame:
    exprs = [epoch_us_column(c) for c in raw.columns if c in _EPOCH_COLS]
    bools = [c for c in raw.columns if c in _BOOL_COLS]
    exprs += [
        pl.col(c).replace_strict(_BOOLS, default=None, return_dtype=pl.Boolean) for c in bools
    ]
    if not exprs:
        return raw
    out = raw.with_columns(exprs)
    for c in bools:  # an unknown spelling became null: say which value, never read it as false
        if out.get_column(c).null_count() > raw.get_column(c).null_count():
            bad = raw.get_column(c).filter(out.get_column(c).is_null()).drop_nulls()[0]
            raise ValueError(f"{dataset}: {c} holds {bad!r}, not true/false/True/False")
    return out


def _conform(
    spec: schemas.TableSpec, frame: pl.DataFrame, key: Sequence[str], **constants: object
) -> pl.DataFrame:
    lits = [pl.lit(v, dtype=spec.column(k).dtype).alias(k) for k, v in constants.items()]
    frame = frame.with_columns(lits)
    absent = [c for c in spec.columns if c.name not in frame.columns]
    frame = frame.with_columns(pl.lit(None, dtype=c.dtype).alias(c.name) for c in absent)
    return drop_exact_duplicates(spec.conform(frame), key)


def parse_vision_csv(
    data: bytes,
    *,
    market: str,
    dataset: str,
    symbol: str,
    batch_id: str,
    interval: str | None = None,
) -> pl.DataFrame:
    """Parse one Vision CSV (the zip's content) into its bronze table.

    Route: ``https://data.binance.vision/data/{spot|futures/um}/{daily|monthly}/{dataset}/…``.
    An aggTrades line (USD-M, header on newer files, booleans ``true/false``)::

        agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker
        480537903,79972.8,542.0,1123474160,1123474164,1778198400020,false

    A spot kline line (never a header; µs since 2025-01-01)::

        1778198400000000,80006.00000000,80142.84000000,…,1778201999999999,…,67626,…,0

    Args:
        data: the CSV bytes (see :func:`csv_from_zip`).
        market: ``spot`` or ``um``, written to the ``market`` column where the table has one.
        dataset: aggTrades, trades, klines, markPriceKlines, indexPriceKlines,
            premiumIndexKlines, fundingRate, metrics, bookTicker or liquidationSnapshot.
        symbol: the file's symbol, upper case.
        batch_id: written to every row.
        interval: the kline interval (kline-type datasets only), e.g. ``1m``.

    Returns:
        Rows conformed to the bronze table, sorted by its key, exact duplicates dropped.

    Raises:
        ValueError: unknown dataset, unexpected layout or header, a missing interval, or
            values that do not fit the table (e.g. an unparseable boolean or time).
    """
    raw = _normalise(read_vision_csv(data, dataset), dataset)
    lineage: dict[str, object] = {"symbol": symbol, "source": "vision", "batch_id": batch_id}
    if dataset == "aggTrades":
        return _conform(schemas.AGG_TRADES, raw, ("agg_trade_id",), market=market, **lineage)
    if dataset == "trades":
        frame = raw.rename({"id": "trade_id", "time": "trade_time"})
        return _conform(schemas.TRADES, frame, ("trade_id",), market=market, **lineage)
    if dataset in KLINE_KIND_BY_DATASET:
        if interval is None:
            raise ValueError(f"{dataset} needs the kline interval, e.g. interval='1m'")
        frame = raw.drop("ignore").rename({"count": "trade_count"})
        kind = KLINE_KIND_BY_DATASET[dataset]
        return _conform(
            schemas.KLINES,
            frame,
            ("open_time",),
            market=market,
            kind=kind,
            interval=interval,
            **lineage,
        )
    if dataset == "fundingRate":
        frame = raw.rename({"calc_time": "funding_time", "last_funding_rate": "funding_rate"})
        return _conform(schemas.FUNDING, frame, ("funding_time",), **lineage)
    if dataset == "metrics":
        created = pl.col("create_time").str.strip_chars()
        try:
            frame = raw.drop("symbol").with_columns(
                created.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", time_zone="UTC")
            )
        except pl.exceptions.PolarsError as exc:
            raise ValueError(
                f"metrics: create_time is not 'YYYY-MM-DD HH:MM:SS': {_first_line(exc)}"
            ) from None
        return _conform(schemas.METRICS, frame, ("create_time",), **lineage)
    if dataset == "bookTicker":
        frame = raw.rename({"best_bid_price": "bid_price", "best_bid_qty": "bid_qty",
                            "best_ask_price": "ask_price", "best_ask_qty": "ask_qty"})  # fmt: skip
        return _conform(schemas.BOOK_TICKER, frame, ("update_id",), market=market, **lineage)
    frame = raw.rename({"time": "trade_time", "original_quantity": "orig_qty",
                        "average_price": "avg_price", "last_fill_quantity": "last_filled_qty",
                        "accumulated_fill_quantity": "filled_qty"})  # fmt: skip
    return _conform(schemas.LIQUIDATIONS, frame, ("trade_time",), **lineage)
