"""Fill the gap ledger's open REST-repairable gaps, then prove they are gone.

* ``id`` gaps of agg_trades: ``aggTrades?fromId=`` from the first missing id to the last;
* ``id`` gaps of trades: ``historicalTrades?fromId=`` likewise;
* ``cadence`` gaps of 1-minute trade klines: ``klines`` over the missing minutes;
* ``disconnect`` rows of those tables: repaired once bronze shows no hole in their window.

Each fill is merged into bronze with ``source="rest"``; a gap is marked ``repaired`` only after
bronze is read back and the hole is found closed. Gaps wider than ``max_ids`` are left open for
the repair flow, which prefers the Vision archive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from lake.binance import history
from lake.binance.parse import parse_rest_agg_trades, parse_rest_klines
from lake.binance.rest import RestClient, RestError
from lake.capture.land import ID_TABLES
from lake.gaps import mark_repaired
from lake.quality.continuity import cadence_gaps
from lake.schemas import GAPS, KLINES
from lake.settings import Market
from lake.storage import Lake, new_batch_id


@dataclass(frozen=True)
class Gap:
    """One ledger row, typed."""

    row: dict[str, Any]
    table: str
    market: Market
    symbol: str
    kind: str
    start_id: int | None
    end_id: int | None
    start_time: datetime
    end_time: datetime
    detail: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Gap:
        market = row["market"]
        if market not in ("spot", "um"):
            raise ValueError(f"unknown market {market!r} in gap {row['gap_id']}")
        return cls(
            row,
            row["table_name"],
            market,
            row["symbol"],
            row["kind"],
            row["start_id"],
            row["end_id"],
            row["start_time"],
            row["end_time"],
            row["detail"],
        )

    @property
    def gap_id(self) -> str:
        return str(self.row["gap_id"])

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame([self.row], schema=GAPS.polars_schema())


@dataclass
class RepairResult:
    """What a repair pass did."""

    repaired: int = 0
    rows: int = 0
    left_open: int = 0
    errors: list[str] = field(default_factory=list)


def open_gaps(lake: Lake, tables: Sequence[str]) -> pl.DataFrame:
    return lake.read(
        GAPS, where=(pl.col("status") == "open") & pl.col("table_name").is_in(list(tables))
    )


async def repair_open_gaps(
    lake: Lake, client: RestClient, *, max_ids: int = 200_000, now: datetime | None = None
) -> RepairResult:
    """One pass over every open gap REST can fill."""
    result = RepairResult()
    stamp = now or datetime.now(UTC)
    tables = ["bronze.agg_trades", "bronze.trades", "bronze.klines"]
    gaps = [Gap.of(row) for row in open_gaps(lake, tables).iter_rows(named=True)]
    repaired: list[pl.DataFrame] = []

    def settle(gap: Gap, rows: int | None) -> None:
        if rows is not None and _closed(lake, gap):
            repaired.append(mark_repaired(gap.frame(), source="rest", repaired_at=stamp, rows=rows))
            result.repaired += 1
            result.rows += rows
        else:
            result.left_open += 1

    id_groups: dict[tuple[str, str, str], list[Gap]] = {}
    for gap in gaps:
        if gap.kind == "id" and gap.start_id is not None and gap.end_id is not None:
            id_groups.setdefault((gap.table, gap.market, gap.symbol), []).append(gap)
    for group in id_groups.values():
        try:
            filled = await _fill_ids(lake, client, group, max_ids=max_ids)
            for gap in group:
                settle(gap, filled.get(gap.gap_id))
        except RestError as exc:
            result.errors.append(f"{group[0].table} {group[0].symbol} ids: {exc}")
            result.left_open += len(group)
    for gap in gaps:
        if gap.kind in ("id", "disconnect"):
            continue
        try:
            settle(gap, await _fill(lake, client, gap, now=now))
        except (RestError, ValueError) as exc:
            result.errors.append(f"{gap.table} {gap.symbol} {gap.kind}: {exc}")
            result.left_open += 1
    for gap in gaps:
        if gap.kind != "disconnect":
            continue
        if gap.table == KLINES.key and (missing := _missing_minutes(lake, gap)):
            try:
                result.rows += await _fill_minutes(lake, client, gap, missing, now=now)
            except RestError as exc:
                result.errors.append(f"{gap.table} {gap.symbol} disconnect: {exc}")
        quiet = False
        if gap.table in ("bronze.agg_trades", "bronze.trades"):
            try:
                merged, quiet = await _fill_window_tail(lake, client, gap)
                result.rows += merged
            except RestError as exc:
                result.errors.append(f"{gap.table} {gap.symbol} disconnect: {exc}")
        if _window_complete(lake, gap, quiet_tail=quiet):
            repaired.append(mark_repaired(gap.frame(), source="rest", repaired_at=stamp))
            result.repaired += 1
        else:
            result.left_open += 1
    if repaired:
        lake.merge(GAPS, pl.concat(repaired), source="rest")
    return result


async def _fill_ids(
    lake: Lake, client: RestClient, group: list[Gap], *, max_ids: int
) -> dict[str, int | None]:
    """Fill the id holes of one (table, market, symbol), sharing pages between nearby holes.

    Each fetch starts at the first hole not yet covered; every later hole that the returned
    pages reach is filled from the same pages, so a run of one-id holes (dropped or malformed
    frames) costs one request per page instead of one per hole.
    """
    spec, id_col, _ = ID_TABLES[group[0].table.removeprefix("bronze.")]
    holes = sorted(group, key=lambda g: g.start_id or 0)
    out: dict[str, int | None] = {}  # gap id -> rows filled (None: left for the archive)
    i = 0
    while i < len(holes):
        first = holes[i]
        assert first.start_id is not None and first.end_id is not None
        if first.end_id - first.start_id + 1 > max_ids:
            out[first.gap_id] = None  # too wide for REST: the repair flow prefers the archive
            i += 1
            continue
        batch_id = new_batch_id("rest")
        fetched = await _rows_by_id(
            client, first, from_id=first.start_id, to_id=first.end_id, batch_id=batch_id
        )
        reach = int(fetched.get_column(id_col).max()) if fetched.height else first.end_id  # type: ignore[arg-type]
        covered = [h for h in holes[i:] if h.end_id is not None and h.end_id <= reach]
        covered = covered or [first]
        wanted = pl.lit(False)
        for h in covered:
            wanted = wanted | pl.col(id_col).is_between(h.start_id, h.end_id)
        fill = fetched.filter(wanted)
        lake.merge(spec, fill, source="rest", batch_id=batch_id)
        for h in covered:
            out[h.gap_id] = fill.filter(pl.col(id_col).is_between(h.start_id, h.end_id)).height
        i += len(covered)
    return out


async def _rows_by_id(
    client: RestClient, gap: Gap, *, from_id: int, to_id: int, batch_id: str
) -> pl.DataFrame:
    """Bronze rows of ``gap``'s trade table from ``from_id`` through at least ``to_id`` (the last
    page may run past it)."""
    market, symbol = gap.market, gap.symbol
    if gap.table == "bronze.agg_trades":
        pages = await history.agg_trades_by_id(client, market, symbol, from_id=from_id, to_id=to_id)
        return parse_rest_agg_trades(pages.bodies, market=market, symbol=symbol, batch_id=batch_id)
    return await history.trades_by_id(
        client, market, symbol, from_id=from_id, to_id=to_id, batch_id=batch_id
    )


async def _fill(lake: Lake, client: RestClient, gap: Gap, *, now: datetime | None) -> int | None:
    """Fetch the minutes a kline cadence gap lacks and merge them; None if not fillable."""
    if gap.kind == "cadence" and gap.table == KLINES.key and gap.detail == "trade 1m":
        lo = _ms(gap.start_time) + 60_000
        return await _merge_minutes(lake, client, gap, lo, _ms(gap.end_time), now=now)
    return None


async def _fill_minutes(
    lake: Lake, client: RestClient, gap: Gap, missing: list[datetime], *, now: datetime | None
) -> int:
    lo, hi = _ms(missing[0]), _ms(missing[-1]) + 60_000
    return await _merge_minutes(lake, client, gap, lo, hi, now=now)


async def _merge_minutes(
    lake: Lake, client: RestClient, gap: Gap, lo: int, hi: int, *, now: datetime | None
) -> int:
    """Closed 1-minute trade klines with open time in ``[lo, hi)`` from REST, merged."""
    batch_id = new_batch_id("rest")
    pages = await history.klines_between(client, gap.market, "trade", gap.symbol, lo, hi)
    frame = parse_rest_klines(
        pages.bodies,
        market=gap.market,
        kind="trade",
        interval="1m",
        symbol=gap.symbol,
        batch_id=batch_id,
        now_ms=_ms(now or datetime.now(UTC)),
    )
    lake.merge(KLINES, frame, source="rest", batch_id=batch_id)
    return frame.height


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _closed(lake: Lake, gap: Gap) -> bool:
    """Read bronze back: is the hole really gone?"""
    key = (pl.col("market") == gap.market) & (pl.col("symbol") == gap.symbol)
    if gap.kind == "id" and gap.start_id is not None and gap.end_id is not None:
        spec, id_col, _ = ID_TABLES[gap.table.removeprefix("bronze.")]
        start, end = gap.start_id, gap.end_id
        ids = (
            lake.scan(spec)
            .filter(key & pl.col(id_col).is_between(start, end))
            .select(pl.col(id_col).n_unique())
            .collect()
            .item()
        )
        return bool(ids == end - start + 1)
    lo, hi = gap.start_time, gap.end_time
    stored = (
        lake.scan(KLINES)
        .filter(key & (pl.col("kind") == "trade") & (pl.col("interval") == "1m"))
        .filter(pl.col("open_time").is_between(lo, hi))
        .collect()
    )
    return cadence_gaps(stored, time_col="open_time", every=timedelta(minutes=1)).height == 0


async def _fill_window_tail(
    lake: Lake, client: RestClient, gap: Gap, *, pages: int = 20
) -> tuple[int, bool]:
    """When bronze holds no row after a disconnect's window (the run ended soon after it), ask
    REST for the ids after the last stored one: the rows inside the window are merged, and the
    first row beyond it is stored too, so :func:`_window_complete` can decide. An empty answer
    means no trade happened since, which also settles it (nothing of the window is missing).

    Returns the rows merged and whether REST confirmed that no trade followed the last stored row.
    """
    spec, id_col, time_col = ID_TABLES[gap.table.removeprefix("bronze.")]
    key = (pl.col("market") == gap.market) & (pl.col("symbol") == gap.symbol)
    scan = lake.scan(spec).filter(key)
    if scan.filter(pl.col(time_col) > gap.end_time).select(pl.len()).collect().item():
        return 0, False  # a row after the window is stored: nothing to ask
    last = scan.filter(pl.col(time_col) < gap.start_time).select(pl.col(id_col).max()).collect()
    if last.item() is None:
        return 0, False
    cursor, merged = int(last.item()) + 1, 0
    for _ in range(pages):
        batch_id = new_batch_id("rest")
        rows = await _rows_by_id(client, gap, from_id=cursor, to_id=cursor, batch_id=batch_id)
        if rows.height == 0:
            return merged, True  # nothing traded since the rows merged so far

        beyond = rows.filter(pl.col(time_col) > gap.end_time)
        keep = pl.concat([rows.filter(pl.col(time_col) <= gap.end_time), beyond.head(1)])
        lake.merge(spec, keep, source="rest", batch_id=batch_id)
        merged += keep.height
        if beyond.height:
            return merged, False
        cursor = int(rows.get_column(id_col).max()) + 1  # type: ignore[arg-type]
    return merged, False


def _window_complete(lake: Lake, gap: Gap, *, quiet_tail: bool = False) -> bool:
    """Does bronze hold everything across a disconnect's window?

    Ids: every id between the last row before the window and the first row after it is present
    (unknowable, so False, until a row after the window exists or REST confirmed that no trade
    followed the last stored row: see :func:`_fill_window_tail`). Klines: every 1-minute bar that
    closed inside the window is present.
    """
    key = (pl.col("market") == gap.market) & (pl.col("symbol") == gap.symbol)
    lo, hi = gap.start_time, gap.end_time
    if gap.table in ("bronze.agg_trades", "bronze.trades"):
        spec, id_col, time_col = ID_TABLES[gap.table.removeprefix("bronze.")]
        scan = lake.scan(spec).filter(key)
        before = scan.filter(pl.col(time_col) < lo).select(pl.col(id_col).max()).collect().item()
        after = scan.filter(pl.col(time_col) > hi).select(pl.col(id_col).min()).collect().item()
        if before is not None and after is None and quiet_tail:
            # REST confirmed nothing traded after the stored rows: ids from `before` on must be
            # contiguous up to the last stored one
            tail = scan.filter(pl.col(id_col) >= before).select(
                pl.col(id_col).n_unique().alias("n"), pl.col(id_col).max().alias("top")
            )
            n, top = tail.collect().row(0)
            return bool(n == top - before + 1)
        if before is None or after is None:
            return False
        present = (
            scan.filter(pl.col(id_col).is_between(before, after))
            .select(pl.col(id_col).n_unique())
            .collect()
            .item()
        )
        return bool(present == after - before + 1)
    if gap.table == KLINES.key:
        return not _missing_minutes(lake, gap)
    return False


def _missing_minutes(lake: Lake, gap: Gap) -> list[datetime]:
    """Open times of the 1-minute trade bars that closed inside the gap's window but are absent."""
    minute = timedelta(minutes=1)
    first = (gap.start_time - minute).replace(second=0, microsecond=0) + minute
    expected = []
    t = first
    while t + minute <= gap.end_time:
        expected.append(t)
        t += minute
    if not expected:
        return []
    key = (pl.col("market") == gap.market) & (pl.col("symbol") == gap.symbol)
    stored = set(
        lake.scan(KLINES)
        .filter(key & (pl.col("kind") == "trade") & (pl.col("interval") == "1m"))
        .filter(pl.col("open_time").is_between(expected[0], expected[-1]))
        .select("open_time")
        .collect()
        .get_column("open_time")
        .to_list()
    )
    return [t for t in expected if t not in stored]
