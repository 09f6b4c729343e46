"""Prefect wiring: the ephemeral API starts, flows run against it, schedules create runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_init_flow_runs_on_the_ephemeral_api(prefect_harness: None, lake_root: Path) -> None:
    from flows.init_lake import init_lake
    from lake.schemas import ALL_TABLES

    created = init_lake(str(lake_root))
    assert sorted(created) == sorted(t.key for t in ALL_TABLES)
    assert init_lake(str(lake_root)) == []  # idempotent


def test_scheduled_deployment_creates_runs(prefect_harness: None, lake_root: Path) -> None:
    """Prefect's own scheduler service, run against the harness database, creates flow runs
    for a cron deployment. With SQLAlchemy 2.1 this silently created none (hence the pin)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.server.services.scheduler import schedule_deployments

    from flows.init_lake import init_lake

    deployment = init_lake.to_deployment(
        name="every-minute", cron="* * * * *", parameters={"root": str(lake_root)}
    )
    deployment_id = deployment.apply()

    async def scheduled_runs() -> int:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
        return sum(1 for r in runs if r.state is not None and r.state.is_scheduled())

    before = asyncio.run(scheduled_runs())
    asyncio.run(schedule_deployments())
    after = asyncio.run(scheduled_runs())
    print(f"scheduled runs before the scheduler: {before}, after: {after}")
    assert after > before


def test_commits_made_inside_a_flow_carry_its_run_id(
    prefect_harness: None, lake_root: Path
) -> None:
    from prefect import flow
    from prefect.runtime import flow_run

    from lake.schemas import AGG_TRADES
    from lake.storage import Lake
    from tests.factories import agg_trades

    lake = Lake(str(lake_root))
    lake.create_all([AGG_TRADES])

    @flow
    def write_batch() -> str:
        lake.merge(AGG_TRADES, agg_trades(range(10)), source="rest")
        return str(flow_run.id)

    run_id = write_batch()
    assert lake.history(AGG_TRADES, limit=1)[0]["lineage"]["flow_run_id"] == run_id
    lake.merge(AGG_TRADES, agg_trades(range(10, 20)), source="rest")  # outside any flow
    assert "flow_run_id" not in lake.history(AGG_TRADES, limit=1)[0]["lineage"]
