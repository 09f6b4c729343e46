"""The Vision archive's file tree: datasets, availability, publication times, listing order.

Availability follows BINANCE.md §3.1: spot ``aggTrades/klines/trades`` daily and monthly; USD-M
``fundingRate`` monthly only, ``metrics`` and ``bookDepth`` daily only, ``bookTicker`` ending
2024-03-30 (monthly to 2024-03), ``liquidationSnapshot`` daily ending 2024-03-31. A daily file
appears the day after (plus a build delay), a monthly file after its month.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from lake.exchange.config import ExchangeConfig, SymbolSpec
from lake.exchange.prices import MS_DAY

KLINE_TYPES = ("indexPriceKlines", "klines", "markPriceKlines", "premiumIndexKlines")
SPOT_SETS = {
    "daily": ("aggTrades", "klines", "trades"),
    "monthly": ("aggTrades", "klines", "trades"),
}
UM_SETS = {
    "daily": (
        "aggTrades",
        "bookDepth",
        "bookTicker",
        "indexPriceKlines",
        "klines",
        "liquidationSnapshot",
        "markPriceKlines",
        "metrics",
        "premiumIndexKlines",
        "trades",
    ),
    "monthly": (
        "aggTrades",
        "bookTicker",
        "fundingRate",
        "indexPriceKlines",
        "klines",
        "markPriceKlines",
        "premiumIndexKlines",
        "trades",
    ),
}
SPOT_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
UM_INTERVALS = {"daily": SPOT_INTERVALS[1:], "monthly": (*SPOT_INTERVALS[1:], "3d", "1w", "1mo")}
FIRST = {"metrics": date(2021, 12, 1), "bookDepth": date(2023, 1, 1)}
LAST = {"bookTicker": date(2024, 3, 30), "liquidationSnapshot": date(2024, 3, 31)}
_KEY = re.compile(
    r"^data/(?P<m>spot|futures/um)/(?P<freq>daily|monthly)/(?P<ds>\w+)/(?P<sym>[A-Z0-9]+)/"
    r"(?:(?P<iv>\w+)/)?(?P<base>[A-Za-z0-9-]+)\.zip(?P<ck>\.CHECKSUM)?$"
)


def _ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class VFile:
    """One archive file (the zip; its ``.CHECKSUM`` sits beside it)."""

    market: str
    freq: str
    dataset: str
    symbol: str
    interval: str
    period: str  # YYYY-MM-DD or YYYY-MM

    @property
    def first_day(self) -> date:
        """First day the file covers."""
        return date.fromisoformat(self.period if self.freq == "daily" else self.period + "-01")

    @property
    def start_ms(self) -> int:
        """Start of the covered period (Unix ms)."""
        return _ms(self.first_day)

    @property
    def end_ms(self) -> int:
        """End (exclusive) of the covered period."""
        if self.freq == "daily":
            return self.start_ms + MS_DAY
        return _ms(_next_month(self.first_day))

    @property
    def base(self) -> str:
        """File name without ``.zip``."""
        tag = self.interval if self.dataset in KLINE_TYPES else self.dataset
        return f"{self.symbol}-{tag}-{self.period}"

    @property
    def folder(self) -> str:
        """Folder of the file, ending in ``/``."""
        m = "spot" if self.market == "spot" else "futures/um"
        iv = f"{self.interval}/" if self.dataset in KLINE_TYPES else ""
        return f"data/{m}/{self.freq}/{self.dataset}/{self.symbol}/{iv}"

    @property
    def key(self) -> str:
        """Key of the zip."""
        return f"{self.folder}{self.base}.zip"

    @property
    def info(self) -> dict[str, str]:
        """Fields the Vision fault filters match on."""
        return {
            "market": self.market,
            "dataset": self.dataset,
            "symbol": self.symbol,
            "date": self.period,
        }


def parse_key(key: str) -> tuple[VFile, bool] | None:
    """Parse an archive key into (file, is_checksum); None if it is not a well-formed key."""
    m = _KEY.match(key)
    if not m:
        return None
    market = "spot" if m["m"] == "spot" else "um"
    ds, iv, freq = m["ds"], m["iv"] or "", m["freq"]
    period = m["base"].rsplit("-", 3 if freq == "daily" else 2)[1:]
    f = VFile(market, freq, ds, m["sym"], iv if ds in KLINE_TYPES else "", "-".join(period))
    if f.base != m["base"] or (ds in KLINE_TYPES) != bool(iv):
        return None
    return f, m["ck"] is not None


def datasets(market: str, freq: str) -> tuple[str, ...]:
    """Datasets of a market/frequency folder."""
    return (SPOT_SETS if market == "spot" else UM_SETS)[freq]


def intervals(market: str, freq: str) -> tuple[str, ...]:
    """Kline intervals of a market/frequency."""
    return SPOT_INTERVALS if market == "spot" else UM_INTERVALS[freq]


def exists(cfg: ExchangeConfig, f: VFile) -> bool:
    """Whether the archive has (or will have) this file, ignoring publication time."""
    spec = cfg.spec(f.market, f.symbol)
    if spec is None or f.dataset not in datasets(f.market, f.freq):
        return False
    if f.dataset in KLINE_TYPES and f.interval not in intervals(f.market, f.freq):
        return False
    try:
        first = f.first_day
    except ValueError:
        return False
    lo, hi = span(spec, f.dataset, f.freq)
    return lo <= first <= hi


def span(spec: SymbolSpec, dataset: str, freq: str) -> tuple[date, date]:
    """First and last period start (day, or first day of the month) of a dataset."""
    lo = max(
        datetime.fromtimestamp(spec.genesis_ms / 1000, UTC).date(), FIRST.get(dataset, date.min)
    )
    hi = LAST.get(dataset, date.max)
    if freq == "monthly":
        lo = lo.replace(day=1)
        hi = hi.replace(day=1) if hi != date.max else hi
        if dataset == "bookTicker":
            hi = date(2024, 3, 1)
    return lo, hi


def publish_ms(cfg: ExchangeConfig, f: VFile) -> int:
    """When the file appears: after its period ends, plus the build delay and a seeded jitter."""
    jitter = zlib.crc32(f"{cfg.seed}:{f.key}".encode()) / 2**32 * cfg.vision_jitter_s
    return f.end_ms + int((cfg.vision_delay_s + jitter) * 1000)


def periods(
    cfg: ExchangeConfig, spec: SymbolSpec, dataset: str, freq: str, interval: str, now_ms: int
) -> list[str]:
    """Published periods of a dataset folder (of one kline interval), oldest first."""
    lo, hi = span(spec, dataset, freq)
    # Nothing ends before the end of yesterday, so stop there; the publish check trims the rest.
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    hi = min(hi, today)
    out: list[str] = []
    d = lo
    while d <= hi:
        p = d.isoformat() if freq == "daily" else d.isoformat()[:7]
        f = VFile(spec.market, freq, dataset, spec.symbol, interval, p)
        # Past the first unpublished period every later one is unpublished too.
        if f.end_ms + int(cfg.vision_delay_s * 1000) > now_ms and publish_ms(cfg, f) > now_ms:
            break
        out.append(p)
        d = d + timedelta(days=1) if freq == "daily" else _next_month(d)
    return out


def last_modified(ms: int) -> str:
    """S3 ``LastModified`` text (``2026-04-01T08:06:34.000Z``)."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
