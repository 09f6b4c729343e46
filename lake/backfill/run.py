"""A backfill run: plan (:mod:`.inventory`), then fetch (I/O).

:func:`execute` runs the items with bounded concurrency — downloads
(``backfill.max_concurrent_downloads``), parsing and writing (two threads), and REST days (a few
at a time, under the one weight budget) — reporting each outcome to a :class:`Progress`. The CLI
drives both; the Prefect flow runs one task per item through :func:`ingest_one`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lake.backfill.ingest import Context, ingest, missing_outcome
from lake.backfill.inventory import make_plan
from lake.backfill.model import Gap, PlanItem
from lake.backfill.plan import Plan
from lake.backfill.provenance import Outcome
from lake.backfill.request import BackfillRequest
from lake.backfill.write import ledger_for
from lake.binance.endpoints import Endpoints
from lake.binance.rest import RestClient
from lake.binance.vision import VisionClient
from lake.settings import Market
from lake.storage import Lake
from lake.workdir import scratch

__all__ = [
    "NoProgress",
    "Options",
    "Progress",
    "Summary",
    "calibrate",
    "execute",
    "ingest_one",
    "make_plan",
    "plan_sync",
    "record_missing",
    "weight_used",
]


@dataclass(frozen=True)
class Options:
    """Knobs of one run. ``weight_window_s`` overrides the window learned from exchangeInfo
    (the built-in exchange states one minute even when its windows are shortened)."""

    max_downloads: int = 4
    parse_threads: int = 2
    rest_concurrency: int = 4
    download_dir: Path | None = None
    weight_window_s: float | None = None


class Progress(Protocol):
    """Receives a run's events (rich bars in the CLI, an artifact in Prefect)."""

    def planned(self, plan: Plan) -> None:
        """The plan is made; items are about to start."""

    def done(self, outcome: Outcome, weight_used: int) -> None:
        """One item finished (whatever its status)."""


class NoProgress:
    def planned(self, plan: Plan) -> None:
        return None

    def done(self, outcome: Outcome, weight_used: int) -> None:
        return None


@dataclass
class Summary:
    plan: Plan
    outcomes: list[Outcome] = field(default_factory=list)
    elapsed_s: float = 0.0
    weight_used: int = 0
    throttled: int = 0

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed]

    def as_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        return {
            "request": self.plan.request.describe(),
            "planned": len(self.plan.items),
            "held_days": sum(self.plan.held.values()),
            "statuses": counts,
            "rows": sum(o.rows for o in self.outcomes),
            "bytes": sum(o.bytes for o in self.outcomes),
            "rest_requests": sum(o.requests for o in self.outcomes),
            "weight_used": self.weight_used,
            "throttled": self.throttled,
            "elapsed_s": round(self.elapsed_s, 3),
            "outcomes": [o.as_dict() for o in self.outcomes],
            "gaps": [_gap(g) for g in self.plan.gaps],
            "before_listing_days": self.before_listing_days,
        }

    @property
    def before_listing_days(self) -> int:
        """Days of the request's series skipped because the symbol was not listed yet."""
        gaps = (g for g in self.plan.gaps if g.kind == "before listing")
        return sum((g.last_day - g.first_day).days + 1 for g in gaps)


def _gap(g: Gap) -> dict[str, Any]:
    return {
        "series": g.series.label,
        "first": g.first_day,
        "last": g.last_day,
        "kind": g.kind,
        "reason": g.reason,
    }


_CALIBRATED: set[tuple[str, Market]] = set()


async def calibrate(rest: RestClient, markets: list[Market], window_s: float | None) -> None:
    """Learn each market's weight limit and window from exchangeInfo (``window_s`` overrides the
    window), once per process: the budget it sets is shared by every client."""
    for market in markets:
        key = (rest.endpoints.rest_url(market, ""), market)
        if key in _CALIBRATED:
            continue
        await rest.calibrate(market, window_s=window_s)
        _CALIBRATED.add(key)


def weight_used(rest: RestClient, markets: list[Market]) -> tuple[int, int]:
    """Weight sent and 429/418 answers seen, over the distinct budgets of ``markets``."""
    budgets = {id(b): b for b in (rest.budget(m) for m in markets)}.values()
    return (
        sum(b.stats.used for b in budgets),
        sum(b.stats.throttled + b.stats.banned for b in budgets),
    )


async def execute(
    lake: Lake,
    plan: Plan,
    *,
    vision: VisionClient,
    rest: RestClient,
    options: Options = Options(),
    progress: Progress | None = None,
) -> Summary:
    """Run every item of ``plan``; record missing files; return what happened."""
    progress = progress or NoProgress()
    t0 = time.perf_counter()
    lake.create_all()
    with contextlib.ExitStack() as stack:
        tmp = options.download_dir or stack.enter_context(scratch(lake.root, "backfill"))
        return await _execute(
            lake, plan, tmp, vision=vision, rest=rest, options=options, progress=progress, t0=t0
        )


async def _execute(
    lake: Lake,
    plan: Plan,
    tmp: Path,
    *,
    vision: VisionClient,
    rest: RestClient,
    options: Options,
    progress: Progress,
    t0: float,
) -> Summary:
    ctx = Context(lake, plan.now_ms, tmp, vision, rest, asyncio.Semaphore(options.parse_threads))
    files_in_flight = asyncio.Semaphore(options.max_downloads + options.parse_threads)
    rest_slots = asyncio.Semaphore(options.rest_concurrency)
    markets = plan.request.markets
    if plan.rest_items:
        await calibrate(rest, markets, options.weight_window_s)

    def used() -> int:
        return weight_used(rest, markets)[0]

    async def one(item: PlanItem) -> Outcome:
        async with files_in_flight if item.source == "vision" else rest_slots:
            out = await ingest(ctx, item)
        progress.done(out, used())
        return out

    summary = Summary(plan)
    progress.planned(plan)
    missing = await asyncio.to_thread(record_missing, lake, plan)
    for out in missing:
        progress.done(out, used())
    summary.outcomes = missing + list(await asyncio.gather(*(one(i) for i in plan.items)))
    summary.elapsed_s = time.perf_counter() - t0
    summary.weight_used, summary.throttled = weight_used(rest, markets)
    return summary


def ingest_one(
    lake: Lake, endpoints: Endpoints, item: PlanItem, *, now_ms: int, options: Options = Options()
) -> Outcome:
    """Run one item in its own event loop (a Prefect task per file or REST day)."""

    async def go() -> Outcome:
        async with VisionClient(endpoints, max_concurrent=1) as v, RestClient(endpoints) as r:
            if item.source == "rest":
                await calibrate(r, [item.series.market], options.weight_window_s)
            with scratch(lake.root, "backfill") as tmp:
                return await ingest(Context(lake, now_ms, tmp, v, r), item)

    return asyncio.run(go())


def plan_sync(lake: Lake, endpoints: Endpoints, request: BackfillRequest) -> Plan:
    """:func:`make_plan` in its own event loop."""

    async def go() -> Plan:
        async with VisionClient(endpoints) as v, RestClient(endpoints) as r:
            return await make_plan(lake, request, vision=v, rest=r)

    return asyncio.run(go())


def record_missing(lake: Lake, plan: Plan) -> list[Outcome]:
    """Record the plan's missing archive files in ``ops.sources`` (which must exist)."""
    missing = [missing_outcome(m) for m in plan.missing]
    ledger_for(lake).record(missing)
    return missing
