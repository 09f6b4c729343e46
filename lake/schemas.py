"""Every table of the lake, declared once.

A :class:`TableSpec` names a table's columns with their *logical* polars dtypes, its partition
columns, its natural (merge) key and its sort key. Parsers and transforms end by calling
:meth:`TableSpec.conform`; the storage layer derives the Delta schema from the same spec.

Two physical differences between the logical schema and what Delta stores, handled only in
:mod:`lake.storage`: Delta timestamps are microsecond precision (millisecond values are kept
exactly) and Delta has no unsigned integers (``UInt16`` is stored as ``Int16``; the one such
column, ``source_mask``, never exceeds 511). The ``date`` partition column is *derived* from the
table's time column on write and lives in the Delta log and the file paths, not in the data files.

Prices and quantities in bronze are the exchange's decimal strings, untouched: no float rounding
happens before silver, and parsing them costs nothing at ingest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import polars as pl
import pyarrow as pa

Layer = Literal["bronze", "silver", "gold", "ops"]
LAYERS: tuple[Layer, ...] = ("bronze", "silver", "gold", "ops")

DATE = "date"
"""Name of the derived partition column (UTC day of the table's time column)."""

KEY_TIME_SLACK = timedelta(minutes=1)
"""How far apart the ``key_time`` of two copies of one key may be. They differ by less than a
millisecond (the archive's µs against the stream's ms); the slack is wide so that no copy is
ever missed, and still narrow enough that only the files of a minute or two are read."""

MS = pl.Datetime("ms", "UTC")
US = pl.Datetime("us", "UTC")
STR = pl.String()
I64 = pl.Int64()
I32 = pl.Int32()
F64 = pl.Float64()
BOOL = pl.Boolean()

SOURCES = ("ws", "rest", "vision")
"""Values of every ``source`` column: where a row came from."""


@dataclass(frozen=True)
class Column:
    """One column: its name, logical dtype, nullability and meaning."""

    name: str
    dtype: pl.DataType
    nullable: bool = True
    doc: str = ""


@dataclass(frozen=True)
class TableSpec:
    """A table: columns, partitioning, keys. Paths are ``{root}/{layer}/{name}``.

    Attributes:
        time_columns: the event-time column(s), coalesced left to right; they give the derived
            ``date`` partition and the table's watermark.
        partition_by: partition columns; ``date`` among them is derived, the rest are columns.
        merge_keys: the natural key; a merge on it makes every write idempotent.
        sort_keys: row order inside files (also the z-order columns for compaction).
        watermark_by: the columns a watermark is grouped by.
        key_time: a time column that every copy of one key carries, within
            :data:`KEY_TIME_SLACK` (a trade's time, whether it came from the stream, REST or the
            archive), so that looking for stored keys reads only files of that time.
    """

    layer: Layer
    name: str
    columns: tuple[Column, ...]
    merge_keys: tuple[str, ...]
    sort_keys: tuple[str, ...]
    partition_by: tuple[str, ...] = ()
    time_columns: tuple[str, ...] = ()
    watermark_by: tuple[str, ...] = ()
    description: str = ""
    key_time: str | None = None
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {c.name: c for c in self.columns}
        if len(by_name) != len(self.columns):
            raise ValueError(f"{self.key}: duplicate column names")
        object.__setattr__(self, "_by_name", by_name)
        referenced = (
            *self.merge_keys,
            *self.sort_keys,
            *self.time_columns,
            *self.watermark_by,
            *((self.key_time,) if self.key_time else ()),
            *(p for p in self.partition_by if p != DATE),
        )
        unknown = [n for n in referenced if n not in by_name]
        if unknown:
            raise ValueError(f"{self.key}: keys name unknown columns {unknown}")
        if DATE in self.partition_by and not self.time_columns:
            raise ValueError(f"{self.key}: a date partition needs time_columns")
        if DATE in by_name:
            raise ValueError(f"{self.key}: 'date' is reserved for the derived partition")

    @property
    def key(self) -> str:
        """``layer.name``, the name used on the command line and in commit metadata."""
        return f"{self.layer}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def derived_partitions(self) -> tuple[str, ...]:
        return tuple(p for p in self.partition_by if p not in self._by_name)

    def column(self, name: str) -> Column:
        return self._by_name[name]

    def polars_schema(self) -> pl.Schema:
        """The logical schema, exactly the declared columns in order."""
        return pl.Schema({c.name: c.dtype for c in self.columns})

    def time_expr(self) -> pl.Expr:
        """The event time as one expression (coalesced when there are several candidates)."""
        cols = [pl.col(c) for c in self.time_columns]
        return cols[0] if len(cols) == 1 else pl.coalesce(cols)

    def conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Select and cast ``frame`` to this table's logical schema.

        Raises:
            ValueError: a declared column is missing, an extra column is present, or a
                non-nullable column holds nulls.
        """
        missing = [n for n in self.column_names if n not in frame.columns]
        extra = [n for n in frame.columns if n not in self._by_name and n != DATE]
        if missing or extra:
            raise ValueError(f"{self.key}: columns missing {missing}, unexpected {extra}")
        schema = frame.schema  # read once: each access costs microseconds
        out = frame.select(
            pl.col(c.name).cast(c.dtype, strict=True)
            if schema[c.name] != c.dtype
            # already the right type: no cast, no copy
            else pl.col(c.name)
            for c in self.columns
        )
        required = [c.name for c in self.columns if not c.nullable]
        if required and out.height:
            nulls = out.select(pl.col(required).null_count()).row(0)
            bad = [n for n, k in zip(required, nulls, strict=True) if k]
            if bad:
                raise ValueError(f"{self.key}: nulls in non-nullable columns {bad}")
        return out

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.polars_schema())


def _lineage(*, recv: bool = False) -> tuple[Column, ...]:
    cols = [
        Column("source", STR, False, "where the row came from: ws, rest or vision"),
        Column("batch_id", STR, False, "ingestion batch; appears in the Delta commit metadata"),
    ]
    if recv:
        cols.insert(0, Column("ts_recv", US, True, "local receive time (ws rows only)"))
    return tuple(cols)


MARKET = Column("market", STR, False, "spot or um")
SYMBOL = Column("symbol", STR, False, "upper-case symbol, e.g. BTCUSDT")
EVENT_TIME = Column("event_time", US, True, "WebSocket event time E (null from rest/vision)")

# --- bronze ----------------------------------------------------------------------------------

AGG_TRADES = TableSpec(
    layer="bronze",
    name="agg_trades",
    description="Aggregate trades: WS <s>@aggTrade, REST aggTrades, Vision aggTrades.",
    columns=(
        MARKET,
        SYMBOL,
        Column("agg_trade_id", I64, False, "a / agg_trade_id"),
        Column("price", STR, False, "p"),
        Column("quantity", STR, False, "q"),
        Column("first_trade_id", I64, False, "f"),
        Column("last_trade_id", I64, False, "l"),
        Column("transact_time", US, False, "T: trade time"),
        Column("is_buyer_maker", BOOL, False, "m"),
        Column("is_best_match", BOOL, True, "M (spot only)"),
        EVENT_TIME,
        *_lineage(recv=True),
    ),
    merge_keys=("market", "symbol", "agg_trade_id"),
    key_time="transact_time",
    sort_keys=("symbol", "agg_trade_id"),
    partition_by=("market", DATE),
    time_columns=("transact_time",),
    watermark_by=("market", "symbol"),
)

TRADES = TableSpec(
    layer="bronze",
    name="trades",
    description="Trades: WS <s>@trade, Vision trades.",
    columns=(
        MARKET,
        SYMBOL,
        Column("trade_id", I64, False, "t / id"),
        Column("price", STR, False, "p"),
        Column("qty", STR, False, "q"),
        Column("quote_qty", STR, True, "quote_qty (archive only)"),
        Column("trade_time", US, False, "T / time"),
        Column("is_buyer_maker", BOOL, False, "m"),
        Column("is_best_match", BOOL, True, "M (spot only)"),
        Column("trade_type", STR, True, "X on USD-M frames, e.g. MARKET"),
        EVENT_TIME,
        *_lineage(recv=True),
    ),
    merge_keys=("market", "symbol", "trade_id"),
    key_time="trade_time",
    sort_keys=("symbol", "trade_id"),
    partition_by=("market", DATE),
    time_columns=("trade_time",),
    watermark_by=("market", "symbol"),
)

BOOK_TICKER = TableSpec(
    layer="bronze",
    name="book_ticker",
    description=(
        "Best bid/ask: WS <s>@bookTicker (spot frames carry no exchange time), Vision bookTicker. "
        "Update ids never repeat per symbol in real recordings, so they are the key."
    ),
    columns=(
        MARKET,
        SYMBOL,
        Column("update_id", I64, False, "u"),
        Column("bid_price", STR, False, "b"),
        Column("bid_qty", STR, False, "B"),
        Column("ask_price", STR, False, "a"),
        Column("ask_qty", STR, False, "A"),
        Column("transaction_time", US, True, "T (USD-M only)"),
        EVENT_TIME,
        *_lineage(recv=True),
    ),
    merge_keys=("market", "symbol", "update_id"),
    sort_keys=("symbol", "update_id"),
    partition_by=("market", DATE),
    time_columns=("transaction_time", "event_time", "ts_recv"),
    watermark_by=("market", "symbol"),
)

MARK_PRICE = TableSpec(
    layer="bronze",
    name="mark_price",
    description="USD-M mark/index/settle price and funding estimate: WS <s>@markPrice@1s.",
    columns=(
        SYMBOL,
        Column("event_time", US, False, "E"),
        Column("mark_price", STR, False, "p"),
        Column("index_price", STR, True, "i"),
        Column("estimated_settle_price", STR, True, "P"),
        Column("funding_rate", STR, True, "r ('' for delivery contracts becomes null)"),
        Column("next_funding_time", US, True, "T"),
        *_lineage(recv=True),
    ),
    merge_keys=("symbol", "event_time"),
    sort_keys=("symbol", "event_time"),
    partition_by=(DATE,),
    time_columns=("event_time",),
    watermark_by=("symbol",),
)

KLINE_KINDS = ("trade", "mark", "index", "premium")

KLINES = TableSpec(
    layer="bronze",
    name="klines",
    description=(
        "Closed klines of four kinds: trade (klines), mark, index, premium (…PriceKlines / "
        "premiumIndexKlines): WS kline_<i> with x=true, REST, Vision."
    ),
    columns=(
        MARKET,
        Column("kind", STR, False, "trade, mark, index or premium"),
        Column("interval", STR, False, "e.g. 1m"),
        SYMBOL,
        Column("open_time", US, False, "t / open_time"),
        Column("close_time", US, False, "T / close_time"),
        Column("open", STR, False, "o"),
        Column("high", STR, False, "h"),
        Column("low", STR, False, "l"),
        Column("close", STR, False, "c"),
        Column("volume", STR, True, "v (0 for mark/index/premium)"),
        Column("quote_volume", STR, True, "q"),
        Column("trade_count", I64, True, "n (a sample count for mark/index/premium)"),
        Column("taker_buy_volume", STR, True, "V"),
        Column("taker_buy_quote_volume", STR, True, "Q"),
        EVENT_TIME,
        *_lineage(recv=True),
    ),
    merge_keys=("market", "kind", "interval", "symbol", "open_time"),
    sort_keys=("symbol", "interval", "open_time"),
    partition_by=("market", "kind", DATE),
    time_columns=("open_time",),
    watermark_by=("market", "kind", "symbol"),
)

LIQUIDATIONS = TableSpec(
    layer="bronze",
    name="liquidations",
    description=(
        "USD-M liquidation orders: WS <s>@forceOrder (a snapshot stream: at most one per "
        "symbol per second), Vision liquidationSnapshot (to 2024-03-31). S=SELL: a long was "
        "liquidated."
    ),
    columns=(
        SYMBOL,
        Column("trade_time", US, False, "o.T / time"),
        Column("side", STR, False, "o.S"),
        Column("order_type", STR, True, "o.o"),
        Column("time_in_force", STR, True, "o.f"),
        Column("orig_qty", STR, True, "o.q"),
        Column("price", STR, False, "o.p"),
        Column("avg_price", STR, True, "o.ap"),
        Column("order_status", STR, True, "o.X"),
        Column("last_filled_qty", STR, True, "o.l"),
        Column("filled_qty", STR, False, "o.z: accumulated filled quantity"),
        EVENT_TIME,
        *_lineage(recv=True),
    ),
    merge_keys=("symbol", "trade_time", "side", "price", "filled_qty"),
    sort_keys=("symbol", "trade_time"),
    partition_by=(DATE,),
    time_columns=("trade_time",),
    watermark_by=("symbol",),
)

FUNDING = TableSpec(
    layer="bronze",
    name="funding",
    description="Settled funding rates: REST /fapi/v1/fundingRate, Vision fundingRate (monthly).",
    columns=(
        SYMBOL,
        Column("funding_time", US, False, "fundingTime / calc_time (kept with its ms jitter)"),
        Column("funding_rate", STR, False, "fundingRate / last_funding_rate"),
        Column("funding_interval_hours", pl.Int8(), True, "Vision only"),
        Column("mark_price", STR, True, "REST only"),
        *_lineage(),
    ),
    merge_keys=("symbol", "funding_time"),
    sort_keys=("symbol", "funding_time"),
    time_columns=("funding_time",),
    watermark_by=("symbol",),
)

METRICS = TableSpec(
    layer="bronze",
    name="metrics",
    description=(
        "5-minute open interest and long/short ratios: Vision metrics (daily), REST "
        "/futures/data/* (last 30 days)."
    ),
    columns=(
        SYMBOL,
        Column("create_time", US, False, "create_time (naive text, UTC) / timestamp"),
        Column("sum_open_interest", STR, True, ""),
        Column("sum_open_interest_value", STR, True, ""),
        Column("count_toptrader_long_short_ratio", STR, True, "topLongShortAccountRatio"),
        Column("sum_toptrader_long_short_ratio", STR, True, "topLongShortPositionRatio"),
        Column("count_long_short_ratio", STR, True, "globalLongShortAccountRatio"),
        Column("sum_taker_long_short_vol_ratio", STR, True, "takerlongshortRatio.buySellRatio"),
        *_lineage(),
    ),
    merge_keys=("symbol", "create_time"),
    sort_keys=("symbol", "create_time"),
    partition_by=(DATE,),
    time_columns=("create_time",),
    watermark_by=("symbol",),
)

# --- silver ----------------------------------------------------------------------------------

BARS_1S = TableSpec(
    layer="silver",
    name="bars_1s",
    description="1-second OHLCV from trades plus the last L1 quote of each second.",
    columns=(
        MARKET,
        SYMBOL,
        Column("window_start", MS, False, "start of the second"),
        Column("open", F64),
        Column("high", F64),
        Column("low", F64),
        Column("close", F64),
        Column("volume", F64),
        Column("quote_volume", F64),
        Column("taker_buy_volume", F64),
        Column("trade_count", I32),
        Column("vwap", F64),
        Column("first_trade_id", I64),
        Column("last_trade_id", I64),
        Column("bid_last", F64),
        Column("ask_last", F64),
        Column("bid_qty_last", F64),
        Column("ask_qty_last", F64),
        Column("quote_count", I32, True, "book updates in the second"),
        Column("ingested_at", MS, False),
        Column("batch_id", STR, False),
    ),
    merge_keys=("market", "symbol", "window_start"),
    sort_keys=("symbol", "window_start"),
    partition_by=("market", DATE),
    time_columns=("window_start",),
    watermark_by=("market", "symbol"),
)

# --- gold: the 58 columns of BINANCE.md §4, in order -----------------------------------------

_F = F64
FUTURES_UM_1M = TableSpec(
    layer="gold",
    name="futures_um_1m",
    description="Canonical 1-minute USD-M futures bar, one row per (symbol, open_time).",
    columns=(
        Column("symbol", STR, False),
        Column("open_time", MS, False),
        *(Column(n, _F) for n in ("open", "high", "low", "close")),
        Column("volume", _F),
        Column("quote_volume", _F),
        Column("trade_count", I32),
        Column("taker_buy_volume", _F),
        Column("taker_buy_quote_volume", _F),
        *(Column(f"mark_{n}", _F) for n in ("open", "high", "low", "close")),
        *(Column(f"index_{n}", _F) for n in ("open", "high", "low", "close")),
        *(Column(f"premium_{n}", _F) for n in ("open", "high", "low", "close")),
        Column("funding_rate", _F),
        Column("funding_time", MS),
        Column("funding_interval_hours", pl.Int8()),
        Column("next_funding_time", MS),
        Column("funding_rate_est", _F),
        Column("open_interest", _F),
        Column("open_interest_value", _F),
        Column("metrics_time", MS),
        Column("top_trader_ls_account_ratio", _F),
        Column("top_trader_ls_position_ratio", _F),
        Column("global_ls_account_ratio", _F),
        Column("taker_buy_sell_vol_ratio", _F),
        Column("agg_trade_count", I32),
        Column("agg_vwap", _F),
        Column("agg_buy_qty", _F),
        Column("agg_sell_qty", _F),
        Column("agg_max_qty", _F),
        Column("agg_first_id", I64),
        Column("agg_last_id", I64),
        Column("bid_last", _F),
        Column("ask_last", _F),
        Column("bid_qty_last", _F),
        Column("ask_qty_last", _F),
        Column("bid_mean", _F),
        Column("ask_mean", _F),
        Column("spread_mean", _F),
        Column("book_update_count", I32),
        Column("liq_long_count", I32),
        Column("liq_long_qty", _F),
        Column("liq_short_count", I32),
        Column("liq_short_qty", _F),
        Column("source", STR, False, "vision > rest > ws: where columns 3-11 came from"),
        Column("source_mask", pl.UInt16(), False, "bitmask of the blocks present"),
        Column("ingested_at", MS, False),
        Column("batch_id", STR, False),
    ),
    merge_keys=("symbol", "open_time"),
    sort_keys=("symbol", "open_time"),
    partition_by=(DATE,),
    time_columns=("open_time",),
    watermark_by=("symbol",),
)

SOURCE_MASK_BITS = {
    "klines": 1,
    "mark": 2,
    "index": 4,
    "premium": 8,
    "funding": 16,
    "metrics": 32,
    "agg_trades": 64,
    "book_ticker": 128,
    "liquidations": 256,
}

# --- ops -------------------------------------------------------------------------------------

SOURCES_TABLE = TableSpec(
    layer="ops",
    name="sources",
    description="Provenance of every archive file: one row per Vision key, its latest state.",
    columns=(
        Column("key", STR, False, "Vision key, e.g. data/futures/um/daily/aggTrades/…zip"),
        Column("market", STR, False),
        Column("dataset", STR, False, "Vision type, e.g. aggTrades, klines"),
        Column("symbol", STR, False),
        Column("period", STR, False, "daily or monthly"),
        Column("period_start", pl.Date(), False, "the day, or the first day of the month"),
        Column("size", I64, True, "bytes"),
        Column("last_modified", MS, True, "LastModified from the listing"),
        Column("sha256", STR, True, "from the .CHECKSUM file"),
        Column("computed_sha256", STR, True, "of the bytes downloaded"),
        Column("rows", I64, True),
        Column("status", STR, False, "ingested, checksum_mismatch, truncated, missing, …"),
        Column("detail", STR, True),
        Column("batch_id", STR, True),
        Column("recorded_at", MS, False),
    ),
    merge_keys=("key",),
    sort_keys=("key",),
    time_columns=("period_start",),
    watermark_by=("market", "dataset", "symbol"),
)

GAPS = TableSpec(
    layer="ops",
    name="gaps",
    description="The gap ledger: every discontinuity found, and what became of it.",
    columns=(
        Column("gap_id", STR, False, "deterministic: hash of table, market, symbol, kind, start"),
        Column("table_name", STR, False),
        Column("market", STR, False),
        Column("symbol", STR, False),
        Column("kind", STR, False, "id, sequence, cadence, missing_minute, disconnect, …"),
        Column("start_id", I64),
        Column("end_id", I64),
        Column("start_time", US),
        Column("end_time", US),
        Column("detected_at", MS, False),
        Column("status", STR, False, "open, repaired or capture_loss"),
        Column("repaired_at", MS),
        Column("repair_source", STR),
        Column("rows_repaired", I64),
        Column("detail", STR),
    ),
    merge_keys=("gap_id",),
    sort_keys=("table_name", "symbol", "start_time"),
    time_columns=("detected_at",),
    watermark_by=("table_name", "market", "symbol"),
)

QUARANTINE = TableSpec(
    layer="ops",
    name="quarantine",
    description="Rows or frames that failed parsing or quality gates, kept verbatim.",
    columns=(
        Column("record_id", STR, False, "hash of table, batch and payload"),
        Column("table_name", STR, False),
        Column("market", STR),
        Column("symbol", STR),
        Column("reason", STR, False),
        Column("payload", STR, True, "the raw frame or row"),
        Column("source", STR, False),
        Column("batch_id", STR, False),
        Column("detected_at", MS, False),
    ),
    merge_keys=("record_id",),
    sort_keys=("table_name", "detected_at"),
    time_columns=("detected_at",),
    watermark_by=("table_name",),
)

VALIDATIONS = TableSpec(
    layer="ops",
    name="validations",
    description="Results of quality-gate runs, one row per (table partition, suite, run).",
    columns=(
        Column("validation_id", STR, False),
        Column("table_name", STR, False),
        Column("partition", STR, False, "e.g. market=um/date=2024-01-01"),
        Column("table_version", I64, True),
        Column("suite", STR, False),
        Column("success", BOOL, False),
        Column("evaluated", I64, False),
        Column("failed", I64, False),
        Column("details", STR, True, "JSON"),
        Column("flow_run_id", STR, True),
        Column("run_at", MS, False),
    ),
    merge_keys=("validation_id",),
    sort_keys=("table_name", "run_at"),
    time_columns=("run_at",),
    watermark_by=("table_name",),
)

RECONCILIATION = TableSpec(
    layer="ops",
    name="reconciliation",
    description="Live capture checked against the archive, per (table, market, symbol, day).",
    columns=(
        Column("table_name", STR, False),
        Column("market", STR, False),
        Column("symbol", STR, False),
        Column("day", pl.Date(), False),
        Column("live_rows", I64, False),
        Column("archive_rows", I64, False),
        Column("missing_in_live", I64, False),
        Column("missing_in_archive", I64, False),
        Column("mismatched", I64, False),
        Column("status", STR, False, "match or mismatch"),
        Column("checked_at", MS, False),
    ),
    merge_keys=("table_name", "market", "symbol", "day"),
    sort_keys=("table_name", "symbol", "day"),
    time_columns=("day",),
    watermark_by=("table_name", "market", "symbol"),
)

ALL_TABLES: tuple[TableSpec, ...] = (
    AGG_TRADES,
    TRADES,
    BOOK_TICKER,
    MARK_PRICE,
    KLINES,
    LIQUIDATIONS,
    FUNDING,
    METRICS,
    BARS_1S,
    FUTURES_UM_1M,
    SOURCES_TABLE,
    GAPS,
    QUARANTINE,
    VALIDATIONS,
    RECONCILIATION,
)

TABLES: dict[str, TableSpec] = {t.key: t for t in ALL_TABLES}


def iter_tables(layer: Layer | None = None) -> Iterator[TableSpec]:
    return (t for t in ALL_TABLES if layer is None or t.layer == layer)


def get_table(name: str) -> TableSpec:
    """Look a table up by ``layer.name`` or by its bare name when that is unique.

    Raises:
        KeyError: with the list of known tables.
    """
    if name in TABLES:
        return TABLES[name]
    matches = [t for t in ALL_TABLES if t.name == name]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(TABLES)
    raise KeyError(f"unknown table {name!r} (known: {known})")


def delta_arrow_schema(spec: TableSpec) -> pa.Schema:
    """The Arrow schema Delta stores: logical columns, Delta-compatible types, partitions last."""
    fields = []
    for c in spec.columns:
        fields.append(pa.field(c.name, _delta_type(c.dtype), nullable=c.nullable))
    for p in spec.derived_partitions:
        fields.append(pa.field(p, pa.date32(), nullable=False))
    return pa.schema(fields)


def _delta_type(dtype: pl.DataType) -> pa.DataType:
    if isinstance(dtype, pl.Datetime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(dtype, pl.UInt16):
        return pa.int16()
    if isinstance(dtype, pl.String):
        return pa.string()
    arrow: pa.DataType = pl.Schema({"x": dtype}).to_arrow().field("x").type
    return arrow
