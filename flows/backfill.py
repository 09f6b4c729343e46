"""``backfill`` flow: a range of days, symbols and datasets from the cheapest source.

Plan once, then one task per archive file or REST day on a thread pool. Killed at any point, a
re-run plans again from ``ops.sources`` and fetches only what had not landed. A progress artifact
follows the run; a table artifact lists every outcome that is not a plain ``ingested``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from prefect import State, flow, get_run_logger
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import as_completed
from prefect.states import Cancelled
from prefect.task_runners import ThreadPoolTaskRunner

from lake.backfill.provenance import Outcome
from lake.backfill.request import request_from_settings
from lake.interrupt import STOP, STOPPED
from lake.settings import load_settings
from lake.simulator import exchange_url
from tasks.backfill import ingest_item, plan_backfill


@flow(name="backfill", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=4))
def backfill(
    symbols: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    markets: list[str] | None = None,
    datasets: list[str] | None = None,
    source: str = "auto",
    exchange: str | None = None,
    root: str | None = None,
    weight_window_s: float | None = None,
) -> dict[str, Any] | State[Any]:
    """Backfill ``start..end`` (UTC days, inclusive; default: config, else yesterday)."""
    overrides: dict[str, Any] = {}
    if exchange:
        overrides["exchange"] = exchange
    if root:
        overrides["storage"] = {"root": root}
    settings = load_settings(overrides=overrides or None)
    request = request_from_settings(
        settings,
        start=start,
        end=end,
        symbols=symbols,
        markets=markets,
        datasets=datasets,
        source=source,
    )
    logger = get_run_logger()
    with exchange_url(settings) as url:
        plan = plan_backfill(settings, url, request)
        total = len(plan.items)
        print(
            f"backfill {request.describe()}: {len(plan.vision_items)} file(s), "
            f"{len(plan.rest_items)} REST day(s), {sum(plan.held.values())} day(s) held"
        )
        progress = create_progress_artifact(
            0.0 if total else 100.0, key="backfill-progress", description=request.describe()
        )
        futures = [
            ingest_item.submit(settings, url, item, plan.now_ms, weight_window_s)
            for item in plan.items
        ]
        outcomes: list[Outcome] = []
        errors: list[str] = []
        for n, future in enumerate(as_completed(futures), start=1):
            try:
                outcomes.append(future.result())
            except Exception as exc:  # the task's retries are spent; the run goes on
                errors.append(str(exc))
                logger.error("%s", exc)
            update_progress_artifact(progress, 100.0 * n / total, description=f"{n}/{total} items")
    if STOP.is_set():  # files running when the stop came are whole; none started after it
        return Cancelled(message=STOPPED)
    statuses = Counter(o.status for o in outcomes) + Counter({"error": len(errors)})
    notable = [o for o in outcomes if o.status not in ("ingested", "partial")]
    if notable or errors:
        create_table_artifact(
            key="backfill-outcomes",
            table=[{"status": o.status, "key": o.key, "detail": o.detail} for o in notable]
            + [{"status": "error", "key": "", "detail": e} for e in errors],
            description="files and days that did not simply land",
        )
    for o in notable:
        print(o.line())
    summary = {
        "planned": total,
        "held_days": sum(plan.held.values()),
        "statuses": dict(statuses),
        "rows": sum(o.rows for o in outcomes),
        "missing": [m.key for m in plan.missing],
        "errors": errors,
    }
    print(f"done: {summary['statuses'] or 'nothing to fetch'}, {summary['rows']:,} rows")
    return summary
