"""Endpoints, REST limits and Vision paths: data tables and the few rules read from them."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from lake.binance import limits
from lake.binance.endpoints import (
    KIND_TABLE,
    Endpoints,
    split_stream,
    stream_kind,
    stream_name,
    ws_route,
)
from lake.binance.vision_paths import (
    checksum_key,
    vision_available,
    vision_file_name,
    vision_key,
    vision_prefix,
)
from lake.schemas import TABLES
from lake.settings import SPOT_STREAMS, UM_STREAMS

LIVE = Endpoints.for_exchange("live")
SIM = Endpoints.for_exchange("http://127.0.0.1:8765")


def test_live_hosts_are_binance() -> None:
    assert (
        LIVE.ws_raw_url("spot", "btcusdt@trade") == "wss://stream.binance.com:9443/ws/btcusdt@trade"
    )
    assert (
        LIVE.ws_combined_url("um_public", ["btcusdt@bookTicker", "ethusdt@bookTicker"])
        == "wss://fstream.binance.com/public/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker"
    )
    assert LIVE.ws_raw_url("um_market", "btcusdt@aggTrade") == (
        "wss://fstream.binance.com/market/ws/btcusdt@aggTrade"
    )
    assert LIVE.rest_url("spot", "/api/v3/klines") == "https://api.binance.com/api/v3/klines"
    assert LIVE.rest_url("um", "/futures/data/openInterestHist") == (
        "https://fapi.binance.com/futures/data/openInterestHist"
    )
    key = "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-08.zip"
    assert LIVE.vision_url(key) == f"https://data.binance.vision/{key}"
    assert LIVE.listing_url("data/spot/daily/klines/") == (
        "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"
        "?delimiter=/&prefix=data/spot/daily/klines/"
    )


def test_base_url_serves_the_same_paths_under_fixed_prefixes() -> None:
    assert SIM.ws_raw_url("spot", "btcusdt@trade") == "ws://127.0.0.1:8765/spot/ws/btcusdt@trade"
    assert SIM.ws_combined_url("spot", ["a@trade", "b@trade"]) == (
        "ws://127.0.0.1:8765/spot/stream?streams=a@trade/b@trade"
    )
    assert (
        SIM.ws_raw_url("um_public", "x@bookTicker")
        == "ws://127.0.0.1:8765/um/public/ws/x@bookTicker"
    )
    assert (
        SIM.ws_raw_url("um_market", "x@kline_1m") == "ws://127.0.0.1:8765/um/market/ws/x@kline_1m"
    )
    assert SIM.rest_url("spot", "/api/v3/klines") == "http://127.0.0.1:8765/api/v3/klines"
    assert SIM.rest_url("um", "/fapi/v1/klines") == "http://127.0.0.1:8765/fapi/v1/klines"
    assert SIM.rest_url("um", "/futures/data/takerlongshortRatio") == (
        "http://127.0.0.1:8765/futures/data/takerlongshortRatio"
    )
    assert SIM.vision_url("data/x.zip") == "http://127.0.0.1:8765/data/x.zip"
    assert SIM.listing_url("data/spot/", marker="data/spot/a") == (
        "http://127.0.0.1:8765/vision?delimiter=/&prefix=data/spot/&marker=data/spot/a"
    )


@pytest.mark.parametrize(
    ("route", "stream"),
    [("spot", "btcusdt@trade"), ("um_public", "btcusdt@bookTicker"), ("um_market", "a@forceOrder")],
)
def test_live_and_base_url_differ_only_in_host(route: str, stream: str) -> None:
    live = LIVE.ws_raw_url(route, stream)  # type: ignore[arg-type]
    sim = SIM.ws_raw_url(route, stream)  # type: ignore[arg-type]
    live_path = live.split("://", 1)[1].split("/", 1)[1]
    sim_path = sim.split("://", 1)[1].split("/", 1)[1]
    assert sim_path.endswith(live_path)
    for path in ("/api/v3/klines", "/fapi/v1/aggTrades"):
        market = "spot" if path.startswith("/api") else "um"
        assert LIVE.rest_url(market, path).endswith(path)  # type: ignore[arg-type]
        assert SIM.rest_url(market, path).endswith(path)  # type: ignore[arg-type]


def test_https_base_url_uses_wss_and_trailing_slash_is_dropped() -> None:
    e = Endpoints.for_exchange("https://example.test:443/")
    assert e.spot_ws == "wss://example.test:443/spot"
    assert e.um_rest == "https://example.test:443"


@pytest.mark.parametrize("bad", ["sim", "ftp://x", "http://h/path", "", "LIVE"])
def test_for_exchange_rejects_what_it_cannot_resolve(bad: str) -> None:
    with pytest.raises(ValueError, match="not an exchange"):
        Endpoints.for_exchange(bad)


def test_endpoints_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        LIVE.spot_ws = "x"  # type: ignore[misc]


def test_route_selection() -> None:
    assert ws_route("spot", "bookTicker") == "spot"
    assert ws_route("spot", "trade") == "spot"
    assert ws_route("um", "bookTicker") == "um_public"
    assert ws_route("um", "depth@100ms") == "um_public"
    for name in ("aggTrade", "trade", "markPrice@1s", "kline_1m", "forceOrder"):
        assert ws_route("um", name) == "um_market"
    with pytest.raises(ValueError, match="not a spot stream"):
        ws_route("spot", "markPrice@1s")
    with pytest.raises(ValueError):
        ws_route("um", "nonsense")


def test_every_configurable_stream_is_known_and_routed() -> None:
    for name in SPOT_STREAMS:
        ws_route("spot", name)
    for name in UM_STREAMS:
        ws_route("um", name)
    for kind, table in KIND_TABLE.items():
        assert table is None or f"bronze.{table}" in TABLES, kind


def test_stream_names() -> None:
    assert stream_name("BTCUSDT", "markPrice@1s") == "btcusdt@markPrice@1s"
    assert split_stream("btcusdt@markPrice@1s") == ("btcusdt", "markPrice@1s")
    assert split_stream("!forceOrder@arr") == ("", "!forceOrder@arr")
    assert stream_kind("kline_1m") == "kline"
    assert stream_kind("kline_1h@+08:00") == "kline"
    assert stream_kind("!forceOrder@arr") == "force_order"
    assert stream_kind("depth20@100ms") == "depth"
    assert stream_kind("kline_7m") is None


def test_plan_connections_groups_by_route_and_caps_streams() -> None:
    symbols = [f"S{i}USDT" for i in range(150)]
    plan = SIM.plan_connections("um", symbols, ["bookTicker", "aggTrade", "trade"], max_streams=200)
    by_route: dict[str, int] = {}
    for conn in plan:
        assert len(conn.streams) <= 200
        assert conn.url.startswith(SIM.ws_base(conn.route) + "/stream?streams=")
        assert conn.url.endswith("/".join(conn.streams))
        by_route[conn.route] = by_route.get(conn.route, 0) + len(conn.streams)
    assert by_route == {"um_public": 150, "um_market": 300}
    assert [len(c.streams) for c in plan] == [150, 200, 100]
    assert plan[0].streams[0] == "s0usdt@bookTicker"


def test_kline_weights_by_limit() -> None:
    k = limits.UM_KLINES
    assert [k.weight_for(n) for n in (1, 99, 100, 499, 500, 1000, 1001, 1500)] == [
        1,
        1,
        2,
        2,
        5,
        5,
        10,
        10,
    ]
    assert k.weight_for() == 5  # default limit 500
    assert limits.SPOT_KLINES.weight_for(1000) == 2
    assert limits.UM_AGG_TRADES.weight_for(1000) == 20
    assert limits.UM_PREMIUM_INDEX.weight_all_symbols == 10


def test_best_limit_maximises_rows_per_weight() -> None:
    # [100,500) costs 2: 499 rows/2 = 249.5 per weight beats 1000/5 = 200 and 1500/10 = 150.
    for ep in (limits.UM_KLINES, limits.UM_MARK_PRICE_KLINES, limits.UM_INDEX_PRICE_KLINES):
        assert ep.best_limit() == 499
    assert limits.SPOT_KLINES.best_limit() == 1000
    assert limits.UM_AGG_TRADES.best_limit() == 1000
    assert limits.UM_FUNDING_RATE.best_limit() == 1000
    assert limits.UM_OPEN_INTEREST_HIST.best_limit() == 500
    for ep in limits.REST_ENDPOINTS:
        if ep.limit_max is not None:
            best = ep.best_limit()
            ratio = best / max(ep.weight_for(best), 1e-9)
            assert all(n / max(ep.weight_for(n), 1e-9) <= ratio for n in range(1, ep.limit_max + 1))


def test_budgets_and_endpoint_table() -> None:
    assert limits.WEIGHT_BUDGET_PER_MINUTE == {"spot": 6000, "um": 2400}
    assert limits.UM_INDEX_PRICE_KLINES.symbol_param == "pair"
    assert limits.kline_endpoint("um", "premium") is limits.UM_PREMIUM_INDEX_KLINES
    with pytest.raises(ValueError, match="no mark klines on spot"):
        limits.kline_endpoint("spot", "mark")
    paths = [ep.path for ep in limits.REST_ENDPOINTS]
    assert len(paths) == len(set((ep.market, ep.path) for ep in limits.REST_ENDPOINTS))
    for ep in limits.METRICS_ENDPOINTS.values():
        assert ep.path.startswith("/futures/data/") and ep.quota == limits.FUTURES_DATA_QUOTA


def test_vision_keys() -> None:
    d = date(2024, 1, 1)
    assert vision_key("um", "klines", "BTCUSDT", "daily", d, "1m") == (
        "data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    )
    assert vision_key("um", "markPriceKlines", "btcusdt", "daily", d, "1m") == (
        "data/futures/um/daily/markPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    )
    assert vision_key("um", "fundingRate", "BTCUSDT", "monthly", date(2026, 4, 1)) == (
        "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-04.zip"
    )
    assert vision_key("spot", "aggTrades", "BTCUSDT", "daily", date(2026, 5, 8)) == (
        "data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2026-05-08.zip"
    )
    assert vision_file_name("klines", "BTCUSDT", "monthly", d, "1M") == "BTCUSDT-1mo-2024-01.zip"
    assert vision_prefix("spot", "klines", "BTCUSDT", "daily", "1h") == (
        "data/spot/daily/klines/BTCUSDT/1h/"
    )
    assert checksum_key("a/b.zip") == "a/b.zip.CHECKSUM"
    with pytest.raises(ValueError, match="needs an interval"):
        vision_key("um", "klines", "BTCUSDT", "daily", d)
    with pytest.raises(ValueError, match="unknown Vision dataset"):
        vision_key("um", "candles", "BTCUSDT", "daily", d)


def test_vision_keys_match_the_real_archive_layout() -> None:
    # The keys of the real files kept in shared/realdata (paths only; no file is read).
    assert vision_key("cm", "aggTrades", "BTCUSD_PERP", "daily", date(2026, 5, 8)) == (
        "data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip"
    )
    assert vision_key("spot", "klines", "BTCUSDT", "daily", date(2026, 5, 9), "1h") == (
        "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-09.zip"
    )


def test_vision_availability_rules() -> None:
    d = date(2024, 1, 1)
    assert vision_available("um", "fundingRate", "monthly")
    assert not vision_available("um", "fundingRate", "daily")
    assert vision_available("um", "metrics", "daily")
    assert not vision_available("um", "metrics", "monthly")
    for ds in ("markPriceKlines", "indexPriceKlines", "premiumIndexKlines", "fundingRate"):
        assert not vision_available("spot", ds, "monthly")
    assert vision_available("um", "bookTicker", "daily", date(2024, 3, 30))
    assert not vision_available("um", "bookTicker", "daily", date(2024, 3, 31))
    assert vision_available("um", "liquidationSnapshot", "daily", date(2024, 3, 31))
    assert not vision_available("um", "liquidationSnapshot", "daily", date(2024, 4, 1))
    assert vision_available("spot", "klines", "daily", d, "1s")
    assert not vision_available("um", "klines", "daily", d, "1s")
    assert not vision_available("spot", "klines", "monthly", d, "1w")
    assert vision_available("um", "klines", "monthly", d, "1M")
    assert vision_available("spot", "trades", "daily", d)
