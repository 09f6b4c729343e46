"""(I/O) Trade-id repairs: id holes, and windows after the last trade held (REST, insert-only).

Every fill keeps only REST rows with the hole's ids whose time lies inside the window the
exchange reported; see :mod:`lake.capture.repair`.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from lake.binance import history
from lake.binance.parse import parse_rest_agg_trades
from lake.binance.rest import RestClient
from lake.capture.continuity_scan import ID_TABLES
from lake.capture.repair_model import Gap, Outcome, RequestBudget, iso
from lake.schemas import TableSpec
from lake.storage import Lake, new_batch_id


async def fill_id_holes(
    lake: Lake, client: RestClient, group: list[Gap], *, max_ids: int, budget: RequestBudget
) -> dict[str, Outcome]:
    """Fill the id holes of one (table, market, symbol), sharing pages between nearby holes.

    Each fetch starts at the first hole not yet covered; every later hole that the returned
    pages reach is filled from the same pages, so a run of one-id holes (dropped or malformed
    frames) costs one request per page instead of one per hole.
    """
    spec, id_col, time_col = ID_TABLES[group[0].table.removeprefix("bronze.")]
    holes = sorted(group, key=lambda g: g.start_id or 0)
    out: dict[str, Outcome] = {}
    i = 0
    while i < len(holes):
        first = holes[i]
        assert first.start_id is not None and first.end_id is not None
        if first.end_id - first.start_id + 1 > max_ids or not budget.left():
            i += 1  # too wide for REST (the repair flow prefers the archive), or no budget
            continue
        fetched = await _rows_by_id(client, first, from_id=first.start_id, to_id=first.end_id)
        reach = int(fetched.get_column(id_col).max()) if fetched.height else first.end_id  # type: ignore[arg-type]
        covered = [h for h in holes[i:] if h.end_id is not None and h.end_id <= reach] or [first]
        for hole in covered:
            assert hole.start_id is not None and hole.end_id is not None
            rows = fetched.filter(pl.col(id_col).is_between(hole.start_id, hole.end_id))
            out[hole.gap_id] = _fill_window(
                lake,
                spec,
                hole,
                rows,
                time_col=time_col,
                lo=hole.start_time,
                hi=hole.end_time,
                ids=(hole.start_id, hole.end_id),
            )
        i += len(covered)
    return out


def _fill_window(
    lake: Lake,
    spec: TableSpec,
    gap: Gap,
    rows: pl.DataFrame,
    *,
    time_col: str,
    lo: datetime,
    hi: datetime,
    ids: tuple[int, int],
) -> Outcome:
    """Insert the rows of ``rows`` whose time lies in ``[lo, hi]``; then judge ids ``ids``."""
    _, id_col, _ = ID_TABLES[spec.name]
    inside = rows.filter(pl.col(time_col).is_between(lo, hi))
    refused = rows.height - inside.height
    if inside.height:
        lake.merge(spec, inside, source="rest", batch_id=new_batch_id("rest"), update="never")
    missing = _missing_ids(lake, spec, gap, id_col, *ids)
    if refused:
        return Outcome(
            "unrepairable",
            inside.height,
            f"refused {refused} REST row(s) for ids {ids[0]}..{ids[1]} whose time lies "
            f"outside {iso(lo)}..{iso(hi)}: the exchange's history disagrees with the capture",
            refused,
        )
    if missing:
        return Outcome(
            "unrepairable",
            inside.height,
            f"the exchange has no rows for {missing} of ids {ids[0]}..{ids[1]}",
        )
    return Outcome("repaired", inside.height)


def _missing_ids(lake: Lake, spec: TableSpec, gap: Gap, id_col: str, lo: int, hi: int) -> int:
    """How many ids in ``lo..hi`` bronze lacks for ``gap``'s symbol."""
    if hi < lo:
        return 0
    present = (
        lake.scan(spec)
        .filter(gap.key() & pl.col(id_col).is_between(lo, hi))
        .select(pl.col(id_col).n_unique())
        .collect()
        .item()
    )
    return hi - lo + 1 - int(present)


async def _rows_by_id(client: RestClient, gap: Gap, *, from_id: int, to_id: int) -> pl.DataFrame:
    """Bronze rows of ``gap``'s trade table from ``from_id`` through at least ``to_id`` (the last
    page may run past it)."""
    market, symbol, batch_id = gap.market, gap.symbol, new_batch_id("rest")
    if gap.table == "bronze.agg_trades":
        pages = await history.agg_trades_by_id(client, market, symbol, from_id=from_id, to_id=to_id)
        return parse_rest_agg_trades(pages.bodies, market=market, symbol=symbol, batch_id=batch_id)
    return await history.trades_by_id(
        client, market, symbol, from_id=from_id, to_id=to_id, batch_id=batch_id
    )


async def settle_window(lake: Lake, client: RestClient, gap: Gap, budget: RequestBudget) -> Outcome:
    """A break in a trade stream: every trade between the last id held (``start_id - 1``, at
    ``start_time``) and the exchange time coverage resumed (``end_time``) must be stored.

    When bronze holds a row beyond the window, the ids up to it must be contiguous (holes are
    filled by id, bounded by the two rows' times). Otherwise the ids after the last one held
    are asked for a page at a time until a row beyond the window comes back, or none does
    (nothing traded since); only rows inside the window are written.
    """
    spec, id_col, time_col = ID_TABLES[gap.table.removeprefix("bronze.")]
    start_id = gap.start_id
    if start_id is None:  # the last frame held did not decode: the last stored row before then
        held = (
            lake.scan(spec)
            .filter(gap.key() & (pl.col(time_col) <= gap.start_time))
            .select(pl.col(id_col).max())
            .collect()
            .item()
        )
        if held is None:
            return Outcome("unrepairable", 0, "no trade was held before the break")
        start_id = int(held) + 1
        gap = Gap.of({**gap.row, "start_id": start_id})
    lo, hi, before = gap.start_time, gap.end_time, start_id - 1
    scan = lake.scan(spec).filter(gap.key() & (pl.col(id_col) >= start_id))
    after = (
        scan.filter(pl.col(time_col) > hi)
        .select(pl.col(id_col), pl.col(time_col))
        .bottom_k(1, by=id_col)
        .collect()
    )
    if after.height:  # the stream resumed: the ids up to its first row beyond the window
        first_id, first_time = after.row(0)
        if not _missing_ids(lake, spec, gap, id_col, start_id, first_id - 1):
            return Outcome("repaired")
        rows = await _rows_by_id(client, gap, from_id=start_id, to_id=first_id - 1)
        rows = rows.filter(pl.col(id_col).is_between(start_id, first_id - 1))
        return _fill_window(
            lake,
            spec,
            gap,
            rows,
            time_col=time_col,
            lo=lo,
            hi=first_time,
            ids=(start_id, first_id - 1),
        )
    cursor = _contiguous_top(lake, spec, gap, id_col, before) + 1
    written = refused = 0
    while True:
        if not budget.left():
            return Outcome("open", written)
        rows = await _rows_by_id(client, gap, from_id=cursor, to_id=cursor)
        if rows.height == 0:
            break  # nothing traded after the rows held: the window is complete
        inside = rows.filter(pl.col(time_col).is_between(lo, hi))
        refused += rows.filter(pl.col(time_col) < lo).height
        if inside.height:
            lake.merge(spec, inside, source="rest", batch_id=new_batch_id("rest"), update="never")
            written += inside.height
        if refused or rows.filter(pl.col(time_col) > hi).height:
            break  # the exchange disagrees, or the first trade after the window has come
        cursor = int(rows.get_column(id_col).max()) + 1  # type: ignore[arg-type]
    top = _contiguous_top(lake, spec, gap, id_col, before)
    stored_top = scan.filter(pl.col(time_col) <= hi).select(pl.col(id_col).max()).collect().item()
    if refused:
        return Outcome(
            "unrepairable",
            written,
            f"refused {refused} REST row(s) after id {before} whose time lies before the last "
            f"captured trade ({iso(lo)}): the exchange's history disagrees with the capture",
            refused,
        )
    if stored_top is not None and top < stored_top:
        return Outcome(
            "unrepairable", written, f"the exchange has no rows for ids {top + 1}..{stored_top}"
        )
    return Outcome("repaired", written)


def _contiguous_top(lake: Lake, spec: TableSpec, gap: Gap, id_col: str, start: int) -> int:
    """The largest id such that every id from ``start`` to it is stored (``start`` itself
    counts as held)."""
    ids = (
        lake.scan(spec)
        .filter(gap.key() & (pl.col(id_col) > start))
        .select(pl.col(id_col).unique().sort())
        .collect()
        .get_column(id_col)
    )
    if ids.len() == 0:
        return start
    expected = pl.int_range(start + 1, start + 1 + ids.len(), eager=True)
    breaks = (ids != expected).arg_true()
    return start + (int(breaks[0]) if breaks.len() else ids.len())
