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
from datetime import UTC, datetime
from typing import Any

import polars as pl

from lake.binance.rest import RestClient, RestError
from lake.capture.repair_ids import fill_id_holes, settle_window
from lake.capture.repair_klines import fill_minutes
from lake.capture.repair_model import TRADE_TABLES, WINDOW_KINDS, Gap, Outcome, RequestBudget
from lake.gaps import mark_repaired, mark_unrepairable
from lake.schemas import GAPS, KLINES
from lake.storage import Lake

__all__ = ["Gap", "Outcome", "RepairResult", "open_gaps", "repair_open_gaps"]


@dataclass
class RepairResult:
    """What a repair pass did."""

    repaired: int = 0
    rows: int = 0
    left_open: int = 0
    unrepairable: int = 0
    refused_rows: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)  # what REST could not answer
    notes: list[str] = field(default_factory=list)  # e.g. the request budget ran out

    def as_dict(self) -> dict[str, Any]:
        return {
            "repaired": self.repaired,
            "rows": self.rows,
            "left_open": self.left_open,
            "unrepairable": self.unrepairable,
            "refused_rows": self.refused_rows,
            "requests": self.requests,
            "errors": list(self.errors),
            "notes": list(self.notes),
        }


def open_gaps(lake: Lake, tables: Sequence[str]) -> pl.DataFrame:
    return lake.read(
        GAPS, where=(pl.col("status") == "open") & pl.col("table_name").is_in(list(tables))
    )


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
    budget = RequestBudget(client, max_requests)
    outcomes: dict[str, Outcome] = {}

    id_groups: dict[tuple[str, str, str], list[Gap]] = {}
    for gap in gaps:
        if gap.kind == "id" and gap.start_id is not None and gap.end_id is not None:
            id_groups.setdefault((gap.table, gap.market, gap.symbol), []).append(gap)
    for group in id_groups.values():
        try:
            outcomes |= await fill_id_holes(lake, client, group, max_ids=max_ids, budget=budget)
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
                outcomes[gap.gap_id] = await fill_minutes(lake, client, gap, now=stamp)
            elif gap.table in TRADE_TABLES and gap.kind in WINDOW_KINDS:
                outcomes[gap.gap_id] = await settle_window(lake, client, gap, budget)
        except RestError as exc:
            result.errors.append(f"{gap.table} {gap.symbol} {gap.kind}: {exc}")
    if gaps and not budget.left():
        result.notes.append(
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
