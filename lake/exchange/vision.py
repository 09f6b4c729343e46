"""Vision routes: ``/data/<key>`` files with ``.CHECKSUM`` siblings, and the S3-style listing.

Zips are built on request in a worker thread (so streams keep flowing), cached, and padded to a
size that is known beforehand (see :mod:`lake.exchange.vision_zip`), which keeps every listing
``Size`` exact without building the files. Vision faults (missing day, checksum mismatch,
truncated zip, replaced file, header drift) are applied here. A symbol the loaded recording
replays has no files at all (404 ``NoSuchKey``, absent from the listing).
"""

from __future__ import annotations

import asyncio
import math
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from email.utils import formatdate
from xml.sax.saxutils import escape

from aiohttp import web

from lake.exchange import vision_data as vd
from lake.exchange import vision_tree as vt
from lake.exchange.faults import Fault
from lake.exchange.market import Lru
from lake.exchange.state import ExchangeState, state_of
from lake.exchange.vision_zip import build_zip, checksum_file, deflate, overhead, sha256

CACHE_BYTES = 512 * 1024 * 1024
_MARGIN = 1.08
_SLACK = 384  # bytes: covers a header row and the noise of small files


@dataclass(frozen=True, slots=True)
class Entry:
    """What the listing and the file route agree on for one key."""

    f: vt.VFile
    last_modified_ms: int
    header: bool
    size: int
    checksum_fault: bool
    keep: float | None


class VisionStore:
    """Built zips (LRU by bytes) and per-dataset size calibrations."""

    def __init__(self, state: ExchangeState) -> None:
        """Attach to ``state``."""
        self.state = state
        self._zips = Lru(CACHE_BYTES, lambda b: len(b) if isinstance(b, bytes) else 1)
        self._bpr: dict[tuple[object, ...], float] = {}
        self.oversize = 0  # files whose natural size beat the target (listing Size would be off)

    # --- sizes ------------------------------------------------------------------------------

    def level(self, f: vt.VFile) -> int:
        """zlib level: Binance-like 6, but 1 for big files so a day builds in seconds."""
        return 6 if vd.row_count(self.state.market, f) < 200_000 else 1

    def target(self, f: vt.VFile) -> int:
        """The zip's size, known without building it."""
        rows = vd.row_count(self.state.market, f)
        name = f.base + ".csv"
        # A seeded few percent on top, so sizes vary from file to file as real ones do.
        spread = zlib.crc32(f"{self.state.config.seed}:{f.key}".encode()) / 2**32 * 0.04
        return (
            math.ceil(rows * self._bytes_per_row(f) * (_MARGIN + spread)) + overhead(name) + _SLACK
        )

    def _bytes_per_row(self, f: vt.VFile) -> float:
        level = self.level(f)
        key = (f.market, f.symbol, f.dataset, f.interval, vd.micros(f), level)
        if key not in self._bpr:
            ref = self._reference(f)
            # Long bars print like hourly ones (the slack covers their longer volumes).
            iv = "1h" if f.interval in ("3d", "1w", "1mo") else f.interval
            sample = vt.VFile(f.market, "daily", f.dataset, f.symbol, iv, ref.isoformat())
            hours = 2 if f.dataset in vd.TRADE_LEVEL else 24  # a sample of the big datasets
            data, _, _ = deflate(vd.chunks(self.state.market, sample, False, hours), level)
            rows = max(1, vd.row_count(self.state.market, sample) * hours // 24)
            self._bpr[key] = max(len(data), 1) / rows
        return self._bpr[key]

    def _reference(self, f: vt.VFile) -> date:
        # A fixed day per (dataset, era), so every process computes the same sizes.
        spec = self.state.market.spec(f.market, f.symbol)
        lo, hi = vt.span(spec, f.dataset, "daily")
        want = date(2025, 6, 2) if vd.micros(f) else date(2024, 3, 2)
        return min(max(want, lo + timedelta(days=1)), hi)

    # --- files ------------------------------------------------------------------------------

    def entry(self, f: vt.VFile, now_ms: int) -> Entry | None:
        """The file as published at ``now_ms`` with faults applied; None if absent."""
        st = self.state
        # A recording never holds a whole day: a replayed symbol has no archive files.
        if st.replayed(f.market, f.symbol) or not vt.exists(st.config, f):
            return None
        published = vt.publish_ms(st.config, f)
        if published > now_ms:
            return None
        faults = [x for x in st.faults.of("vision.") if x.matches_file(f.key, f.info)]
        names = {x.name for x in faults}
        if "vision.missing" in names:
            return None
        modified = published
        for x in faults:
            if x.name == "vision.replace":
                at = _replace_at(st, x)
                if now_ms >= at:
                    modified = max(modified, at)
        header = vd.default_header(f) != ("vision.header" in names)
        size = self.target(f)
        keep = next(
            (float(x.get("keep", "0.5")) for x in faults if x.name == "vision.truncate"), None
        )
        if keep is not None:
            size = int(size * keep)
        return Entry(f, modified, header, size, "vision.checksum" in names, keep)

    def build(self, e: Entry) -> bytes:
        """The zip of an entry (cached)."""
        return self._zips.get((e.f.key, e.header, e.last_modified_ms), lambda: self._build(e))

    def _build(self, e: Entry) -> bytes:
        target = self.target(e.f)
        body = build_zip(
            e.f.base + ".csv",
            vd.chunks(self.state.market, e.f, e.header),
            e.last_modified_ms,
            target,
            self.level(e.f),
        )
        if len(body) != target:
            self.oversize += 1
        return body


def _replace_at(state: ExchangeState, fault: Fault) -> int:
    at = fault.at_ms
    if at is None:
        at = state.faults.installed_ms.get(id(fault), state.started_ms)
    return at


def store_of(state: ExchangeState) -> VisionStore:
    """The Vision store of a running exchange."""
    if state.vision is None:
        state.vision = VisionStore(state)
    return state.vision


def _no_such_key(key: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
        f"<Message>The specified key does not exist.</Message><Key>{escape(key)}</Key></Error>"
    )
    return web.Response(status=404, text=body, content_type="application/xml")


async def vision_file(request: web.Request) -> web.StreamResponse:
    """``GET/HEAD /data/<key>``: a zip or its ``.CHECKSUM``."""
    state = state_of(request)
    state.stats.vision_requests += 1
    key = "data/" + request.match_info["key"]
    parsed = vt.parse_key(key)
    store = store_of(state)
    entry = store.entry(parsed[0], state.clock.now_ms()) if parsed else None
    if parsed is None or entry is None:
        return _no_such_key(key)
    body = await asyncio.get_running_loop().run_in_executor(None, store.build, entry)
    if parsed[1]:
        digest = sha256(body + b"corrupt" if entry.checksum_fault else body)
        payload, ctype = checksum_file(entry.f.base + ".zip", digest), "text/plain"
    else:
        payload, ctype = body, "application/zip"
        if entry.keep is not None:
            payload = body[: entry.size]
    resp = web.Response(body=payload, content_type=ctype)
    resp.headers["Last-Modified"] = formatdate(entry.last_modified_ms / 1000, usegmt=True)
    return resp
