"""``demo`` flow: the whole pipeline, end to end, on the built-in exchange.

It grows with the product; each step says what it did. Today: create the lake through the
``init`` flow and list what is in it.
"""

from __future__ import annotations

from prefect import flow

from flows.init_lake import init_lake
from tasks.lake import table_stats


@flow(name="demo", log_prints=True)
def demo(root: str | None = None) -> list[dict[str, object]]:
    """Run every stage that exists against the built-in exchange; return the table inventory."""
    created = init_lake(root)
    print(f"init: created {len(created)} table(s)")
    from lake.schemas import ALL_TABLES

    return [table_stats(spec.key, root) for spec in ALL_TABLES]
