"""The S3-style listing of the Vision archive: ``/vision?delimiter=/&prefix=…&marker=…``.

Folders are computed, not stored: the tree follows the availability matrix, files appear once
published on the exchange clock, and each ``Size`` is the closed-form size of the zip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from xml.sax.saxutils import escape

from aiohttp import web

from lake.exchange import vision_tree as vt
from lake.exchange.state import ExchangeState, state_of
from lake.exchange.vision import store_of
from lake.exchange.vision_zip import checksum_file


def _children(state: ExchangeState, folder: str, now_ms: int) -> list[tuple[str, int, int]]:
    """Sorted children of a folder: (name, size, last modified); dirs end in "/" (size -1)."""
    parts = folder.split("/")[:-1]
    dirs: list[str] = []
    if folder == "":
        dirs = ["data/"]
    elif parts == ["data"]:
        dirs = ["futures/", "spot/"]
    elif parts == ["data", "futures"]:
        dirs = ["um/"]
    elif parts in (["data", "spot"], ["data", "futures", "um"]):
        dirs = ["daily/", "monthly/"]
    else:
        market = "spot" if parts[1:2] == ["spot"] else "um"
        rest = parts[2:] if market == "spot" else parts[3:]
        if (
            not rest
            or rest[0] not in ("daily", "monthly")
            or parts[:2] not in (["data", "spot"], ["data", "futures"])
        ):
            return []
        freq = rest[0]
        if len(rest) == 1:
            dirs = [d + "/" for d in vt.datasets(market, freq)]
        elif len(rest) == 2:
            if rest[1] not in vt.datasets(market, freq):
                return []
            dirs = [s.symbol + "/" for s in state.simulated_specs(market)]
        elif len(rest) == 3 and rest[1] in vt.KLINE_TYPES:
            dirs = [i + "/" for i in vt.intervals(market, freq)]
        elif len(rest) in (3, 4):
            return _files(
                state, market, freq, rest[1], rest[2], rest[3] if len(rest) == 4 else "", now_ms
            )
    return [(d, -1, 0) for d in sorted(dirs)]


def _files(
    state: ExchangeState, market: str, freq: str, ds: str, sym: str, iv: str, now_ms: int
) -> list[tuple[str, int, int]]:
    spec = state.config.spec(market, sym)
    if spec is None or ds not in vt.datasets(market, freq):
        return []
    if (ds in vt.KLINE_TYPES) != bool(iv) or (iv and iv not in vt.intervals(market, freq)):
        return []
    store = store_of(state)
    out = []
    for p in vt.periods(state.config, spec, ds, freq, iv, now_ms):
        e = store.entry(vt.VFile(market, freq, ds, sym, iv, p), now_ms)
        if e is None:
            continue
        zip_name = e.f.base + ".zip"
        out.append((zip_name, e.size, e.last_modified_ms))
        out.append(
            (zip_name + ".CHECKSUM", len(checksum_file(zip_name, "0" * 64)), e.last_modified_ms)
        )
    return out


async def vision_list(request: web.Request) -> web.StreamResponse:
    """``GET /vision?delimiter=/&prefix=…&marker=…``: an S3 ``ListBucketResult`` page."""
    state = state_of(request)
    q = request.query
    try:
        max_keys = max(0, min(1000, int(q.get("max-keys", "1000"))))
    except ValueError:
        max_keys = 1000
    args = (q.get("prefix", ""), q.get("delimiter", ""), q.get("marker", ""), max_keys)
    now = state.clock.now_ms()
    # Off the event loop: the first listing of a dataset calibrates its file sizes.
    text = await asyncio.get_running_loop().run_in_executor(None, _page, state, *args, now)
    return web.Response(text=text, content_type="application/xml")


def _page(
    state: ExchangeState, prefix: str, delimiter: str, marker: str, max_keys: int, now: int
) -> str:
    def walk(folder: str) -> Iterator[tuple[str, int, int]]:
        for name, size, lm in _children(state, folder, now):
            full = folder + name
            if not (full.startswith(prefix) or prefix.startswith(full)):
                continue
            if size < 0:
                if delimiter == "/" and full.startswith(prefix):
                    yield full, size, lm
                else:
                    yield from walk(full)
            elif full.startswith(prefix):
                yield full, size, lm

    page: list[tuple[str, int, int]] = []
    truncated = False
    for item in walk(prefix[: prefix.rfind("/") + 1]):
        if item[0] <= marker:
            continue
        if len(page) == max_keys:
            truncated = True
            break
        page.append(item)
    xml = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
        f"<Name>data.binance.vision</Name><Prefix>{escape(prefix)}</Prefix>",
        f"<Marker>{escape(marker)}</Marker>",
    ]
    if truncated and delimiter and page:
        xml.append(f"<NextMarker>{escape(page[-1][0])}</NextMarker>")
    xml.append(f"<MaxKeys>{max_keys}</MaxKeys>")
    if delimiter:
        xml.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
    xml.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
    for key, size, lm in page:
        if size >= 0:
            xml += [
                f"<Contents><Key>{escape(key)}</Key>",
                f"<LastModified>{vt.last_modified(lm)}</LastModified><Size>{size}</Size>",
                "<StorageClass>STANDARD</StorageClass></Contents>",
            ]
    xml += [
        f"<CommonPrefixes><Prefix>{escape(k)}</Prefix></CommonPrefixes>"
        for k, n, _ in page
        if n < 0
    ]
    xml.append("</ListBucketResult>")
    return "".join(xml)
