"""Pure parsers: Binance data → polars frames that conform to :mod:`lake.schemas`.

No clock, network, filesystem or Prefect in here or in the modules it gathers:

* :func:`parse_ws_frames` (:mod:`.parse_ws`): WebSocket frames, the live-capture hot path;
* :func:`parse_vision_csv` (:mod:`.parse_vision`): archive CSV files;
* ``parse_rest_*`` (:mod:`.parse_rest`): REST response bodies.
"""

from __future__ import annotations

from lake.binance.parse_rest import (
    parse_rest_agg_trades,
    parse_rest_funding,
    parse_rest_klines,
    parse_rest_metrics,
    parse_rest_trades,
)
from lake.binance.parse_vision import (
    VISION_CSV_DATASETS,
    csv_from_zip,
    has_header,
    parse_vision_csv,
    read_vision_csv,
)
from lake.binance.parse_ws import (
    ParsedFrames,
    RejectedFrame,
    combine,
    parse_ws_frames,
    parse_ws_lines,
)

__all__ = [
    "VISION_CSV_DATASETS",
    "ParsedFrames",
    "RejectedFrame",
    "combine",
    "csv_from_zip",
    "has_header",
    "parse_rest_agg_trades",
    "parse_rest_funding",
    "parse_rest_klines",
    "parse_rest_metrics",
    "parse_rest_trades",
    "parse_vision_csv",
    "parse_ws_frames",
    "parse_ws_lines",
    "read_vision_csv",
]
