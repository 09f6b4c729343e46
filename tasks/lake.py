"""Prefect tasks over the lake's tables: thin wrappers that take keys and return small values."""

from __future__ import annotations

from prefect import task

from lake.schemas import ALL_TABLES, get_table
from lake.settings import load_settings
from lake.storage import Lake


def lake_for(root: str | None) -> Lake:
    """The lake at ``root``, or at the configured storage root."""
    settings = load_settings(overrides={"storage": {"root": root}} if root else None)
    return Lake.from_settings(settings)


@task(name="create-tables")
def create_tables(root: str | None = None) -> list[str]:
    """Create every missing table; returns the keys of the tables created."""
    return lake_for(root).create_all(ALL_TABLES)


@task(name="table-stats")
def table_stats(table: str, root: str | None = None) -> dict[str, object]:
    """Rows, version and files of one table, from the Delta log."""
    return lake_for(root).stats(get_table(table)).as_dict()
