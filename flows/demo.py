"""``demo`` flow: the whole pipeline, end to end, on the built-in exchange.

It grows with the product; each step says what it did. Today: create the lake, start the built-in
exchange, capture spot and USD-M streams for a short while (landing them into bronze and filling
any id gap from REST), backfill the last days of klines of every kind, funding and metrics from
the exchange's Vision archive (REST for days not yet published), then list what the lake holds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import State, flow
from prefect.states import Cancelled

from flows.backfill import backfill
from flows.init_lake import init_lake
from lake.interrupt import STOP, STOPPED
from lake.schemas import ALL_TABLES
from lake.settings import load_settings
from lake.simulator import exchange_url
from tasks.capture import capture
from tasks.lake import table_stats

# Small datasets, so the demo stays quick (trade-level archives are ~1 M rows a day per symbol).
DEMO_DATASETS = [
    "klines",
    "markPriceKlines",
    "indexPriceKlines",
    "premiumIndexKlines",
    "fundingRate",
    "metrics",
]


@flow(name="demo", log_prints=True)
def demo(
    root: str | None = None, capture_s: float = 20.0, backfill_days: int = 3
) -> dict[str, Any] | State[Any]:
    """Run every stage that exists against the built-in exchange; return what each did.

    A stop asked for (Ctrl-C on ``cryptolake demo``) ends it after the step in progress has
    committed, in state Cancelled.
    """
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
        if STOP.is_set():  # a stop during capture: it flushed and landed; nothing more starts
            return Cancelled(message=STOPPED)
        print(
            f"collect: {capture_s:.0f} s of spot and USD-M streams, "
            f"{captured['frames_received']:,} frames received, {captured['rows_stored']:,} rows "
            f"newly stored in bronze, {captured['drops']} reconnects, "
            f"{captured['gaps_repaired']} gap(s) repaired"
        )
        today = datetime.now(UTC).date()
        ran = backfill(
            symbols=["BTCUSDT"],
            start=str(today - timedelta(days=backfill_days)),
            end=str(today - timedelta(days=1)),
            datasets=DEMO_DATASETS,
            exchange=url,
            root=settings.storage.uri,
            return_state=True,
        )
        if ran.is_cancelled():
            return Cancelled(message=STOPPED)
        history = ran.result()
        print(
            f"backfill: the last {backfill_days} day(s) of {', '.join(DEMO_DATASETS)} for "
            f"BTCUSDT, {history['rows']:,} rows ({history['statuses']})"
        )
    if STOP.is_set():
        return Cancelled(message=STOPPED)
    inventory = [table_stats(spec.key, settings.storage.uri) for spec in ALL_TABLES]
    return {"captured": captured, "backfill": history, "tables": inventory}
