"""``demo`` flow: the whole pipeline, end to end, on the built-in exchange.

It grows with the product; each step says what it did. Today: create the lake, start the built-in
exchange, capture spot and USD-M streams for a short while (landing them into bronze and filling
any id gap from REST), then list what the lake holds.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.init_lake import init_lake
from lake.schemas import ALL_TABLES
from lake.settings import load_settings
from lake.simulator import exchange_url
from tasks.capture import capture
from tasks.lake import table_stats


@flow(name="demo", log_prints=True)
def demo(root: str | None = None, capture_s: float = 20.0) -> dict[str, Any]:
    """Run every stage that exists against the built-in exchange; return what each did."""
    overrides: dict[str, Any] = {"exchange": "sim"}
    if root:
        overrides["storage"] = {"root": root}
    settings = load_settings(overrides=overrides)
    created = init_lake(settings.storage.uri)
    print(f"init: {len(created)} table(s) created under {settings.storage.uri}")
    with exchange_url(settings) as url:
        print(f"exchange: the built-in exchange is serving at {url}")
        live = settings.model_copy(update={"exchange": url})
        captured = capture(live, None, None, capture_s)
        print(
            f"collect: {capture_s:.0f} s of spot and USD-M streams, "
            f"{sum(captured['frames'].values()):,} frames landed into bronze, "
            f"{captured['drops']} reconnects, {captured['gaps_repaired']} gap(s) repaired"
        )
    inventory = [table_stats(spec.key, settings.storage.uri) for spec in ALL_TABLES]
    return {"captured": captured, "tables": inventory}
