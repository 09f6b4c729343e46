"""Client-side helpers for the exchange tests: plain aiohttp/httpx/json/csv, nothing shared with
``lake/binance`` (a shared bug would pass every test and fail live)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def realdata(*parts: str) -> Path:
    """A file under ../shared/realdata, or skip the test when it is absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (../shared/realdata beside the checkout)")
    return path


def ms(text: str) -> int:
    """``2024-03-10T23:00:00`` (UTC) → Unix ms."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


async def collect(
    url: str,
    stop: Callable[[list[Any]], bool],
    *,
    limit_s: float = 20.0,
    send: list[dict[str, Any]] | None = None,
    raw: bool = False,
    ready: Callable[[], None] | None = None,
) -> list[Any]:
    """Receive frames from ``url`` until ``stop(frames)`` holds (JSON-decoded unless ``raw``).

    ``ready`` runs once the server has confirmed the subscriptions (a LIST_SUBSCRIPTIONS round
    trip), e.g. to start a frozen exchange clock without missing the first events.
    """
    frames: list[Any] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url, autoping=True) as ws:
        for msg in send or []:
            await ws.send_str(json.dumps(msg))
        if ready is not None:
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": "ready"}))
            while True:
                m = await ws.receive(timeout=limit_s)
                if m.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"closed before ready: {m}")
                if json.loads(m.data).get("id") == "ready":
                    break
                frames.append(m.data if raw else json.loads(m.data))
            ready()
        async with asyncio.timeout(limit_s):
            while not stop(frames):
                m = await ws.receive()
                if m.type != aiohttp.WSMsgType.TEXT:
                    break
                frames.append(m.data if raw else json.loads(m.data))
    return frames


async def listen(url: str, seconds: float) -> list[Any]:
    """Every JSON frame ``url`` sends within ``seconds`` (possibly none)."""
    frames: list[Any] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        try:
            async with asyncio.timeout(seconds):
                async for m in ws:
                    frames.append(json.loads(m.data))
        except TimeoutError:
            pass
    return frames


def run(coro: Any) -> Any:
    """Run a coroutine to completion from a sync test."""
    return asyncio.run(coro)


def unzip_csv(body: bytes) -> list[list[str]]:
    """Rows of the single CSV inside a Vision zip (header included if present)."""
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        (name,) = zf.namelist()
        text = zf.read(name).decode()
    return list(csv.reader(io.StringIO(text)))


def klines_from_aggs(aggs: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """1-minute bars recomputed from aggTrade payloads (``a,p,q,f,l,T,m``), keyed by open time."""
    bars: dict[int, dict[str, Any]] = {}
    for a in sorted(aggs, key=lambda x: x["a"]):
        t = a["T"] // 60_000 * 60_000
        p, q = Decimal(a["p"]), Decimal(a["q"])
        b = bars.setdefault(
            t,
            {
                "o": p,
                "h": p,
                "l": p,
                "v": Decimal(0),
                "q": Decimal(0),
                "n": 0,
                "V": Decimal(0),
                "Q": Decimal(0),
            },
        )
        b["h"], b["l"], b["c"] = max(b["h"], p), min(b["l"], p), p
        b["v"] += q
        b["q"] += p * q
        b["n"] += a["l"] - a["f"] + 1
        if not a["m"]:
            b["V"] += q
            b["Q"] += p * q
    return bars


def kline_as_dict(row: list[Any]) -> dict[str, Any]:
    """A REST/Vision kline row (12 fields) as Decimals keyed like the recomputed bars."""
    d = Decimal
    return {
        "o": d(row[1]),
        "h": d(row[2]),
        "l": d(row[3]),
        "c": d(row[4]),
        "v": d(row[5]),
        "q": d(row[7]),
        "n": int(row[8]),
        "V": d(row[9]),
        "Q": d(row[10]),
    }


def ws_kline_as_dict(k: dict[str, Any]) -> dict[str, Any]:
    """A WebSocket kline ``k`` object as Decimals keyed like the recomputed bars."""
    d = Decimal
    return {
        "o": d(k["o"]),
        "h": d(k["h"]),
        "l": d(k["l"]),
        "c": d(k["c"]),
        "v": d(k["v"]),
        "q": d(k["q"]),
        "n": k["n"],
        "V": d(k["V"]),
        "Q": d(k["Q"]),
    }
