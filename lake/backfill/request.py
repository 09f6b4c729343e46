"""A backfill request, validated: every mistake is one line a user can act on (pure).

The CLI and the Prefect flow build requests here, so both refuse the same input with the same
words before anything is fetched or written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from lake.backfill.catalog import DATASETS, Series, dataset_markets
from lake.settings import MARKETS, Market, Settings, markets_option, split_list, symbols_option

Source = Literal["auto", "vision", "rest"]
SOURCES: tuple[Source, ...] = ("auto", "vision", "rest")


class RequestError(ValueError):
    """Bad input, phrased as one line."""


@dataclass(frozen=True)
class BackfillRequest:
    """What to backfill: every series, a range of UTC days (inclusive) and the allowed sources."""

    series: tuple[Series, ...]
    start: date
    end: date
    source: Source = "auto"

    @property
    def markets(self) -> list[Market]:
        return sorted({s.market for s in self.series}, key=MARKETS.index)

    def symbols_by_market(self) -> dict[Market, list[str]]:
        """The request's symbols on each of its markets."""
        return {
            m: list(dict.fromkeys(s.symbol for s in self.series if s.market == m))
            for m in self.markets
        }

    def describe(self) -> str:
        symbols = sorted({s.symbol for s in self.series})
        datasets = [d for d in DATASETS if any(s.dataset == d for s in self.series)]
        return (
            f"{','.join(symbols)} on {','.join(self.markets)}, {self.start} to {self.end}, "
            f"{len(datasets)} dataset(s), source {self.source}"
        )


def parse_day(text: str | date, option: str) -> date:
    if isinstance(text, date):
        return text
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            raise ValueError
        return date.fromisoformat(text.strip())
    except ValueError:
        raise RequestError(f"bad {option} {text!r}: expected a date YYYY-MM-DD") from None


def build_request(
    *,
    start: str | date,
    end: str | date,
    today: date,
    symbols: str | Sequence[str] | None = None,
    markets: str | Sequence[str] | None = None,
    datasets: str | Sequence[str] | None = None,
    source: str = "auto",
    default_symbols: Mapping[Market, Iterable[str]] | None = None,
) -> BackfillRequest:
    """Validate the user's options.

    Args:
        start, end: the first and last UTC day, ``YYYY-MM-DD``.
        today: the current UTC day; ``end`` may not be after it.
        symbols: the symbols (every chosen market); default ``default_symbols`` per market.
        markets: ``spot``, ``um`` or both (the default).
        datasets: Vision dataset names (default: all, where they exist on the market).
        source: ``auto`` (Vision, then REST), ``vision`` or ``rest``.
        default_symbols: the configured symbols per market.

    Raises:
        RequestError: one line naming the option, the bad value and what to use instead.
    """
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    if last < first:
        raise RequestError(f"--end {last} is before --start {first}")
    if last > today:
        raise RequestError(f"--end {last} is in the future (today is {today} UTC)")
    if source not in SOURCES:
        raise RequestError(f"unknown --source {source!r} (use auto, vision or rest)")
    try:
        chosen = markets_option(markets)
        syms = symbols_option(symbols)
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    names = _datasets(split_list(datasets), chosen)
    series: list[Series] = []
    for market in chosen:
        market_syms = syms if syms is not None else list((default_symbols or {}).get(market, ()))
        for dataset in names:
            if market in dataset_markets(dataset):
                series += [Series(market, dataset, s) for s in dict.fromkeys(market_syms)]
    if not series:
        raise RequestError("nothing to backfill: no symbols given and none configured")
    return BackfillRequest(tuple(series), first, last, source)


def _datasets(values: list[str] | None, markets: list[Market]) -> list[str]:
    if values is None:
        return list(DATASETS)
    if not values:
        raise RequestError("--datasets is empty")
    for v in values:
        if v not in DATASETS:
            known = ", ".join(DATASETS)
            raise RequestError(f"unknown dataset {v!r} in --datasets (known: {known})")
        if not set(dataset_markets(v)) & set(markets):
            where = " and ".join(dataset_markets(v))
            raise RequestError(f"{v} exists only on {where}: add it to --markets")
    return list(dict.fromkeys(values))


def request_from_settings(
    settings: Settings,
    *,
    start: str | date | None,
    end: str | date | None,
    symbols: str | Sequence[str] | None = None,
    markets: str | Sequence[str] | None = None,
    datasets: str | Sequence[str] | None = None,
    source: str = "auto",
    today: date | None = None,
) -> BackfillRequest:
    """:func:`build_request` with the configuration's defaults: days from ``backfill.start`` to
    ``backfill.end`` (else yesterday), the configured symbols per market."""
    today = today or datetime.now(UTC).date()
    return build_request(
        start=start or settings.backfill.start,
        end=end or settings.backfill.end or today - timedelta(days=1),
        today=today,
        symbols=symbols,
        markets=markets,
        datasets=datasets,
        source=source,
        default_symbols={m: settings.markets.get(m).symbols for m in ("spot", "um")},
    )
