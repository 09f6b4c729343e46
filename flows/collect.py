"""``collect`` and ``land`` flows: live capture, and landing segments into bronze."""

from __future__ import annotations

from typing import Any

from prefect import flow

from lake.settings import Market, load_settings
from tasks.capture import capture, land_segments, repair_gaps


@flow(name="collect", log_prints=True)
def collect_flow(
    exchange: str | None = None,
    markets: list[Market] | None = None,
    symbols: list[str] | None = None,
    duration_s: float | None = None,
) -> dict[str, Any]:
    """Capture spot and USD-M streams until stopped (or for ``duration_s``)."""
    settings = load_settings(overrides={"exchange": exchange} if exchange else None)
    return capture(settings, markets, symbols, duration_s)


@flow(name="land", log_prints=True)
def land_flow(markets: list[Market] | None = None, repair: bool = True) -> dict[str, Any]:
    """Land closed segments of every market, then fill open gaps from REST."""
    settings = load_settings()
    chosen: list[Market] = markets or ["spot", "um"]
    landed = {m: land_segments(settings, m) for m in chosen}
    return {"landed": landed, "repair": repair_gaps(settings) if repair else None}
