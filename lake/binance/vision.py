"""Binance Vision I/O: the S3 XML listing, ``.CHECKSUM`` files and verified downloads (§3).

* :meth:`VisionClient.list` walks a prefix through the 1000-entry pages of the S3
  ``ListBucketResult`` with ``marker`` (``NextMarker``, else the last key of the page).
* :meth:`VisionClient.download` fetches the ``.CHECKSUM`` first, then streams the zip into a
  temporary file beside its destination while hashing it, and renames it into place only when
  the SHA-256 matches: a file at its final path is always verified, and no byte of an unverified
  download is ever parsed. A mismatch is retried; when it persists the download says whether the
  bytes are a truncated zip or a complete one with another checksum.

Concurrency is bounded by a semaphore shared by every download of one client. 5xx answers and
transport errors are retried with backoff; 404 means the file is missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import httpx

from lake.binance.endpoints import Endpoints
from lake.binance.rest import RetryPolicy
from lake.binance.vision_paths import checksum_key

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
CHUNK = 1 << 20

FetchStatus = Literal["ok", "missing", "checksum_mismatch", "truncated"]


class VisionError(RuntimeError):
    """The archive answered something unusable (after retries), e.g. a malformed listing."""


@dataclass(frozen=True)
class ListedFile:
    """One ``<Contents>`` entry of a listing: what the archive says the file is."""

    key: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class ListingPage:
    files: tuple[ListedFile, ...]
    prefixes: tuple[str, ...]
    truncated: bool
    next_marker: str | None


@dataclass(frozen=True)
class Download:
    """The outcome of one verified download.

    Attributes:
        path: the verified zip at its final path (``status == "ok"`` only).
        size: bytes received in the last attempt.
        attempts: downloads made (a mismatch is retried).
    """

    key: str
    status: FetchStatus
    path: Path | None
    size: int
    expected_sha256: str | None
    computed_sha256: str | None
    attempts: int
    detail: str = ""


def parse_last_modified(text: str) -> datetime:
    """``2026-04-01T08:06:34.000Z`` → an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def parse_listing(xml: bytes) -> ListingPage:
    """Parse one S3 ``ListBucketResult`` page (pure).

    Raises:
        VisionError: not a listing.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise VisionError(f"the listing is not XML: {exc}") from None
    if root.tag != f"{_NS}ListBucketResult":
        raise VisionError(f"unexpected listing answer <{root.tag.removeprefix(_NS)}>")
    files = tuple(
        ListedFile(
            key=c.findtext(f"{_NS}Key") or "",
            size=int(c.findtext(f"{_NS}Size") or 0),
            last_modified=parse_last_modified(c.findtext(f"{_NS}LastModified") or ""),
        )
        for c in root.iter(f"{_NS}Contents")
    )
    prefixes = tuple(e.findtext(f"{_NS}Prefix") or "" for e in root.iter(f"{_NS}CommonPrefixes"))
    truncated = (root.findtext(f"{_NS}IsTruncated") or "").strip().lower() == "true"
    marker = root.findtext(f"{_NS}NextMarker")
    if truncated and not marker:
        # S3 sends NextMarker only with a delimiter; otherwise the last key continues the walk.
        last = max([f.key for f in files] + list(prefixes), default="")
        marker = last or None
    return ListingPage(files, prefixes, truncated, marker if truncated else None)


def parse_checksum(body: bytes, key: str) -> str:
    """The SHA-256 of a ``.CHECKSUM`` body: ``<hex><two spaces><zip name>\\n`` (§3.3).

    Raises:
        VisionError: malformed, or naming another file.
    """
    text = body.decode(errors="replace").strip()
    digest, _, name = text.partition("  ")
    digest = digest.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise VisionError(f"{checksum_key(key)}: not a CHECKSUM file: {text[:80]!r}")
    if name and name.strip() != key.rsplit("/", 1)[-1]:
        raise VisionError(f"{checksum_key(key)}: names {name.strip()!r}, not the zip beside it")
    return digest


class VisionClient:
    """Async client for one archive (live or the built-in exchange). Use as an async context.

    Server errors (5xx) and dropped connections are retried ``attempts`` times with the REST
    client's backoff (:class:`RetryPolicy`, from ``retry_delay_s``); a zip whose digest does not
    match its CHECKSUM is downloaded again the same way.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        max_concurrent: int = 4,
        attempts: int = 3,
        retry_delay_s: float = 0.25,
        timeout_s: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.attempts = attempts
        self.retry = RetryPolicy(attempts=attempts, base_delay_s=retry_delay_s)
        self._slots = asyncio.Semaphore(max_concurrent)
        self._client = httpx.AsyncClient(
            timeout=timeout_s, transport=transport, headers={"User-Agent": "cryptolake"}
        )
        self.requests = 0
        self.pages = 0
        self.bytes = 0

    async def __aenter__(self) -> VisionClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def list(self, prefix: str) -> ListingPage:
        """One folder level under ``prefix`` (``delimiter=/``), every page merged.

        ``prefix`` may end inside a file name (``…/BTCUSDT-1m-2024``) to list only matching
        files. Pages are followed with ``marker`` until ``IsTruncated`` is false.
        """
        files: list[ListedFile] = []
        folders: list[str] = []
        marker: str | None = None
        while True:
            url = self.endpoints.listing_url(prefix, marker)
            page = parse_listing(await self._get(url, "listing"))
            files += page.files
            folders += page.prefixes
            self.pages += 1
            if not page.truncated or page.next_marker is None or page.next_marker == marker:
                return ListingPage(tuple(files), tuple(folders), False, None)
            marker = page.next_marker

    async def checksum(self, key: str) -> str | None:
        """The expected SHA-256 of ``key`` from its ``.CHECKSUM``; None when it is missing."""
        url = self.endpoints.vision_url(checksum_key(key))
        try:
            body = await self._get(url, "CHECKSUM")
        except _NotFound:
            return None
        return parse_checksum(body, key)

    async def download(self, key: str, dest_dir: Path) -> Download:
        """Download ``key`` to ``dest_dir/key`` after checking it against its ``.CHECKSUM``."""
        final = dest_dir / key
        final.parent.mkdir(parents=True, exist_ok=True)
        last: Download | None = None
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self.retry.delay(attempt - 1))
            async with self._slots:
                expected = await self.checksum(key)  # before a byte of the zip is fetched
                if expected is None:
                    return Download(key, "missing", None, 0, None, None, attempt, "no .CHECKSUM")
                tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part")
                try:
                    got = await self._fetch(key, tmp)
                    if got is None:
                        return Download(key, "missing", None, 0, expected, None, attempt, "404")
                    size, digest = got
                    if digest == expected:
                        # atomic: the final path only ever holds verified zips
                        os.replace(tmp, final)
                        return Download(key, "ok", final, size, expected, digest, attempt)
                    whole = zipfile.is_zipfile(tmp)
                finally:
                    tmp.unlink(missing_ok=True)
            status: FetchStatus = "checksum_mismatch" if whole else "truncated"
            why = "a complete zip" if whole else "not a complete zip (end record missing)"
            last = Download(
                key,
                status,
                None,
                size,
                expected,
                digest,
                attempt,
                f"sha256 {digest[:12]}… ≠ CHECKSUM {expected[:12]}…; {size:,} bytes, {why}",
            )
        assert last is not None
        return last

    async def _fetch(self, key: str, tmp: Path) -> tuple[int, str] | None:
        url = self.endpoints.vision_url(key)
        for attempt in range(1, self.attempts + 1):
            digest = hashlib.sha256()
            size = 0
            try:
                async with self._client.stream("GET", url) as resp:
                    self.requests += 1
                    if resp.status_code == 404:
                        return None
                    if resp.status_code >= 500 and attempt < self.attempts:
                        await asyncio.sleep(self.retry.delay(attempt))
                        continue
                    if resp.status_code != 200:
                        raise VisionError(f"GET {url}: HTTP {resp.status_code}")
                    # Writes land in the page cache; a thread hop per chunk costs more.
                    with open(tmp, "wb") as out:  # noqa: ASYNC230
                        async for chunk in resp.aiter_raw(CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                self.bytes += size
                return size, digest.hexdigest()
            except httpx.TransportError as exc:
                if attempt == self.attempts:
                    raise VisionError(f"GET {url}: {type(exc).__name__}: {exc}") from None
                await asyncio.sleep(self.retry.delay(attempt))
        raise VisionError(f"GET {url}: gave up after {self.attempts} attempts")

    async def _get(self, url: str, what: str) -> bytes:
        for attempt in range(1, self.attempts + 1):
            try:
                resp = await self._client.get(url)
                self.requests += 1
            except httpx.TransportError as exc:
                if attempt == self.attempts:
                    raise VisionError(f"{what} {url}: {type(exc).__name__}: {exc}") from None
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            if resp.status_code == 404:
                raise _NotFound(url)
            if resp.status_code == 200:
                return resp.content
            if resp.status_code < 500 or attempt == self.attempts:
                raise VisionError(f"{what} {url}: HTTP {resp.status_code}: {resp.text[:200]}")
            await asyncio.sleep(self.retry.delay(attempt))
        raise VisionError(f"{what} {url}: gave up after {self.attempts} attempts")


class _NotFound(Exception):
    pass
