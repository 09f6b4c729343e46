"""The planner's vocabulary: what is held, what is listed, what to fetch (pure data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol

from lake.backfill.catalog import Series
from lake.backfill.provenance import HELD
from lake.binance.vision_paths import Period

Mode = Literal["merge", "replace"]
GapKind = Literal["no source", "before listing"]


class Listed(Protocol):
    """An archive file as the listing shows it (:class:`lake.binance.vision.ListedFile`)."""

    @property
    def key(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def last_modified(self) -> datetime: ...


@dataclass(frozen=True)
class Holding:
    """What ``ops.sources`` says about one key."""

    key: str
    status: str
    size: int | None = None
    last_modified: datetime | None = None
    sha256: str | None = None

    @property
    def held(self) -> bool:
        return self.status in HELD

    def matches(self, listed: Listed | None) -> bool:
        """Ingested, and the archive lists the same file (or no longer lists it at all)."""
        if not self.held:
            return False
        return listed is None or (listed.size, listed.last_modified) == (
            self.size,
            self.last_modified,
        )


@dataclass(frozen=True)
class SeriesListing:
    """The archive files of one series, by day (daily) and by first day of month (monthly)."""

    daily: Mapping[date, Listed] = field(default_factory=dict)
    monthly: Mapping[date, Listed] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanItem:
    """One file to download, or one day to fetch from REST."""

    series: Series
    source: Literal["vision", "rest"]
    period: Period
    first_day: date
    last_day: date
    key: str
    mode: Mode = "merge"
    reason: str = "new"
    size: int | None = None
    last_modified: datetime | None = None
    previous_sha256: str | None = None
    previous_last_modified: datetime | None = None


@dataclass(frozen=True)
class Gap:
    """Days of a series that no source can serve now, and why: ``before listing`` when the
    symbol was not listed yet (there is nothing to fetch, ever), else ``no source``."""

    series: Series
    first_day: date
    last_day: date
    reason: str
    kind: GapKind = "no source"


@dataclass(frozen=True)
class Missing:
    """A daily archive file absent although later days are published."""

    series: Series
    day: date
    key: str
    fallback: str
