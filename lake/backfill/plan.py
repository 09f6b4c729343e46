"""The planner: the cheapest source for every (dataset, symbol, day) of a request (pure).

Rules, per series and month of the request:

1. A day is **held** when ``ops.sources`` records its daily file, or its month's monthly file, as
   ingested with the size and ``LastModified`` the archive lists now, or records the REST rows of
   a complete day (and no archive file has appeared for it since). Held days are skipped.
2. A **monthly** file is used when the whole month is wanted (or the dataset is monthly only,
   like fundingRate) and the archive lists it, unless the daily files still needed are smaller in
   bytes than it, or it is larger than :data:`~lake.backfill.catalog.MONTHLY_MAX_BYTES` (files
   are parsed whole in memory).
3. Otherwise the listed **daily** files are used.
4. Days the archive does not hold go to **REST** when a route serves them (not bookTicker or
   liquidations; metrics only for the last 30 days), else they are reported as having no source.
   Days before the symbol's listing (its first daily kline) are not planned at all: they are
   reported as ``before listing``.
   A daily file absent while later days are listed is **missing** (recorded in ``ops.sources``).
5. A file whose listed size or ``LastModified`` differs from what was ingested, and a file that
   supersedes REST rows, is planned with ``mode="replace"``: its rows replace the series' rows
   of its period. Files recorded with a failed status are simply tried again.

``--source vision`` never plans REST; ``--source rest`` never lists the archive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from itertools import groupby

from lake.backfill.catalog import Series, day_ms
from lake.backfill.model import Gap, Holding, Missing, Mode, PlanItem, SeriesListing
from lake.backfill.request import BackfillRequest
from lake.backfill.rules import SeriesRules, merge_gaps
from lake.settings import Market

__all__ = [
    "Gap",
    "Holding",
    "Missing",
    "Mode",
    "Plan",
    "PlanItem",
    "SeriesListing",
    "day_is_over",
    "plan_backfill",
]


@dataclass(frozen=True)
class Plan:
    request: BackfillRequest
    now_ms: int
    items: tuple[PlanItem, ...]
    held: Mapping[Series, int]
    missing: tuple[Missing, ...] = ()
    gaps: tuple[Gap, ...] = ()

    @property
    def vision_items(self) -> list[PlanItem]:
        return [i for i in self.items if i.source == "vision"]

    @property
    def rest_items(self) -> list[PlanItem]:
        return [i for i in self.items if i.source == "rest"]

    @property
    def bytes(self) -> int:
        return sum(i.size or 0 for i in self.items)

    def rows(self) -> list[dict[str, object]]:
        """The plan as a table: one row per series and action, with counts, days and bytes."""
        out: list[dict[str, object]] = []
        for s in self.request.series:
            items = [i for i in self.items if i.series == s]
            for action, group in groupby(items, key=_action):
                chunk = list(group)
                lo, hi = chunk[0].first_day, chunk[-1].last_day
                out.append(_row(s, action, len(chunk), lo, hi, sum(i.size or 0 for i in chunk)))
            if self.held.get(s):
                out.append(_row(s, "held", self.held[s], None, None, 0))
            for gap in (g for g in self.gaps if g.series == s):
                n = (gap.last_day - gap.first_day).days + 1
                kind = "none" if gap.kind == "no source" else gap.kind
                action = f"{kind}: {gap.reason}"
                out.append(_row(s, action, n, gap.first_day, gap.last_day, 0))
        return out


def _action(item: PlanItem) -> str:
    return f"rest ({item.reason})" if item.source == "rest" else f"vision {item.period}"


Row = dict[str, object]


def _row(s: Series, action: str, n: int, lo: date | None, hi: date | None, size: int) -> Row:
    return {
        "market": s.market,
        "dataset": s.dataset,
        "symbol": s.symbol,
        "action": action,
        "count": n,
        "first": lo,
        "last": hi,
        "bytes": size,
    }


def plan_backfill(
    request: BackfillRequest,
    *,
    listings: Mapping[Series, SeriesListing],
    holdings: Mapping[str, Holding],
    now_ms: int,
    listed: Mapping[tuple[Market, str], date] | None = None,
) -> Plan:
    """Plan ``request`` given the archive listing, ``ops.sources``, the exchange's time and the
    day each (market, symbol) was listed (when known)."""
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    items: list[PlanItem] = []
    held: dict[Series, int] = {}
    missing: list[Missing] = []
    gaps: list[Gap] = []
    for series in request.series:
        first = (listed or {}).get((series.market, series.symbol))
        wanted = request
        if first is not None and first > request.start:
            last = min(first - timedelta(days=1), request.end)
            gaps.append(Gap(series, request.start, last, f"listed {first}", "before listing"))
            if first > request.end:
                held[series] = 0
                continue
            wanted = replace(request, start=first)
        walk = SeriesRules(series, wanted, listings.get(series, SeriesListing()), holdings, today)
        walk.run()
        items += walk.items
        held[series] = walk.held
        missing += walk.missing
        gaps += merge_gaps(series, walk.no_source)
    return Plan(request, now_ms, tuple(items), held, tuple(missing), tuple(gaps))


def day_is_over(day: date, now_ms: int) -> bool:
    """Whether the UTC day has ended at ``now_ms`` (its REST rows are then complete)."""
    return day_ms(day) + 86_400_000 <= now_ms
