"""``historicalTrades`` bodies → bronze trades (pure).

Routes: spot ``GET /api/v3/historicalTrades``, USD-M ``GET /fapi/v1/historicalTrades``, both
paged by ``fromId``. One element (``isBestMatch`` is spot only)::

    {"id":28457,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012",
     "time":1499865549590,"isBuyerMaker":true,"isBestMatch":true}
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import polars as pl

from lake import schemas
from lake.binance.parse_common import finish
from lake.binance.parse_rest import _decode_pages, _dedupe
from lake.settings import Market


class RestTrade(msgspec.Struct, frozen=True):
    id: int  # trade id
    price: str
    qty: str
    quoteQty: str  # price × qty
    time: int  # trade time, ms
    isBuyerMaker: bool
    isBestMatch: bool | None = None  # spot only


_TRADES = msgspec.json.Decoder(list[RestTrade])


def parse_rest_trades(
    pages: bytes | Sequence[bytes], *, market: Market, symbol: str, batch_id: str
) -> pl.DataFrame:
    """Trades from one or more ``historicalTrades`` pages; ids repeated across pages kept once."""
    rows: list[RestTrade] = _decode_pages(_TRADES, pages, "historicalTrades")
    cols = {
        "trade_id": [r.id for r in rows],
        "price": [r.price for r in rows],
        "qty": [r.qty for r in rows],
        "quote_qty": [r.quoteQty for r in rows],
        "trade_time": [r.time for r in rows],
        "is_buyer_maker": pl.Series([r.isBuyerMaker for r in rows], dtype=pl.Boolean),
        "is_best_match": pl.Series([r.isBestMatch for r in rows], dtype=pl.Boolean),
    }
    consts = {"market": market, "symbol": symbol, "source": "rest", "batch_id": batch_id}
    return _dedupe(finish(schemas.TRADES, cols, consts, times=("trade_time",)), ("trade_id",))
