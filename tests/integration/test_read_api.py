"""The reader's API: ``lake.read`` with each filter and time travel, its errors, and ``lake.bars``
against a plain-Python rollup of 1-second bars written into ``silver.bars_1s``."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import lake
from lake.reader import BARS_COLUMNS
from lake.schemas import BARS_1S, KLINES, TRADES
from lake.storage import Lake
from tests.factories import T0, rows_for

pytestmark = pytest.mark.integration


def trades(symbol: str, ids: range, *, step: timedelta = timedelta(hours=7)) -> pl.DataFrame:
    """Trades of ``symbol`` on um; trade ``i`` at ``T0 + i * step`` for price ``100 + i``."""
    n = len(ids)
    return TRADES.conform(
        pl.DataFrame(
            {
                "market": ["um"] * n,
                "symbol": [symbol] * n,
                "trade_id": list(ids),
                "price": [f"{100 + i}.5" for i in ids],
                "qty": ["1"] * n,
                "quote_qty": [None] * n,
                "trade_time": [T0 + step * i for i in ids],
                "is_buyer_maker": [i % 2 == 0 for i in ids],
                "is_best_match": [None] * n,
                "trade_type": [None] * n,
                "event_time": [None] * n,
                "ts_recv": [None] * n,
                "source": ["rest"] * n,
                "batch_id": ["t"] * n,
            }
        )
    )


@pytest.fixture
def lk(lake_root: Path) -> Lake:
    """Trades over three days: BTCUSDT ids 0-9 at version 1, ETHUSDT ids 0-4 at version 2."""
    out = Lake(str(lake_root))
    out.create(TRADES)
    assert out.merge(TRADES, trades("BTCUSDT", range(10)), source="rest").version == 1
    assert out.merge(TRADES, trades("ETHUSDT", range(5)), source="rest").version == 2
    return out


def ids(frame: pl.LazyFrame) -> list[tuple[str, int]]:
    return sorted(frame.select("symbol", "trade_id").collect().iter_rows())


def test_read_returns_the_whole_table_lazily_in_its_logical_schema(lk: Lake) -> None:
    frame = lake.read("bronze.trades", root=lk)
    assert isinstance(frame, pl.LazyFrame)
    assert frame.collect_schema() == TRADES.polars_schema()
    assert frame.collect().height == 15


def test_read_filters_symbols_days_and_times_and_prunes_partitions(lk: Lake) -> None:
    assert ids(lake.read("trades", symbols=["ethusdt"], root=lk)) == [
        ("ETHUSDT", i) for i in range(5)
    ]
    # a day as end is inclusive: trades at 07:00 + 7 h steps fall on 2024-01-02 for ids 4-6
    one_day = lake.read(
        "trades", symbols=["BTCUSDT"], start="2024-01-02", end=date(2024, 1, 2), root=lk
    )
    assert ids(one_day) == [("BTCUSDT", 4), ("BTCUSDT", 5), ("BTCUSDT", 6)]
    plan = one_day.explain()
    assert "date=2024-01-02" in plan and "date=2024-01-01" not in plan  # one partition read
    # a datetime as end is exclusive
    window = lake.read(
        "trades", start=T0 + timedelta(hours=7), end=datetime(2024, 1, 1, 21), root=lk
    )
    assert ids(window) == [("BTCUSDT", 1), ("BTCUSDT", 2), ("ETHUSDT", 1), ("ETHUSDT", 2)]


def test_read_selects_columns_in_the_order_asked(lk: Lake) -> None:
    frame = lake.read("trades", columns=["trade_id", "price", "date"], root=lk).collect()
    assert frame.columns == ["trade_id", "price", "date"]
    assert frame.filter(pl.col("trade_id") == 9)["date"].to_list() == [date(2024, 1, 3)]


def test_read_returns_klines_interval_under_its_logical_name(lake_root: Path) -> None:
    store = Lake(str(lake_root))
    store.create(KLINES)
    store.merge(KLINES, rows_for(KLINES, range(3)), source="rest")
    frame = lake.read("klines", columns=["symbol", "interval"], root=str(lake_root)).collect()
    assert frame["interval"].to_list() == ["1m"] * 3


def test_read_travels_to_a_version_and_to_a_moment(lk: Lake) -> None:
    assert lake.read("trades", as_of=1, root=lk).collect()["symbol"].unique().to_list() == [
        "BTCUSDT"
    ]
    assert lake.read("trades", as_of=0, root=lk).collect().height == 0
    commits = {c["version"]: c["timestamp"] for c in lk.history(TRADES)}
    first = lake.read("trades", as_of=commits[1], root=lk).collect()
    expected = 10 if commits[1] != commits[2] else 15  # two commits in one millisecond
    assert first.height == expected


def test_read_takes_its_root_from_the_settings(
    lk: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/lake.yaml here
    monkeypatch.setenv("LAKE_STORAGE__ROOT", lk.root)
    assert lake.read("trades", symbols=["ETHUSDT"]).collect().height == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": "nope"}, "unknown table 'nope'"),
        ({"columns": ["price", "colour"]}, "table bronze.trades has no column 'colour'"),
        ({"start": "2024-01-03", "end": "2024-01-02"}, "start 2024-01-03 is not before end"),
        ({"start": "yesterday"}, "bad start 'yesterday'"),
        ({"as_of": 3}, "as_of version 3 is outside the history of bronze.trades (versions 0 to 2)"),
        ({"as_of": -1}, "outside the history"),
        ({"as_of": "2001-01-01T00:00:00"}, "is before the first commit of bronze.trades"),
        ({"table": "ops.validations", "symbols": ["BTCUSDT"]}, "has no symbol column"),
        ({"table": "silver.bars_1s"}, "does not exist"),
    ],
)
def test_read_refuses_bad_input_with_one_clear_error(
    lk: Lake, kwargs: dict[str, Any], message: str
) -> None:
    table = kwargs.pop("table", "trades")
    with pytest.raises(lake.ReadError) as caught:
        lake.read(table, root=lk, **kwargs)
    assert isinstance(caught.value, ValueError)
    assert message in str(caught.value) and "\n" not in str(caught.value)


# --- bars -----------------------------------------------------------------------------------

SECONDS = 3 * 3600 + 17  # a little over three hours of seconds


def seconds(symbol: str = "BTCUSDT", market: str = "um", seed: int = 7) -> pl.DataFrame:
    """1-second bars with a quiet second (no trades, null prices) now and then."""
    rng = random.Random(seed)
    rows = []
    price, trade_id = 42000.0, 1000
    for i in range(SECONDS):
        quiet = rng.random() < 0.2
        n = 0 if quiet else rng.randint(1, 9)
        prices = [price + rng.uniform(-5, 5) for _ in range(n)]
        qty = [rng.uniform(0.001, 2) for _ in range(n)]
        price = prices[-1] if prices else price
        has_quote = rng.random() < 0.7
        rows.append(
            {
                "market": market,
                "symbol": symbol,
                "window_start": T0 + timedelta(seconds=i),
                "open": prices[0] if n else None,
                "high": max(prices) if n else None,
                "low": min(prices) if n else None,
                "close": prices[-1] if n else None,
                "volume": sum(qty),
                "quote_volume": sum(p * q for p, q in zip(prices, qty, strict=True)),
                "taker_buy_volume": sum(qty[::2]),
                "trade_count": n,
                "vwap": None,
                "first_trade_id": trade_id if n else None,
                "last_trade_id": trade_id + n - 1 if n else None,
                "bid_last": price - 0.1 if has_quote else None,
                "ask_last": price + 0.1 if has_quote else None,
                "bid_qty_last": rng.uniform(0, 5) if has_quote else None,
                "ask_qty_last": rng.uniform(0, 5) if has_quote else None,
                "quote_count": rng.randint(1, 20) if has_quote else 0,
                "ingested_at": T0,
                "batch_id": "t",
            }
        )
        trade_id += n
    return BARS_1S.conform(pl.DataFrame(rows, schema=BARS_1S.polars_schema()))


def plain_rollup(rows: list[dict[str, Any]], every_s: int) -> list[dict[str, Any]]:
    """What a bar is, written out by hand."""
    windows: dict[int, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: r["window_start"]):
        windows.setdefault(int(r["window_start"].timestamp()) // every_s, []).append(r)
    out = []
    for key, group in sorted(windows.items()):

        def present(name: str, group: list[dict[str, Any]] = group) -> list[Any]:
            return [r[name] for r in group if r[name] is not None]

        volume, quote = sum(present("volume")), sum(present("quote_volume"))
        out.append(
            {
                "market": group[0]["market"],
                "symbol": group[0]["symbol"],
                "window_start": datetime.fromtimestamp(key * every_s, tz=UTC),
                "open": (present("open") or [None])[0],
                "high": max(present("high"), default=None),
                "low": min(present("low"), default=None),
                "close": (present("close") or [None])[-1],
                "volume": volume,
                "quote_volume": quote,
                "taker_buy_volume": sum(present("taker_buy_volume")),
                "trade_count": sum(present("trade_count")),
                "vwap": quote / volume if volume > 0 else None,
                "first_trade_id": min(present("first_trade_id"), default=None),
                "last_trade_id": max(present("last_trade_id"), default=None),
                **{
                    c: (present(c) or [None])[-1]
                    for c in ("bid_last", "ask_last", "bid_qty_last", "ask_qty_last")
                },
                "quote_count": sum(present("quote_count")),
            }
        )
    return out


def assert_same_bars(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert list(g) == list(BARS_COLUMNS)
        for name in BARS_COLUMNS:
            if isinstance(e[name], float):
                assert g[name] == pytest.approx(e[name], rel=1e-12), (name, e["window_start"])
            else:
                assert g[name] == e[name], (name, e["window_start"])


@pytest.fixture
def bars_lake(lake_root: Path) -> Lake:
    out = Lake(str(lake_root))
    out.create(BARS_1S)
    out.merge(BARS_1S, seconds(), source="rest")
    out.merge(BARS_1S, seconds("ETHUSDT", seed=8), source="rest")  # another symbol, ignored
    out.merge(BARS_1S, seconds(market="spot", seed=9), source="rest")  # another market, ignored
    return out


@pytest.mark.parametrize(("interval", "every_s"), [("1s", 1), ("5s", 5), ("1m", 60), ("5m", 300)])
def test_bars_roll_seconds_up_like_a_plain_rollup(
    bars_lake: Lake, interval: str, every_s: int
) -> None:
    got = lake.bars("BTCUSDT", interval, root=bars_lake).collect()
    assert_same_bars(got.to_dicts(), plain_rollup(seconds().to_dicts(), every_s))


def test_bars_of_an_hour_and_a_day_between_bounds(bars_lake: Lake) -> None:
    rows = seconds().to_dicts()
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
    inside = [r for r in rows if start <= r["window_start"] < end]
    got = lake.bars("BTCUSDT", "1h", start=start, end=end, root=bars_lake).collect()
    assert_same_bars(got.to_dicts(), plain_rollup(inside, 3600))
    day = lake.bars("btcusdt", "1d", root=bars_lake).collect()
    assert_same_bars(day.to_dicts(), plain_rollup(rows, 86400))
    assert day["trade_count"].item() == sum(r["trade_count"] for r in rows)


@pytest.mark.parametrize("interval", ["1x", "0m", "m", "1 m5", "1mo"])
def test_bars_refuse_a_bad_interval(bars_lake: Lake, interval: str) -> None:
    with pytest.raises(lake.ReadError, match="bad interval"):
        lake.bars("BTCUSDT", interval, root=bars_lake)
