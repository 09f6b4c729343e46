"""The planner (pure): cheapest source per (dataset, symbol, day), skips, changes, gaps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from lake.backfill.catalog import Series, days
from lake.backfill.plan import Holding, Plan, SeriesListing, plan_backfill
from lake.backfill.request import BackfillRequest, build_request
from lake.binance.vision import ListedFile

NOW = int(datetime(2024, 4, 3, 12, tzinfo=UTC).timestamp() * 1000)  # exchange time
TODAY = date(2024, 4, 3)
LM = datetime(2024, 4, 1, 1, 0, tzinfo=UTC)
BTC_UM_AGG = Series("um", "aggTrades", "BTCUSDT")


def req(
    start: str, end: str, datasets: str, *, markets: str = "um", source: str = "auto"
) -> object:
    return build_request(
        start=start,
        end=end,
        today=TODAY,
        symbols="BTCUSDT",
        markets=markets,
        datasets=datasets,
        source=source,
    )


def listing(
    series: Series,
    daily: Sequence[date] = (),
    monthly: Sequence[date] = (),
    *,
    size: int = 1000,
    monthly_size: int = 20_000,
) -> SeriesListing:
    return SeriesListing(
        {d: ListedFile(series.key("daily", d), size, LM) for d in daily},
        {m: ListedFile(series.key("monthly", m), monthly_size, LM) for m in monthly},
    )


def held(key: str, *, size: int = 1000, lm: datetime = LM, status: str = "ingested") -> Holding:
    return Holding(key, status, size, lm, "ab" * 32)


def plan(
    request: BackfillRequest, listings: dict[Series, SeriesListing], holdings: dict[str, Holding]
) -> Plan:
    return plan_backfill(request, listings=listings, holdings=holdings, now_ms=NOW)


def march(a: int, b: int) -> list[date]:
    return days(date(2024, 3, a), date(2024, 3, b))


def test_daily_files_for_a_partial_month_then_rest_for_the_unpublished_tail() -> None:
    s = BTC_UM_AGG
    lst = listing(s, days(date(2024, 3, 28), date(2024, 4, 1)))  # 04-02 not published yet
    p = plan(req("2024-03-28", "2024-04-03", "aggTrades"), {s: lst}, {})
    vision = [(i.period, i.first_day, i.mode, i.reason) for i in p.vision_items]
    assert vision == [("daily", d, "merge", "new") for d in lst.daily]
    assert [(i.first_day, i.key, i.reason) for i in p.rest_items] == [
        (date(2024, 4, 2), "rest:um/aggTrades/BTCUSDT/2024-04-02", "not in the archive yet"),
        (date(2024, 4, 3), "rest:um/aggTrades/BTCUSDT/2024-04-03", "not in the archive yet"),
    ]
    assert not p.missing and not p.gaps
    assert p.bytes == 5 * 1000


def test_a_whole_month_wanted_and_published_is_one_monthly_file() -> None:
    s = BTC_UM_AGG
    lst = listing(s, march(1, 31), [date(2024, 3, 1)])
    p = plan(req("2024-03-01", "2024-03-31", "aggTrades"), {s: lst}, {})
    assert [(i.period, i.first_day, i.last_day) for i in p.items] == [
        ("monthly", date(2024, 3, 1), date(2024, 3, 31))
    ]
    assert p.items[0].key.endswith("/monthly/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-03.zip")
    # a month only partly wanted takes daily files even though the monthly one exists
    p = plan(req("2024-03-02", "2024-03-31", "aggTrades"), {s: lst}, {})
    assert {i.period for i in p.items} == {"daily"} and len(p.items) == 30


def test_monthly_versus_the_daily_files_still_needed_is_decided_by_bytes() -> None:
    s = BTC_UM_AGG
    lst = listing(s, march(1, 31), [date(2024, 3, 1)], size=1000, monthly_size=20_000)
    holdings = {s.key("daily", d): held(s.key("daily", d)) for d in march(1, 25)}
    p = plan(req("2024-03-01", "2024-03-31", "aggTrades"), {s: lst}, holdings)
    assert [i.first_day for i in p.items] == march(26, 31)  # 6 KB of dailies < 20 KB
    assert p.held[s] == 25
    holdings = {s.key("daily", d): held(s.key("daily", d)) for d in march(1, 5)}
    p = plan(req("2024-03-01", "2024-03-31", "aggTrades"), {s: lst}, holdings)
    assert [i.period for i in p.items] == ["monthly"] and p.held[s] == 5


def test_a_monthly_file_too_big_to_parse_whole_is_fetched_as_daily_files() -> None:
    s = BTC_UM_AGG
    big = 200 * 2**20
    lst = listing(s, march(1, 31), [date(2024, 3, 1)], size=big // 30, monthly_size=big)
    p = plan(req("2024-03-01", "2024-03-31", "aggTrades"), {s: lst}, {})
    assert {i.period for i in p.items} == {"daily"} and len(p.items) == 31


def test_held_files_are_skipped_and_changed_ones_replaced() -> None:
    s = BTC_UM_AGG
    lst = listing(s, march(10, 12))
    keys = [s.key("daily", d) for d in march(10, 12)]
    later = LM + timedelta(days=3)
    holdings = {
        keys[0]: held(keys[0]),  # unchanged: skipped
        keys[1]: held(keys[1], lm=later - timedelta(days=9)),  # LastModified moved: replace
        keys[2]: held(keys[2], status="checksum_mismatch"),  # failed before: retried
    }
    p = plan(req("2024-03-10", "2024-03-12", "aggTrades"), {s: lst}, holdings)
    assert p.held[s] == 1
    assert [(i.key, i.mode, i.reason) for i in p.items] == [
        (keys[1], "replace", "changed"),
        (keys[2], "merge", "retry: checksum_mismatch"),
    ]
    assert p.items[0].previous_sha256 == "ab" * 32
    resized = {keys[0]: held(keys[0], size=999)}
    p = plan(req("2024-03-10", "2024-03-10", "aggTrades"), {s: lst}, resized)
    assert [(i.mode, i.reason) for i in p.items] == [("replace", "changed")]


def test_a_monthly_file_held_covers_its_days() -> None:
    s = BTC_UM_AGG
    lst = listing(s, march(1, 31), [date(2024, 3, 1)])
    mkey = s.key("monthly", date(2024, 3, 1))
    p = plan(
        req("2024-03-05", "2024-03-07", "aggTrades"), {s: lst}, {mkey: held(mkey, size=20_000)}
    )
    assert not p.items and p.held[s] == 3


def test_a_day_missing_between_published_days_is_reported_and_filled_from_rest() -> None:
    s = BTC_UM_AGG
    published = [d for d in march(10, 14) if d != date(2024, 3, 12)]
    p = plan(req("2024-03-10", "2024-03-14", "aggTrades"), {s: listing(s, published)}, {})
    assert [(m.day, m.key, m.fallback) for m in p.missing] == [
        (date(2024, 3, 12), s.key("daily", date(2024, 3, 12)), "REST")
    ]
    assert [(i.first_day, i.reason) for i in p.rest_items] == [
        (date(2024, 3, 12), "missing from the archive")
    ]
    book = Series("um", "bookTicker", "BTCUSDT")
    p = plan(req("2024-03-10", "2024-03-14", "bookTicker"), {book: listing(book, published)}, {})
    assert [m.fallback for m in p.missing] == ["no other source"]
    assert [(g.first_day, g.reason) for g in p.gaps] == [
        (date(2024, 3, 12), "missing from the archive")
    ]


def test_series_the_archive_stopped_and_rest_history_limits() -> None:
    book = Series("um", "bookTicker", "BTCUSDT")
    p = plan(
        req("2024-03-29", "2024-04-02", "bookTicker"), {book: listing(book, march(29, 30))}, {}
    )
    assert [i.first_day for i in p.items] == march(29, 30)
    assert [(g.first_day, g.last_day, g.reason) for g in p.gaps] == [
        (
            date(2024, 3, 31),
            date(2024, 4, 2),
            "the archive ended 2024-03-30; no REST route for bookTicker",
        )
    ]
    metrics = Series("um", "metrics", "BTCUSDT")
    p = plan(req("2024-03-01", "2024-04-03", "metrics", source="rest"), {}, {})
    rest_days = [i.first_day for i in p.rest_items]
    assert rest_days[0] == TODAY - timedelta(days=29) and rest_days[-1] == TODAY
    assert p.gaps[0].reason == "REST serves only the last 30 days"
    assert p.held[metrics] == 0


def test_funding_is_monthly_only() -> None:
    s = Series("um", "fundingRate", "BTCUSDT")
    lst = listing(s, monthly=[date(2024, 3, 1)])
    p = plan(req("2024-03-20", "2024-04-02", "fundingRate"), {s: lst}, {})
    assert [(i.source, i.period, i.first_day, i.last_day) for i in p.items] == [
        ("vision", "monthly", date(2024, 3, 1), date(2024, 3, 31)),
        ("rest", "daily", date(2024, 4, 1), date(2024, 4, 1)),
        ("rest", "daily", date(2024, 4, 2), date(2024, 4, 2)),
    ]
    assert not p.missing


def test_source_vision_plans_no_rest_and_source_rest_lists_nothing() -> None:
    s = BTC_UM_AGG
    lst = listing(s, march(30, 31))
    p = plan(req("2024-03-30", "2024-04-01", "aggTrades", source="vision"), {s: lst}, {})
    assert [i.source for i in p.items] == ["vision", "vision"]
    assert [(g.first_day, g.reason) for g in p.gaps] == [
        (date(2024, 4, 1), "not in the archive yet (--source vision)")
    ]
    k = s.key("daily", date(2024, 3, 30))
    p = plan(req("2024-03-30", "2024-04-01", "aggTrades", source="rest"), {}, {k: held(k)})
    assert [(i.source, i.first_day, i.reason) for i in p.items] == [
        ("rest", date(2024, 3, 31), "--source rest"),
        ("rest", date(2024, 4, 1), "--source rest"),
    ]  # the day held from the archive is not fetched again


def test_rest_days_are_held_until_the_archive_supersedes_them() -> None:
    s = BTC_UM_AGG
    rkey = s.rest_key(date(2024, 4, 1))
    holdings = {rkey: Holding(rkey, "ingested")}
    p = plan(req("2024-04-01", "2024-04-01", "aggTrades"), {s: listing(s)}, holdings)
    assert not p.items and p.held[s] == 1
    p = plan(
        req("2024-04-01", "2024-04-01", "aggTrades"), {s: listing(s, [date(2024, 4, 1)])}, holdings
    )
    assert [(i.source, i.mode, i.reason) for i in p.items] == [
        ("vision", "replace", "supersedes REST rows")
    ]
    partial = {rkey: Holding(rkey, "partial")}
    p = plan(req("2024-04-01", "2024-04-01", "aggTrades"), {s: listing(s)}, partial)
    assert [i.reason for i in p.items] == ["not in the archive yet"]


def test_plan_rows_summarise_each_series() -> None:
    s = BTC_UM_AGG
    lst = listing(s, march(28, 31))
    k = s.key("daily", date(2024, 3, 28))
    p = plan(req("2024-03-28", "2024-04-01", "aggTrades"), {s: lst}, {k: held(k)})
    assert [(r["action"], r["count"], r["first"], r["last"], r["bytes"]) for r in p.rows()] == [
        ("vision daily", 3, date(2024, 3, 29), date(2024, 3, 31), 3000),
        ("rest (not in the archive yet)", 1, date(2024, 4, 1), date(2024, 4, 1), 0),
        ("held", 1, None, None, 0),
    ]


@pytest.mark.parametrize(
    ("dataset", "market"), [("klines", "spot"), ("markPriceKlines", "um"), ("trades", "spot")]
)
def test_keys_follow_the_archive_layout(dataset: str, market: str) -> None:
    s = Series(market, dataset, "BTCUSDT")  # type: ignore[arg-type]
    p = plan(
        req("2024-03-05", "2024-03-05", dataset, markets=market),
        {s: listing(s, [date(2024, 3, 5)])},
        {},
    )
    (item,) = p.items
    assert item.key == s.key("daily", date(2024, 3, 5))
    root = "data/spot" if market == "spot" else "data/futures/um"
    sub = f"{dataset}/BTCUSDT/1m" if "lines" in dataset else f"{dataset}/BTCUSDT"
    name = "BTCUSDT-1m-2024-03-05" if "lines" in dataset else f"BTCUSDT-{dataset}-2024-03-05"
    assert item.key == f"{root}/daily/{sub}/{name}.zip"
