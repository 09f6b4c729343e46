"""(I/O) Kline repairs: the 1-minute trade bars a cadence gap or a window lacks (REST,
insert-only); see :mod:`lake.capture.repair`."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from lake.binance import history
from lake.binance.parse import parse_rest_klines
from lake.binance.rest import RestClient
from lake.capture.repair_model import MINUTE, Gap, Outcome, iso, ms
from lake.schemas import KLINES
from lake.storage import Lake, new_batch_id


async def fill_minutes(lake: Lake, client: RestClient, gap: Gap, *, now: datetime) -> Outcome:
    """Fetch the 1-minute trade bars the gap lacks and insert those inside its window."""
    missing = _missing_minutes(lake, gap)
    if not missing:
        return Outcome("repaired")
    lo, hi = missing[0], missing[-1] + MINUTE
    pages = await history.klines_between(client, gap.market, "trade", gap.symbol, ms(lo), ms(hi))
    frame = parse_rest_klines(
        pages.bodies,
        market=gap.market,
        kind="trade",
        interval="1m",
        symbol=gap.symbol,
        batch_id=new_batch_id("rest"),
        now_ms=ms(now),
    ).filter(pl.col("open_time").is_in(missing))
    if frame.height:
        lake.merge(KLINES, frame, source="rest", batch_id=str(frame["batch_id"][0]), update="never")
    still = _missing_minutes(lake, gap)
    if still:
        return Outcome(
            "unrepairable",
            frame.height,
            f"the exchange has no 1m bars for {len(still)} minute(s) from {iso(still[0])}",
        )
    return Outcome("repaired", frame.height)


def _missing_minutes(lake: Lake, gap: Gap) -> list[datetime]:
    """Open times of the 1-minute trade bars the gap's window should hold but bronze lacks.

    A ``cadence`` gap lies between two stored bars: the minutes strictly between them. A
    ``disconnect`` window holds the bars that closed inside it.
    """
    if gap.kind == "cadence":
        first, last_close = gap.start_time + MINUTE, gap.end_time
    else:
        first = (gap.start_time - MINUTE).replace(second=0, microsecond=0) + MINUTE
        last_close = gap.end_time
    expected = []
    t = first
    while t + MINUTE <= last_close:
        expected.append(t)
        t += MINUTE
    if not expected:
        return []
    stored = set(
        lake.scan(KLINES)
        .filter(gap.key() & (pl.col("kind") == "trade") & (pl.col("interval") == "1m"))
        .filter(pl.col("open_time").is_between(expected[0], expected[-1]))
        .select("open_time")
        .collect()
        .get_column("open_time")
        .to_list()
    )
    return [t for t in expected if t not in stored]
