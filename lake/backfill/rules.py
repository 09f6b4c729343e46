"""The planning rules for one series, month by month and day by day (pure).

See :mod:`lake.backfill.plan` for the rules in words.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from itertools import groupby

from lake.backfill.catalog import MONTHLY_MAX_BYTES, Series, days, month_end, month_start
from lake.backfill.model import Gap, Holding, Listed, Missing, PlanItem, SeriesListing
from lake.backfill.request import BackfillRequest
from lake.binance.vision_paths import VISION_DATASETS, Period


class SeriesRules:
    """The rules of the module docstring for one series."""

    def __init__(
        self,
        series: Series,
        request: BackfillRequest,
        listing: SeriesListing,
        holdings: Mapping[str, Holding],
        today: date,
    ) -> None:
        self.s = series
        self.req = request
        self.listing = listing
        self.holdings = holdings
        self.today = today
        self.periods = series.periods()
        self.use_vision = request.source != "rest"
        self.items: list[PlanItem] = []
        self.held = 0
        self.missing: list[Missing] = []
        self.no_source: list[tuple[date, str]] = []

    def run(self) -> None:
        wanted = days(self.req.start, self.req.end)
        for _, group in groupby(wanted, key=month_start):
            month = list(group)
            if not self._monthly(month):
                for day in month:
                    self._daily(day)

    def _holding(self, key: str) -> Holding | None:
        return self.holdings.get(key)

    def _vision_held(self, day: date) -> bool:
        d = self._holding(self.s.key("daily", day)) if "daily" in self.periods else None
        if d is not None and d.matches(self.listing.daily.get(day)):
            return True
        if "monthly" not in self.periods:
            return False
        first = month_start(day)
        m = self._holding(self.s.key("monthly", first))
        return m is not None and m.matches(self.listing.monthly.get(first))

    def _rest_held(self, day: date) -> bool:
        h = self._holding(self.s.rest_key(day))
        return h is not None and h.status == "ingested"

    def _monthly(self, month: list[date]) -> bool:
        """Plan the month as one monthly file if the rules say so; True when it is done."""
        first = month_start(month[0])
        if not self.use_vision or "monthly" not in self.periods:
            return False
        if not self.s.in_vision("monthly", first):
            return False
        listed = self.listing.monthly.get(first)
        whole = first >= self.req.start and month_end(first) <= self.req.end
        if listed is None or not (whole or "daily" not in self.periods):
            return False
        need = [d for d in month if not self._vision_held(d)]
        if not need:
            self.held += len(month)
            return True
        dailies = [self.listing.daily.get(d) for d in need]
        daily_bytes = sum(f.size for f in dailies if f is not None)
        if "daily" in self.periods and None not in dailies:
            if daily_bytes < listed.size:
                return False  # the daily files still needed are the cheaper download
            if listed.size > MONTHLY_MAX_BYTES:
                return False  # a file is parsed whole in memory: a month of trades is too big
        key = self.s.key("monthly", first)
        over_rest = any(self._rest_held(d) for d in month)
        self.held += len(month) - len(need)
        self._vision_item("monthly", first, month_end(first), key, listed, over_rest)
        return True

    def _daily(self, day: date) -> None:
        if self._vision_held(day):
            self.held += 1
            return
        key = self.s.key("daily", day)
        listed = self.listing.daily.get(day) if "daily" in self.periods else None
        if self.use_vision and listed is not None:
            self._vision_item("daily", day, day, key, listed, self._rest_held(day))
            return
        is_missing = self.use_vision and self._published_past(day)
        can_rest = self.req.source != "vision" and self.s.rest_serves(day, self.today)
        if is_missing:
            fallback = "REST" if can_rest or self._rest_held(day) else "no other source"
            self.missing.append(Missing(self.s, day, key, fallback))
        if self._rest_held(day):
            self.held += 1
        elif can_rest:
            reason = (
                "--source rest"
                if not self.use_vision
                else "missing from the archive"
                if is_missing
                else "not in the archive yet"
            )
            rkey = self.s.rest_key(day)
            prev = self._holding(rkey)
            if prev is not None and prev.status not in ("ingested", "partial"):
                reason = f"retry: {prev.status}"
            self.items.append(PlanItem(self.s, "rest", "daily", day, day, rkey, reason=reason))
        else:
            self.no_source.append((day, self._why_none(day, is_missing)))

    def _vision_item(
        self, period: Period, first: date, last: date, key: str, listed: Listed, over_rest: bool
    ) -> None:
        prev = self._holding(key)
        changed = prev is not None and prev.held  # held, yet not matching: the file changed
        self.items.append(
            PlanItem(
                self.s,
                "vision",
                period,
                first,
                last,
                key,
                mode="replace" if changed or over_rest else "merge",
                reason=_reason(prev, changed, over_rest),
                size=listed.size,
                last_modified=listed.last_modified,
                previous_sha256=prev.sha256 if prev else None,
                previous_last_modified=prev.last_modified if prev else None,
            )
        )

    def _published_past(self, day: date) -> bool:
        """Whether the archive has moved past ``day``: a later daily file or its month's file."""
        if "daily" not in self.periods or not self.s.in_vision("daily", day):
            return False
        if month_start(day) in self.listing.monthly:
            return True
        return any(d > day for d in self.listing.daily)

    def _why_none(self, day: date, is_missing: bool) -> str:
        ds = self.s.dataset
        last = VISION_DATASETS[ds].last_day
        if self.req.source == "rest":
            if self.s.rest_kind() is None:
                return f"no REST route for {ds}"
            return "REST serves only the last 30 days"
        if last is not None and day > last:
            return f"the archive ended {last}; no REST route for {ds}"
        if is_missing:
            return "missing from the archive"
        if self.req.source == "vision":
            return "not in the archive yet (--source vision)"
        if self.s.rest_kind() is None:
            return f"not in the archive yet; no REST route for {ds}"
        return "not in the archive; REST serves only the last 30 days"


def _reason(prev: Holding | None, changed: bool, over_rest: bool) -> str:
    if changed:
        return "changed"
    if over_rest:
        return "supersedes REST rows"
    if prev is not None:
        return f"retry: {prev.status}"
    return "new"


def merge_gaps(series: Series, days_why: list[tuple[date, str]]) -> list[Gap]:
    gaps: list[Gap] = []
    for day, why in days_why:
        last = gaps[-1] if gaps else None
        if last is not None and last.reason == why and (day - last.last_day).days == 1:
            gaps[-1] = Gap(series, last.first_day, day, why)
        else:
            gaps.append(Gap(series, day, day, why))
    return gaps
