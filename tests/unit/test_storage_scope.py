"""A scope renders to Delta SQL (stored names, quoted) and to polars; both select the same rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from lake.schemas import AGG_TRADES, FUNDING, KLINES
from lake.storage import Scope, TimeRange, day_range
from lake.storage.layout import stored_name

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def sample() -> pl.DataFrame:
    """Twelve klines-shaped rows over three days, two symbols, two intervals, one odd market."""
    n = 12
    return pl.DataFrame(
        {
            "row": range(n),
            "market": ["um", "spot", "o'hara", "um"] * 3,
            "kind": ["trade", "mark"] * 6,
            "interval": ["1m", "1m", "1h"] * 4,
            "symbol": ["BTCUSDT", "ETHUSDT"] * 6,
            "open_time": [T0 + timedelta(hours=6 * i) for i in range(n)],
        }
    ).with_columns(pl.col("open_time").dt.date().alias("date"))


SCOPES = [
    Scope.of({"market": ["um"], "symbol": ["BTCUSDT"]}),
    Scope.of(
        {"interval": ["1m"], "kind": ["trade", "mark"]}, dates=(date(2024, 1, 2), date(2024, 1, 3))
    ),
    Scope.of({"market": ["o'hara"]}),
    Scope.of(time=TimeRange("open_time", T0 + timedelta(hours=6), T0 + timedelta(hours=30))),
    Scope.of(
        {"symbol": ["ETHUSDT"]}, time=day_range("open_time", date(2024, 1, 2), date(2024, 1, 2))
    ),
    Scope(),
]


@pytest.mark.parametrize("scope", SCOPES, ids=str)
def test_the_sql_and_the_polars_forms_select_the_same_rows(scope: Scope) -> None:
    frame = sample()
    by_polars = frame.filter(scope.expr())["row"].to_list()
    stored = frame.rename({c: stored_name(c) for c in frame.columns})
    where = scope.sql(KLINES) or "true"
    by_sql = pl.SQLContext(t=stored).execute(f"select row from t where {where}", eager=True)
    assert sorted(by_sql["row"].to_list()) == sorted(by_polars)
    assert 0 < len(by_polars) <= frame.height


def test_the_sql_names_the_stored_column_quoted_and_prefixed() -> None:
    scope = Scope.of({"interval": ["1m"], "symbol": ["ETHUSDT", "BTCUSDT", "BTCUSDT"]})
    assert scope.sql(KLINES, alias="t") == (
        "t.\"kline_interval\" = '1m' AND t.\"symbol\" IN ('BTCUSDT', 'ETHUSDT')"
    )
    assert Scope.of({"market": ["o'hara"]}).sql(AGG_TRADES) == "\"market\" = 'o''hara'"
    dates = Scope.of(dates=(date(2024, 1, 1), date(2024, 1, 2))).sql(AGG_TRADES, alias="t")
    assert dates == "t.\"date\" >= '2024-01-01' AND t.\"date\" <= '2024-01-02'"
    window = Scope.of(time=day_range("funding_time", date(2024, 1, 1), date(2024, 1, 1)))
    assert window.sql(FUNDING) == (
        "\"funding_time\" >= '2024-01-01T00:00:00+00:00' "
        "AND \"funding_time\" < '2024-01-02T00:00:00+00:00'"
    )


def test_an_empty_scope_is_every_row_and_renders_no_predicate() -> None:
    assert Scope().is_empty and Scope().sql(AGG_TRADES) == ""
    assert sample().filter(Scope().expr()).height == 12


def test_bad_scopes_are_refused_before_anything_is_rendered() -> None:
    with pytest.raises(ValueError, match="unknown columns"):
        Scope.of({"kline_interval": ["1m"]}).sql(KLINES)  # the stored name is not a column
    with pytest.raises(ValueError, match="empty value list"):
        Scope.of({"symbol": []})
    with pytest.raises(ValueError, match="before it starts"):
        Scope.of(dates=(date(2024, 1, 2), date(2024, 1, 1)))
    with pytest.raises(ValueError, match="before it starts"):
        TimeRange("open_time", T0, T0)


def test_a_naive_time_range_is_utc() -> None:
    window = TimeRange("open_time", datetime(2024, 1, 1), datetime(2024, 1, 2))
    assert window.start == T0 and window.end.tzinfo is UTC
