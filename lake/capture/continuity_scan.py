"""(I/O) Continuity checked on bronze around what a landing brought in.

Each batch is checked *on bronze*, which also holds earlier captures and REST fills, over the
span it touched, reaching back to the last stored row:

* agg_trades / trades: holes in ``a`` / ``t`` ids (kind ``id``, repairable by REST);
* klines: missing minutes (kind ``cadence``, repairable by REST);
* mark_price: missing seconds (kind ``cadence``, capture loss).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from lake.binance.parse import ParsedFrames
from lake.gaps import ledger_rows
from lake.quality.continuity import cadence_gaps, id_gaps
from lake.schemas import AGG_TRADES, DATE, KLINES, MARK_PRICE, TRADES, TableSpec
from lake.storage import Lake

ID_TABLES: dict[str, tuple[TableSpec, str, str]] = {
    "agg_trades": (AGG_TRADES, "agg_trade_id", "transact_time"),
    "trades": (TRADES, "trade_id", "trade_time"),
}


def scan_continuity(lake: Lake, parsed: ParsedFrames, detected: datetime) -> list[pl.DataFrame]:
    """Ledger rows for every discontinuity on bronze around what ``parsed`` brought in."""
    out: list[pl.DataFrame] = []
    for name, (spec, id_col, time_col) in ID_TABLES.items():
        frame: pl.DataFrame = getattr(parsed, name)
        if frame.height:
            holes = id_holes_around(lake, spec, frame, id_col=id_col, time_col=time_col)
            out.append(ledger_rows(holes, table=spec.key, kind="id", detected_at=detected))
    klines = parsed.klines
    if klines.height:
        for (_, kind, interval), part in klines.partition_by(
            ["market", "kind", "interval"], as_dict=True
        ).items():
            stored = _around(
                lake,
                KLINES,
                part,
                "open_time",
                timedelta(minutes=5),
                extra=(pl.col("kind") == kind) & (pl.col("interval") == interval),
            )
            step = timedelta(minutes=1) if interval == "1m" else None
            if step is None:
                continue
            holes = cadence_gaps(stored, time_col="open_time", every=step, by=("market", "symbol"))
            out.append(
                ledger_rows(
                    holes,
                    table=KLINES.key,
                    kind="cadence",
                    detected_at=detected,
                    detail=f"{kind} {interval}",
                )
            )
    marks = parsed.mark_price
    if marks.height:
        stored = _around(lake, MARK_PRICE, marks, "event_time", timedelta(seconds=10))
        holes = cadence_gaps(stored, time_col="event_time", every=timedelta(seconds=1))
        out.append(
            ledger_rows(
                holes,
                table=MARK_PRICE.key,
                kind="cadence",
                detected_at=detected,
                status="capture_loss",
                market="um",
            )
        )
    return out


def id_holes_around(
    lake: Lake, spec: TableSpec, frame: pl.DataFrame, *, id_col: str, time_col: str
) -> pl.DataFrame:
    """Id holes on bronze from the last stored id before ``frame`` to the end of ``frame``.

    Holes are found in the batch itself (plus the last stored row before it); bronze is read
    back only inside those holes, since earlier batches or REST fills may already hold them.
    """
    out = []
    ranges = frame.group_by("market", "symbol").agg(
        pl.col(id_col).min().alias("lo"),
        pl.col(id_col).max().alias("hi"),
        pl.col(id_col).n_unique().alias("ids"),
        pl.col(time_col).min().alias("first"),
    )
    table = lake.scan(spec, with_partitions=True)
    cols = ["market", "symbol", id_col, time_col]
    first = ranges.get_column("first").min()
    recent = table.filter(pl.col(DATE) >= first.date() - timedelta(days=1))  # type: ignore[union-attr]
    # A batch nearly always continues the stored ids: the row at lo - 1 of every symbol, in one
    # read of the files of the last minutes; only symbols without one are searched further.
    near = recent.filter(pl.col(time_col) >= first - PREDECESSOR_WINDOW)  # type: ignore[operator]
    continuing = near.filter(
        pl.any_horizontal(
            (pl.col("market") == m) & (pl.col("symbol") == s) & (pl.col(id_col) == lo - 1)
            for m, s, lo in ranges.select("market", "symbol", "lo").iter_rows()
        )
    )
    found = continuing.select(cols).collect()
    for market, symbol, lo, hi, n_ids in ranges.drop("first").iter_rows():
        key = (pl.col("market") == market) & (pl.col("symbol") == symbol)
        before = found.filter(key)
        if before.height == 0:
            before = _last_before(table.filter(key), recent.filter(key), cols, id_col, lo)
        if hi - lo + 1 == n_ids and (before.height == 0 or before.item(0, id_col) == lo - 1):
            continue  # the usual case: dense ids continuing the stored ones; nothing to sort
        part = frame.filter(key) if ranges.height > 1 else frame
        holes = id_gaps(part, id_col=id_col, time_col=time_col, after=before)
        for hole in holes.iter_rows(named=True):
            stored = (
                table.filter(key & pl.col(id_col).is_between(hole["start_id"], hole["end_id"]))
                .select("market", "symbol", id_col, time_col)
                .collect()
            )
            if stored.height == hole["missing"]:
                continue  # already filled
            edges = pl.DataFrame(
                {
                    "market": [market] * 2,
                    "symbol": [symbol] * 2,
                    id_col: [hole["start_id"] - 1, hole["end_id"] + 1],
                    time_col: [hole["start_time"], hole["end_time"]],
                },
                schema={
                    "market": pl.String,
                    "symbol": pl.String,
                    id_col: pl.Int64,
                    time_col: part.schema[time_col],
                },
            )
            out.append(
                id_gaps(
                    pl.concat([edges, stored.cast(edges.schema)]), id_col=id_col, time_col=time_col
                )
            )
    return pl.concat(out) if out else pl.DataFrame()


PREDECESSOR_WINDOW = timedelta(minutes=10)
"""How far back of a batch the stored row before each symbol's first new id is looked for in one
read; a symbol whose last stored trade is older is searched on its own."""


def _last_before(
    table: pl.LazyFrame, recent: pl.LazyFrame, cols: list[str], id_col: str, lo: int
) -> pl.DataFrame:
    """The stored row (of one symbol) with the largest id below ``lo``: looked for in the
    batch's first day and the day before, then in the whole table."""
    for lf in (recent, table):
        row = lf.filter(pl.col(id_col) < lo).select(cols).top_k(1, by=id_col).collect()
        if row.height:
            return row
    return row


def _around(
    lake: Lake,
    spec: TableSpec,
    frame: pl.DataFrame,
    time_col: str,
    margin: timedelta,
    extra: pl.Expr | None = None,
) -> pl.DataFrame:
    lo, hi = frame.select(
        pl.col(time_col).min().alias("lo"), pl.col(time_col).max().alias("hi")
    ).row(0)
    symbols = frame.get_column("symbol").unique().to_list()
    cond = pl.col("symbol").is_in(symbols) & pl.col(time_col).is_between(lo - margin, hi)
    if extra is not None:
        cond = cond & extra
    return lake.scan(spec).filter(cond).collect()
