"""Prefect tasks for history backfill: one per plan, one per archive file or REST day.

Tasks take small keys (a plan item is a key with a few facts) and return small values; the rows
travel through the lake, never through Prefect. Each task records its outcome in ``ops.sources``
before it returns, which is what makes a killed flow resumable.
"""

from __future__ import annotations

from typing import Any

from prefect import State, task
from prefect.cache_policies import NO_CACHE

from lake.backfill.plan import Plan, PlanItem
from lake.backfill.provenance import Outcome
from lake.backfill.request import BackfillRequest, RequestError
from lake.backfill.run import Options, ingest_one, plan_sync, record_missing
from lake.interrupt import STOP, check_stop
from lake.settings import Settings
from lake.storage import Lake


class ItemFailed(RuntimeError):
    """An item ended in ``error`` (a REST failure, an unreadable file): Prefect retries it."""


def _worth_retrying(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry a failed item unless a stop was asked for."""
    return not STOP.is_set()


def _not_bad_input(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry what may pass next time; a refused request fails the same way every time."""
    return not isinstance(state.result(raise_on_failure=False), RequestError)


@task(
    name="backfill-plan",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=_not_bad_input,
)
def plan_backfill(settings: Settings, exchange_url: str, request: BackfillRequest) -> Plan:
    """List the archive, read ``ops.sources`` and plan; records missing archive files."""
    lake = Lake.from_settings(settings)
    lake.create_all()
    plan = plan_sync(lake, settings.endpoints(exchange_url), request)
    if plan.missing:
        record_missing(lake, plan)
    return plan


@task(
    name="backfill-item",
    task_run_name="{item.key}",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_worth_retrying,
)
def ingest_item(
    settings: Settings,
    exchange_url: str,
    item: PlanItem,
    now_ms: int,
    weight_window_s: float | None = None,
) -> Outcome:
    """Fetch, verify, parse, write and record one archive file or one REST day."""
    check_stop()  # after a stop is asked for, no new file is started
    outcome = ingest_one(
        Lake.from_settings(settings),
        settings.endpoints(exchange_url),
        item,
        now_ms=now_ms,
        options=Options(weight_window_s=weight_window_s),
    )
    if outcome.status == "error":
        raise ItemFailed(outcome.line())
    return outcome
