"""Single-entry zip files like Binance's, padded to a size known before they are built.

An S3 listing must state each file's exact ``Size`` without building thousands of archives, so the
archive is padded up to a closed-form target: the deflate stream is sync-flushed (which leaves it
byte-aligned) and followed by empty stored blocks (``00 00 00 FF FF``, 5 bytes each) and one
final empty block; the last 0–4 bytes go into the archive comment. Every unzip tool reads the
result as the same CSV.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime

_EMPTY_BLOCK = b"\x00\x00\x00\xff\xff"
_FINAL_BLOCK = b"\x01\x00\x00\xff\xff"
_UNIX_FILE = 0o100644 << 16


def _dos_time(ms: int) -> tuple[int, int]:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return (dt.hour << 11) | (dt.minute << 5) | (dt.second // 2), (
        ((dt.year - 1980) << 9) | (dt.month << 5) | dt.day
    )


def overhead(name: str) -> int:
    """Bytes of zip structure around the compressed data of an entry called ``name``."""
    n = len(name.encode())
    return 30 + n + 46 + n + 22 + len(_FINAL_BLOCK)


def deflate(chunks: Iterable[bytes], level: int) -> tuple[bytes, int, int]:
    """Raw deflate of the chunks, sync-flushed so the stream ends byte-aligned (not final).

    Returns:
        (compressed bytes, CRC-32 of the input, input length).
    """
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    out, crc, size = [], 0, 0
    for chunk in chunks:
        out.append(c.compress(chunk))
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
    out.append(c.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(out), crc, size


def build_zip(
    name: str, data: Iterable[bytes], mtime_ms: int, target: int | None, level: int = 6
) -> bytes:
    """A zip holding the CSV chunks ``data`` as ``name``, exactly ``target`` bytes if reachable.

    Args:
        name: the entry name (``BTCUSDT-1m-2024-01-01.csv``).
        data: the CSV bytes, in chunks (a month of trades never sits in memory uncompressed).
        mtime_ms: the entry's modification time (the build time on Binance).
        target: the wanted archive size; None or too small leaves the archive unpadded.
        level: zlib compression level.
    """
    body, crc, size = deflate(data, level)
    comment = b""
    natural = len(body) + overhead(name)
    if target is not None and target >= natural:
        pad, rest = divmod(target - natural, len(_EMPTY_BLOCK))
        body += _EMPTY_BLOCK * pad
        comment = b" " * rest
    body += _FINAL_BLOCK
    t, d = _dos_time(mtime_ms)
    fname = name.encode()
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, t, d, crc, len(body), size, len(fname), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        (3 << 8) | 20,
        20,
        0,
        8,
        t,
        d,
        crc,
        len(body),
        size,
        len(fname),
        0,
        0,
        0,
        0,
        _UNIX_FILE,
        0,
    )
    cd_offset = len(local) + len(fname) + len(body)
    cd_size = len(central) + len(fname)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, cd_size, cd_offset, len(comment))
    return b"".join((local, fname, body, central, fname, eocd, comment))


def checksum_file(zip_name: str, digest: str) -> bytes:
    """A ``.CHECKSUM`` body: ``<sha256 hex><two spaces><zip name>\\n`` (BINANCE.md §3.3)."""
    return f"{digest}  {zip_name}\n".encode()


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
