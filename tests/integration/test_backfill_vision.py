"""The Vision client against the built-in archive: listing pages, verified downloads, faults."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from lake.binance.endpoints import Endpoints
from lake.binance.vision import Download, ListingPage, VisionClient
from lake.exchange.clock import Clock
from tests.exchange_helpers import ms

pytestmark = pytest.mark.integration

FOLDER = "data/futures/um/daily/klines/BTCUSDT/1m/"
KEY = FOLDER + "BTCUSDT-1m-2024-03-05.zip"


@pytest.fixture
def archive(exchange_factory: Any) -> Any:
    return exchange_factory(
        clock=Clock(ms("2025-02-03T12:00:00"), speed=0),
        symbols="um:BTCUSDT",
        symbol_overrides={"agg_rate": 0.02, "book_rate": 0.02, "liq_per_hour": 2},
    )


def listing(url: str, prefix: str) -> tuple[ListingPage, int]:
    async def go() -> tuple[ListingPage, int]:
        async with VisionClient(Endpoints.for_exchange(url)) as v:
            return await v.list(prefix), v.pages

    return asyncio.run(go())


def download(url: str, key: str, dest: Path) -> Download:
    async def go() -> Download:
        async with VisionClient(Endpoints.for_exchange(url), retry_delay_s=0.01) as v:
            return await v.download(key, dest)

    return asyncio.run(go())


def test_listing_follows_the_1000_entry_pages(archive: Any) -> None:
    page, pages = listing(archive.base_url, FOLDER)
    keys = [f.key for f in page.files]
    # 2020-01-01 .. 2025-02-02: 1,860 days, a zip and a CHECKSUM each
    assert len(keys) == 2 * 1860 and pages == 4
    assert keys == sorted(set(keys))
    assert keys[0] == FOLDER + "BTCUSDT-1m-2020-01-01.zip"
    assert keys[-1] == FOLDER + "BTCUSDT-1m-2025-02-02.zip.CHECKSUM"
    year, one = listing(archive.base_url, FOLDER + "BTCUSDT-1m-2024")
    assert len(year.files) == 2 * 366 and one == 1
    sizes = {f.key: f.size for f in year.files}
    body = httpx.get(f"{archive.base_url}/{KEY}").content
    assert sizes[KEY] == len(body)
    folders, _ = listing(archive.base_url, "data/futures/um/daily/")
    assert "data/futures/um/daily/metrics/" in folders.prefixes and not folders.files


def test_a_download_is_verified_then_renamed_into_place(archive: Any, tmp_path: Path) -> None:
    got = download(archive.base_url, KEY, tmp_path)
    assert got.status == "ok" and got.attempts == 1 and got.path == tmp_path / KEY
    data = got.path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == got.computed_sha256 == got.expected_sha256
    assert got.size == len(data)
    assert [p.name for p in got.path.parent.iterdir()] == [got.path.name]  # no .part left


@pytest.mark.parametrize(
    ("fault", "status", "attempts"),
    [
        ("vision.checksum:date=2024-03-05", "checksum_mismatch", 3),
        ("vision.truncate:date=2024-03-05,keep=0.5", "truncated", 3),
        ("vision.missing:date=2024-03-05", "missing", 1),
    ],
)
def test_a_bad_file_never_reaches_its_final_path(
    archive: Any, tmp_path: Path, fault: str, status: str, attempts: int
) -> None:
    archive.add_faults(fault)
    before = archive.stats.vision_requests
    got = download(archive.base_url, KEY, tmp_path)
    assert (got.status, got.attempts, got.path) == (status, attempts, None)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    # each attempt fetches the CHECKSUM first, then the zip (a missing CHECKSUM stops there)
    assert archive.stats.vision_requests - before == (1 if status == "missing" else 2 * attempts)
