"""The simulated market is a pure, deterministic function of (seed, symbol, time)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lake.exchange import klines as kl
from lake.exchange.config import ExchangeConfig, make_spec, parse_symbols
from lake.exchange.market import Market
from lake.exchange.prices import FUNDING_MS, MS_HOUR, next_funding_time
from lake.exchange.trades import first_agg_id, genesis_hour, hour_of_agg_id
from tests.exchange_helpers import ms

H = ms("2024-03-10T12:00:00") // MS_HOUR


def _market(seed: int = 42, **overrides: float) -> Market:
    return Market(
        replace(ExchangeConfig(), seed=seed, symbols=parse_symbols("BTCUSDT", **overrides))
    )


def test_same_seed_same_history_other_seed_other_history() -> None:
    a, b, c = _market(), _market(), _market(seed=7)
    spec = a.spec("um", "BTCUSDT")
    x, y, z = a.agg_hour(spec, H), b.agg_hour(spec, H), c.agg_hour(spec, H)
    for field in ("a", "price", "qty", "first", "last", "t_us", "e_ms", "maker"):
        assert np.array_equal(getattr(x, field), getattr(y, field))
    assert not np.array_equal(x.price, z.price)
    assert np.array_equal(x.a, z.a)  # ids depend only on the activity, not on the seed


def test_ids_are_closed_form_and_contiguous_across_hours() -> None:
    m = _market()
    spec = m.spec("um", "BTCUSDT")
    h1, h2 = m.agg_hour(spec, H), m.agg_hour(spec, H + 1)
    n = spec.aggs_per_hour
    assert len(h1) == len(h2) == n == 54_000
    assert h1.a[0] == first_agg_id(spec, H) and h2.a[0] == h1.a[-1] + 1
    assert hour_of_agg_id(spec, int(h2.a[123])) == H + 1
    assert h2.first[0] == h1.last[-1] + 1
    assert np.all(h1.first[1:] == h1.last[:-1] + 1)
    assert int((h1.last - h1.first + 1).sum()) == spec.trades_per_hour
    assert len(h1.trade_qty) == spec.trades_per_hour
    assert np.array_equal(np.add.reduceat(h1.trade_qty, h1.first - h1.first[0]), h1.qty)
    assert np.all(np.diff(h1.t_us) >= 0) and np.all(np.diff(h1.e_ms) >= 0)
    assert h1.e_ms[-1] <= h2.e_ms[0]  # event times never run backwards across hours
    assert np.all(h1.e_ms >= h1.t_ms)


def test_nothing_before_genesis() -> None:
    m = _market()
    spec = m.spec("spot", "BTCUSDT")
    assert len(m.agg_hour(spec, genesis_hour(spec) - 1)) == 0
    assert m.agg_hour(spec, genesis_hour(spec)).a[0] == spec.agg_id_origin


def test_activity_is_configurable() -> None:
    m = _market(agg_rate=2.0, trades_per_agg=1)
    spec = m.spec("um", "BTCUSDT")
    b = m.agg_hour(spec, H)
    assert len(b) == 7200 and np.all(b.first == b.last)


def test_minute_bars_match_trades_and_roll_up() -> None:
    m = _market()
    spec = m.spec("um", "BTCUSDT")
    b = m.agg_hour(spec, H)
    bars = m.minute_bars(spec, H)
    minute = (b.t_ms - H * MS_HOUR) // 60_000
    for i in (0, 17, 59):
        sel = minute == i
        assert bars.open[i] == b.price[sel][0] and bars.close[i] == b.price[sel][-1]
        assert bars.high[i] == b.price[sel].max() and bars.low[i] == b.price[sel].min()
        assert bars.volume[i] == b.qty[sel].sum()
        assert bars.quote[i] == (b.price[sel] * b.qty[sel]).sum()
        assert bars.count[i] == (b.last[sel] - b.first[sel] + 1).sum()
        assert bars.taker_base[i] == b.qty[sel & ~b.maker].sum()
    hour = m.trade_klines(spec, "1h", np.array([H * MS_HOUR]), (H + 2) * MS_HOUR)
    assert hour.volume[0] == bars.volume.sum() and hour.count[0] == spec.trades_per_hour
    assert hour.high[0] == bars.high.max() and hour.open[0] == bars.open[0]


def test_in_progress_bar_only_counts_trades_so_far() -> None:
    m = _market()
    spec = m.spec("um", "BTCUSDT")
    now = H * MS_HOUR + 30_500
    bar = m.trade_klines(spec, "1m", np.array([H * MS_HOUR]), now)
    b = m.agg_hour(spec, H)
    assert bar.count[0] == (b.last - b.first + 1)[b.t_ms <= now].sum()


def test_both_markets_share_one_price() -> None:
    m = Market(ExchangeConfig())
    spot, um = m.spec("spot", "BTCUSDT"), m.spec("um", "BTCUSDT")
    sp = m.agg_hour(spot, H).price[:100].mean() / 10**spot.price_dec
    fp = m.agg_hour(um, H).price[:100].mean() / 10**um.price_dec
    assert abs(sp / fp - 1) < 0.005
    assert spot.price_out_dec == 8 and um.price_out_dec == 2


def test_price_path_is_continuous_at_hour_boundaries() -> None:
    m = Market(ExchangeConfig())
    path = m.path(m.spec("um", "BTCUSDT"))
    t = H * MS_HOUR
    before, at = path.spot_mid(np.array([t - 1, t]))
    assert abs(before / at - 1) < 1e-4


def test_mark_price_next_funding_time_rolls_over_after_settlement() -> None:
    settle = ms("2023-04-05T00:00:00")
    assert settle % FUNDING_MS == 0
    # Observed: E=…800010 still shows T=…800000; a second later T is the next settlement.
    assert list(next_funding_time(np.array([settle - 999, settle + 10, settle + 1005]))) == [
        settle,
        settle,
        settle + FUNDING_MS,
    ]


def test_funding_settles_every_8h_with_jitter() -> None:
    m = Market(ExchangeConfig())
    spec = m.spec("um", "BTCUSDT")
    f = m.funding(spec, ms("2024-01-01T00:00:00"), ms("2024-01-31T23:59:59"))
    assert len(f.settle_ms) == 93
    assert np.all(f.settle_ms % FUNDING_MS == 0)
    assert np.all((f.funding_time - f.settle_ms >= 0) & (f.funding_time - f.settle_ms < 20))
    assert np.all(np.abs(f.rate) < 0.004)


def test_book_update_ids_increase_across_hours() -> None:
    m = Market(ExchangeConfig())
    spec = m.spec("um", "BTCUSDT")
    a, b = m.book_hour(spec, H), m.book_hour(spec, H + 1)
    u = np.concatenate([a.u, b.u])
    assert np.all(np.diff(u) > 0)
    assert np.all(a.ask > a.bid)


def test_liquidations_at_most_one_per_second() -> None:
    m = Market(ExchangeConfig())
    lq = m.liq_hour(m.spec("um", "BTCUSDT"), H)
    assert len(np.unique(lq.t_ms // 1000)) == len(lq) == 30


def test_sample_klines_count_samples() -> None:
    m = Market(ExchangeConfig())
    spec = m.spec("um", "BTCUSDT")
    opens = kl.opens_between(H * MS_HOUR, H * MS_HOUR + 120_000, "1m")
    assert list(m.sample_klines(spec, "mark", "1m", opens, 10**15).count) == [60, 60, 60]
    assert list(m.sample_klines(spec, "premium", "1m", opens, 10**15).count) == [12, 12, 12]


def test_intervals_align_like_binance() -> None:
    t = ms("2024-03-13T15:27:00")  # a Wednesday
    assert kl.bar_open(t, "1w") == ms("2024-03-11T00:00:00")  # weeks open on Monday
    assert kl.bar_open(t, "1M") == ms("2024-03-01T00:00:00")
    assert kl.next_open(ms("2024-02-01T00:00:00"), "1M") == ms("2024-03-01T00:00:00")
    assert kl.bar_open(t, "4h") == ms("2024-03-13T12:00:00")


def test_bad_symbols_are_refused() -> None:
    with pytest.raises(ValueError, match="bad symbol"):
        make_spec("um", "btc-usdt")
    with pytest.raises(ValueError, match="bad market"):
        parse_symbols("cm:BTCUSD")
    assert [s.market for s in parse_symbols("spot:SOLUSDT")] == ["spot"]


def test_bar_in_progress_never_sees_the_future() -> None:
    m = _market()
    spec = m.spec("um", "BTCUSDT")
    now = H * MS_HOUR + 90 * 60_000 + 30_000  # 01:30:30 into the day's bar
    day = m.trade_klines(spec, "1d", kl.bar_open(np.array([now]), "1d"), now)
    start = int(kl.bar_open(now, "1d"))
    aggs = m.aggs_between(spec, start, now)
    assert day.high[0] == aggs.price.max() and day.low[0] == aggs.price.min()
    assert day.close[0] == aggs.price[-1] and day.count[0] == (aggs.last - aggs.first + 1).sum()
    assert len(m.trade_klines(spec, "1m", np.array([now + 60_000]), now)) == 0
