"""Fill the gap ledger's open REST-repairable gaps, bounded by what the exchange reported.

* ``id`` gaps of agg_trades / trades: ids ``start_id..end_id`` from ``aggTrades`` /
  ``historicalTrades?fromId=``, accepted only when their times lie between the two stored rows
  around the hole;
* ``cadence`` gaps of 1-minute trade klines: ``klines`` over the missing minutes;
* ``disconnect`` rows (a connection broke): the window runs from the last frame the collector
  held (its id and exchange time) to the exchange time coverage resumed. Trade tables: the ids
  after the last one held, up to the first row beyond the window (or until REST says no more
  traded). Klines: the bars that closed inside the window. ``damaged`` rows (frames lost in a
  damaged landing segment) are the same kind of window and are filled the same way.

Nothing outside the hole is written: a fill is insert-only, and a row REST returns for the hole
whose time lies outside the window is refused, which marks the gap ``unrepairable`` with the
reason (an exchange whose history disagrees with what was captured, e.g. a replay whose REST
serves another market). A gap the exchange cannot close (it has no rows for the missing ids or
minutes) is ``unrepairable`` too, so later passes do not ask again. A gap is ``repaired`` only
after bronze is read back and the hole is found closed. A pass spends at most ``max_requests``
REST requests; what it could not reach stays ``open`` for the next pass, and gaps wider than
``max_ids`` stay open for the repair flow, which prefers the Vision archive.
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
from lake.gaps import mark_repaired, mark_unrepairable
from lake.schemas import GAPS, KLINES, TableSpec
from lake.settings import Market
from lake.storage import Lake, new_batch_id

TRADE_TABLES = ("bronze.agg_trades", "bronze.trades")
WINDOW_KINDS = ("disconnect", "damaged")
"""Gaps that are windows of exchange time after the last frame held: a break in coverage, and
frames lost in a damaged landing segment."""
MINUTE = timedelta(minutes=1)


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

    def key(self) -> pl.Expr:
        return (pl.col("market") == self.market) & (pl.col("symbol") == self.symbol)


@dataclass(frozen=True)
class Outcome:
    """What became of one gap in a pass: ``repaired``, ``unrepairable`` (with the reason) or
    ``open`` (left for a later pass or the archive)."""

    status: str
    rows: int = 0
    reason: str = ""
    refused: int = 0


@dataclass
class RepairResult:
    """What a repair pass did."""

    repaired: int = 0
    rows: int = 0
    left_open: int = 0
    unrepairable: int = 0
    refused_rows: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "repaired": self.repaired,
            "rows": self.rows,
            "left_open": self.left_open,
            "unrepairable": self.unrepairable,
            "refused_rows": self.refused_rows,
            "requests": self.requests,
            "errors": list(self.errors),
        }


def open_gaps(lake: Lake, tables: Sequence[str]) -> pl.DataFrame:
    return lake.read(
        GAPS, where=(pl.col("status") == "open") & pl.col("table_name").is_in(list(tables))
    )


class _Budget:
    """REST requests one pass may still send."""

    def __init__(self, client: RestClient, max_requests: int) -> None:
        self.client, self.start, self.max = client, client.requests, max_requests

    @property
    def spent(self) -> int:
        return self.client.requests - self.start

    def left(self) -> bool:
        return self.spent < self.max


async def repair_open_gaps(
    lake: Lake,
    client: RestClient,
    *,
    max_ids: int = 200_000,
    max_requests: int = 400,
    now: datetime | None = None,
) -> RepairResult:
    """One pass over every open gap REST can fill; see the module docstring."""
    result = RepairResult()
    stamp = now or datetime.now(UTC)
    gaps = [Gap.of(r) for r in open_gaps(lake, [*TRADE_TABLES, KLINES.key]).iter_rows(named=True)]
    budget = _Budget(client, max_requests)
    outcomes: dict[str, Outcome] = {}

    id_groups: dict[tuple[str, str, str], list[Gap]] = {}
    for gap in gaps:
        if gap.kind == "id" and gap.start_id is not None and gap.end_id is not None:
            id_groups.setdefault((gap.table, gap.market, gap.symbol), []).append(gap)
    for group in id_groups.values():
        try:
            outcomes |= await _fill_id_holes(lake, client, group, max_ids=max_ids, budget=budget)
        except RestError as exc:
            result.errors.append(f"{group[0].table} {group[0].symbol} ids: {exc}")
    for gap in gaps:
        if gap.kind == "id":
            continue
        try:
            if not budget.left():
                continue
            if gap.table == KLINES.key and gap.kind in ("cadence", *WINDOW_KINDS):
                if gap.kind == "cadence" and gap.detail != "trade 1m":
                    continue
                outcomes[gap.gap_id] = await _fill_minutes(lake, client, gap, now=stamp)
            elif gap.table in TRADE_TABLES and gap.kind in WINDOW_KINDS:
                outcomes[gap.gap_id] = await _settle_disconnect(lake, client, gap, budget)
        except RestError as exc:
            result.errors.append(f"{gap.table} {gap.symbol} {gap.kind}: {exc}")
    if gaps and not budget.left():
        result.errors.append(
            f"request budget of {max_requests} spent; the rest is left for the next pass"
        )

    settled: list[pl.DataFrame] = []
    for gap in gaps:
        out = outcomes.get(gap.gap_id, Outcome("open"))
        result.rows += out.rows
        if out.status == "repaired":
            settled.append(
                mark_repaired(gap.frame(), source="rest", repaired_at=stamp, rows=out.rows)
            )
            result.repaired += 1
        elif out.status == "unrepairable":
            settled.append(
                mark_unrepairable(gap.frame(), reason=out.reason, at=stamp, rows=out.rows)
            )
            result.unrepairable += 1
            result.refused_rows += out.refused
        else:
            result.left_open += 1
    if settled:
        lake.merge(GAPS, pl.concat(settled), source="rest")
    result.requests = budget.spent
    return result


# --- trade ids --------------------------------------------------------------------------------


async def _fill_id_holes(
    lake: Lake, client: RestClient, group: list[Gap], *, max_ids: int, budget: _Budget
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
            f"outside {_iso(lo)}..{_iso(hi)}: the exchange's history disagrees with the capture",
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


async def _settle_disconnect(lake: Lake, client: RestClient, gap: Gap, budget: _Budget) -> Outcome:
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
            f"captured trade ({_iso(lo)}): the exchange's history disagrees with the capture",
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


# --- klines -----------------------------------------------------------------------------------


async def _fill_minutes(lake: Lake, client: RestClient, gap: Gap, *, now: datetime) -> Outcome:
    """Fetch the 1-minute trade bars the gap lacks and insert those inside its window."""
    missing = _missing_minutes(lake, gap)
    if not missing:
        return Outcome("repaired")
    lo, hi = missing[0], missing[-1] + MINUTE
    pages = await history.klines_between(client, gap.market, "trade", gap.symbol, _ms(lo), _ms(hi))
    frame = parse_rest_klines(
        pages.bodies,
        market=gap.market,
        kind="trade",
        interval="1m",
        symbol=gap.symbol,
        batch_id=new_batch_id("rest"),
        now_ms=_ms(now),
    ).filter(pl.col("open_time").is_in(missing))
    if frame.height:
        lake.merge(KLINES, frame, source="rest", batch_id=str(frame["batch_id"][0]), update="never")
    still = _missing_minutes(lake, gap)
    if still:
        return Outcome(
            "unrepairable",
            frame.height,
            f"the exchange has no 1m bars for {len(still)} minute(s) from {_iso(still[0])}",
        )
    return Outcome("repaired", frame.height)


def _missing_minutes(lake: Lake, gap: Gap) -> list[datetime]:
    """Open times of the 1-minute trade bars the gap's window should hold but bronze lacks.

    A ``cadence`` gap lies between two stored bars: the minutes strictly between them. A
    ``disconnect`` window holds the bars that closed inside it.
    """
    if gap.kind == "cadence":
        first, last_close = gap.start_time + MINUTE, gap.end_time
    else:
        first = (gap.start_time - MINUTE).replace(second=0, microsecond=0) + MINUTE
        last_close = gap.end_time
    expected = []
    t = first
    while t + MINUTE <= last_close:
        expected.append(t)
        t += MINUTE
    if not expected:
        return []
    stored = set(
        lake.scan(KLINES)
        .filter(gap.key() & (pl.col("kind") == "trade") & (pl.col("interval") == "1m"))
        .filter(pl.col("open_time").is_between(expected[0], expected[-1]))
        .select("open_time")
        .collect()
        .get_column("open_time")
        .to_list()
    )
    return [t for t in expected if t not in stored]


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
