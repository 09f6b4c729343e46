"""The exchange's WebSocket send rate (``pytest -m benchmark``; ``python -m bench exchange``)."""

from __future__ import annotations

import pytest

from bench.bench_exchange import TARGET, measure

pytestmark = [pytest.mark.benchmark, pytest.mark.integration, pytest.mark.slow]


def test_server_sustains_150k_messages_per_second_to_one_client() -> None:
    rates = measure("/um/market/ws/btcusdt@aggTrade")
    assert rates["send"] >= TARGET and rates["receive"] >= TARGET, rates
