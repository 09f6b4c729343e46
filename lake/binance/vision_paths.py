"""Binance Vision archive keys and which files exist (BINANCE.md §3.1).

Keys follow ``binance-public-data``'s ``get_path``::

    data/spot/{daily|monthly}/{type}/{SYMBOL}/[{interval}/]
    data/futures/{um|cm}/{daily|monthly}/{type}/{SYMBOL}/[{interval}/]
    daily:   {SYMBOL}-{interval}-{YYYY-MM-DD}.zip  (kline types)  {SYMBOL}-{type}-{YYYY-MM-DD}.zip
    monthly: {SYMBOL}-{interval}-{YYYY-MM}.zip                    {SYMBOL}-{type}-{YYYY-MM}.zip
    checksum: <zip name>.CHECKSUM beside the zip

Availability is data too: :data:`VISION_DATASETS` says per dataset which markets and periods
exist and the last day published for series Binance stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

VisionMarket = Literal["spot", "um", "cm"]
Period = Literal["daily", "monthly"]

KLINE_INTERVALS = (
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
    "1mo",
)  # fmt: skip
_SPOT_ONLY_INTERVALS = frozenset({"1s"})
_FUTURES_ONLY_INTERVALS = frozenset({"3d", "1w", "1mo"})


@dataclass(frozen=True)
class VisionDataset:
    """One Vision ``type`` folder.

    Attributes:
        kline_type: files are named by interval and live in an interval folder.
        last_day: the last day Binance published (for series it stopped), else ``None``.
        table: the bronze table its rows land in (``None``: not ingested).
    """

    name: str
    markets: frozenset[VisionMarket]
    periods: frozenset[Period]
    table: str | None
    kline_type: bool = False
    last_day: date | None = None


_ALL: frozenset[VisionMarket] = frozenset({"spot", "um", "cm"})
_FUT: frozenset[VisionMarket] = frozenset({"um", "cm"})
_BOTH: frozenset[Period] = frozenset({"daily", "monthly"})
_DAILY: frozenset[Period] = frozenset({"daily"})

VISION_DATASETS: dict[str, VisionDataset] = {
    d.name: d
    for d in (
        VisionDataset("klines", _ALL, _BOTH, "klines", kline_type=True),
        VisionDataset("aggTrades", _ALL, _BOTH, "agg_trades"),
        VisionDataset("trades", _ALL, _BOTH, "trades"),
        VisionDataset("markPriceKlines", _FUT, _BOTH, "klines", kline_type=True),
        VisionDataset("indexPriceKlines", _FUT, _BOTH, "klines", kline_type=True),
        VisionDataset("premiumIndexKlines", _FUT, _BOTH, "klines", kline_type=True),
        # Monthly only: the daily prefix is empty.
        VisionDataset("fundingRate", _FUT, frozenset({"monthly"}), "funding"),
        # Daily only, 288 five-minute rows per file.
        VisionDataset("metrics", _FUT, _DAILY, "metrics"),
        VisionDataset("bookDepth", _FUT, _DAILY, None),
        # Daily files ended 2024-03-30; the monthly folder holds only a partial 2024-04.
        VisionDataset("bookTicker", _FUT, _DAILY, "book_ticker", last_day=date(2024, 3, 30)),
        VisionDataset(
            "liquidationSnapshot", _FUT, _DAILY, "liquidations", last_day=date(2024, 3, 31)
        ),
    )
}

KLINE_KIND_BY_DATASET = {
    "klines": "trade",
    "markPriceKlines": "mark",
    "indexPriceKlines": "index",
    "premiumIndexKlines": "premium",
}
"""The bronze ``klines.kind`` each kline-type dataset lands as."""


def vision_interval(interval: str) -> str:
    """The interval as it appears in paths: ``1M`` is spelt ``1mo`` (§3.1).

    Raises:
        ValueError: not a Vision kline interval.
    """
    name = "1mo" if interval == "1M" else interval
    if name not in KLINE_INTERVALS:
        known = ", ".join(KLINE_INTERVALS)
        raise ValueError(f"{interval!r} is not a Vision kline interval ({known})")
    return name


def _dataset(name: str) -> VisionDataset:
    try:
        return VISION_DATASETS[name]
    except KeyError:
        known = ", ".join(VISION_DATASETS)
        raise ValueError(f"unknown Vision dataset {name!r} ({known})") from None


def vision_prefix(
    market: VisionMarket, dataset: str, symbol: str, period: Period, interval: str | None = None
) -> str:
    """The folder of one series, ending in ``/``: the ``prefix`` of an S3 listing.

    Raises:
        ValueError: unknown dataset, or a kline type without an interval.
    """
    spec = _dataset(dataset)
    root = "data/spot" if market == "spot" else f"data/futures/{market}"
    folder = f"{root}/{period}/{dataset}/{symbol.upper()}/"
    if spec.kline_type:
        if interval is None:
            raise ValueError(f"{dataset} needs an interval")
        folder += f"{vision_interval(interval)}/"
    return folder


def vision_file_name(
    dataset: str, symbol: str, period: Period, when: date, interval: str | None = None
) -> str:
    """``BTCUSDT-1m-2024-01-01.zip`` or ``BTCUSDT-fundingRate-2026-04.zip``."""
    spec = _dataset(dataset)
    if spec.kline_type:
        if interval is None:
            raise ValueError(f"{dataset} needs an interval")
        middle = vision_interval(interval)
    else:
        middle = dataset
    stamp = when.strftime("%Y-%m-%d" if period == "daily" else "%Y-%m")
    return f"{symbol.upper()}-{middle}-{stamp}.zip"


def vision_key(
    market: VisionMarket,
    dataset: str,
    symbol: str,
    period: Period,
    when: date,
    interval: str | None = None,
) -> str:
    """The key of one zip, e.g. ``data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-….zip``."""
    prefix = vision_prefix(market, dataset, symbol, period, interval)
    return prefix + vision_file_name(dataset, symbol, period, when, interval)


def checksum_key(key: str) -> str:
    """The ``.CHECKSUM`` file beside a zip."""
    return f"{key}.CHECKSUM"


def vision_available(
    market: VisionMarket,
    dataset: str,
    period: Period,
    when: date | None = None,
    interval: str | None = None,
) -> bool:
    """Whether Vision publishes this series at all, and for ``when`` if given.

    Publication delays (next day, first days of the month) are not modelled: a listing answers
    those. Only the rules of §3.1 are: fundingRate monthly only, metrics and bookDepth daily
    only, mark/index/premium futures only, 1s klines spot only, 3d/1w/1mo futures only,
    bookTicker until 2024-03-30, liquidationSnapshot until 2024-03-31.
    """
    spec = _dataset(dataset)
    if market not in spec.markets or period not in spec.periods:
        return False
    if spec.kline_type and interval is not None:
        name = vision_interval(interval)
        if market == "spot" and name in _FUTURES_ONLY_INTERVALS:
            return False
        if market != "spot" and name in _SPOT_ONLY_INTERVALS:
            return False
    if when is not None and spec.last_day is not None:
        first = when if period == "daily" else when.replace(day=1)
        return first <= spec.last_day
    return True
