"""(I/O) The day each symbol of a request was listed: the open of its first daily kline.

No route has data for the days before it, so the planner skips them and says so, rather than
fetch empty REST days and record them as ingested with 0 rows. Binance answers the kline in
progress too, so a symbol listed today has a first day. A symbol with no kline at all (a
replayed one without daily bars, a listing announced but not yet trading) gives no day, and
then nothing is skipped.

Routes: ``GET /api/v3/klines`` (weight 2) and ``GET /fapi/v1/klines`` (weight 1 at limit 1), with
``interval=1d&startTime=0&limit=1``; the answer is one kline or none::

    [[1577836800000, "62129.73", "62374.37", "60874.24", "61311.74", "129721.95", 1577923199999, …]]
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import msgspec

from lake.backfill.request import BackfillRequest
from lake.binance.limits import SPOT_KLINES, UM_KLINES
from lake.binance.rest import RestClient, RestError
from lake.settings import Market

_KLINES = {"spot": SPOT_KLINES, "um": UM_KLINES}


class _Kline(msgspec.Struct, array_like=True, frozen=True):
    open_time: int  # [0] kline open time, Unix ms (the rest of the array is not needed here)


async def first_day(rest: RestClient, market: Market, symbol: str) -> date | None:
    """The UTC day of the first daily kline of ``symbol`` on ``market``; None when there is none
    or the exchange does not know the symbol (the fetch then says so itself)."""
    params = {"symbol": symbol, "interval": "1d", "startTime": 0}
    try:
        body = await rest.get(_KLINES[market], params, limit=1)
    except RestError as exc:
        if exc.status == 400:  # -1121 Invalid symbol
            return None
        raise
    klines = msgspec.json.decode(body, type=list[_Kline])
    if not klines:
        return None
    return datetime.fromtimestamp(klines[0].open_time / 1000, UTC).date()


async def first_days(rest: RestClient, request: BackfillRequest) -> dict[tuple[Market, str], date]:
    """:func:`first_day` of every (market, symbol) of ``request`` that has one."""
    pairs = sorted({(s.market, s.symbol) for s in request.series})
    found = await asyncio.gather(*(first_day(rest, m, sym) for m, sym in pairs))
    return {pair: day for pair, day in zip(pairs, found, strict=True) if day is not None}
