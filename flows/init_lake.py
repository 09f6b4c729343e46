"""``init`` flow: create every table of the lake and publish an inventory artifact."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from lake.schemas import ALL_TABLES
from tasks.lake import create_tables, table_stats


@flow(name="init", log_prints=True)
def init_lake(root: str | None = None) -> list[str]:
    """Create missing tables (idempotent) and record the inventory as a Prefect artifact."""
    created = create_tables(root)
    stats = [table_stats(spec.key, root) for spec in ALL_TABLES]
    create_table_artifact(key="lake-inventory", table=stats, description="cryptolake tables")
    print(f"{len(created)} table(s) created, {len(ALL_TABLES) - len(created)} already present")
    return created
