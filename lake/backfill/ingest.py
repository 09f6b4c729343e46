"""One plan item, end to end: fetch, verify, parse, write, record (I/O).

A Vision file is downloaded and checked against its ``.CHECKSUM`` before anything reads it
(:meth:`lake.binance.vision.VisionClient.download`); its CSV's header row is detected, the rows
parsed (:func:`lake.binance.parse_vision.parse_vision_csv`) and written with the batch id
``vision:<key>:<sha256 prefix>``. A REST day is fetched under the shared weight budget. Either way
the outcome is recorded in ``ops.sources`` before the function returns, so a run killed at any
later point never fetches it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lake.backfill.model import Missing, PlanItem
from lake.backfill.plan import day_is_over
from lake.backfill.provenance import Outcome, Status, rest_batch_id, vision_batch_id
from lake.backfill.rest_fetch import fetch_day
from lake.backfill.write import ledger_for, write_rows
from lake.binance.parse_vision import csv_from_zip, has_header, parse_vision_csv
from lake.binance.rest import RestClient, RestError
from lake.binance.vision import Download, VisionClient, VisionError
from lake.storage import Lake
from lake.storage.lineage import content_hash


@dataclass
class Context:
    """What every item of one run shares."""

    lake: Lake
    now_ms: int
    download_dir: Path
    vision: VisionClient | None = None
    rest: RestClient | None = None
    parse_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))


async def ingest(ctx: Context, item: PlanItem) -> Outcome:
    """Run one item and record its outcome (an unexpected failure is recorded as ``error``)."""
    try:
        if item.source == "vision":
            out = await _vision(ctx, item)
        else:
            out = await _rest(ctx, item)
    except Exception as exc:  # one bad item must not sink the run; the next run retries it
        out = _outcome(item, "error", detail=f"{type(exc).__name__}: {exc}")
    await asyncio.to_thread(ledger_for(ctx.lake).record, [out])
    return out


def _outcome(item: PlanItem, status: Status, **fields: Any) -> Outcome:
    base = Outcome(item.key, item.series, item.source, item.period, item.first_day, status)
    return dataclasses.replace(base, size=item.size, last_modified=item.last_modified, **fields)


async def _vision(ctx: Context, item: PlanItem) -> Outcome:
    assert ctx.vision is not None
    try:
        got = await ctx.vision.download(item.key, ctx.download_dir)
    except VisionError as exc:
        return _outcome(item, "error", detail=str(exc))
    shas = {"sha256": got.expected_sha256, "computed_sha256": got.computed_sha256}
    if got.status != "ok" or got.path is None:
        tries = f" after {got.attempts} download(s)" if got.status != "missing" else ""
        detail = f"{got.detail}{tries}; not ingested"
        failed: Status = "missing"
        if got.status == "checksum_mismatch" or got.status == "truncated":
            failed = got.status
        return _outcome(item, failed, bytes=got.size, detail=detail, **shas)
    try:
        async with ctx.parse_slots:
            return await asyncio.to_thread(load_file, ctx.lake, item, got)
    finally:
        with contextlib.suppress(OSError):
            got.path.unlink()


def load_file(lake: Lake, item: PlanItem, got: Download) -> Outcome:
    """Parse a verified download and write its rows (blocking: run it in a worker thread)."""
    assert got.path is not None and got.computed_sha256 is not None
    s, sha = item.series, got.computed_sha256
    shas = {"sha256": got.expected_sha256, "computed_sha256": sha, "bytes": got.size}
    if item.reason == "changed" and item.previous_sha256 == sha:
        # LastModified moved, the bytes did not: the rows ingested before are these rows
        detail = f"listed anew ({_stamp(item)}), same sha256 {sha[:12]}…; rows kept"
        return _outcome(item, "ingested", detail=detail, batch_id=vision_batch_id(item.key, sha))
    batch = vision_batch_id(item.key, sha)
    try:
        data = csv_from_zip(got.path.read_bytes())
        end = data.find(b"\n")
        header = has_header(data[: end if end >= 0 else len(data)].decode(errors="replace"))
        frame = parse_vision_csv(
            data,
            market=s.market,
            dataset=s.dataset,
            symbol=s.symbol,
            batch_id=batch,
            interval=s.interval,
        )
    except ValueError as exc:
        return _outcome(item, "error", detail=f"unreadable: {exc}", **shas)
    del data
    result = write_rows(
        lake,
        s,
        frame,
        mode=item.mode,
        first_day=item.first_day,
        last_day=item.last_day,
        source="vision",
        batch_id=batch,
        note=item.key,
        append_if_new=True,
    )
    status: Status = "ingested"
    notes: list[str] = []
    if item.reason == "changed":
        status = "replaced"
        before = f"sha256 {item.previous_sha256[:12]}… → " if item.previous_sha256 else ""
        notes.append(f"{_stamp(item)}, {before}{sha[:12]}…; rows replaced ({result.deleted} gone)")
    elif item.mode == "replace":
        notes.append(item.reason)
    if header != s.expects_header(item.first_day):
        status = "header_drift" if status == "ingested" else status
        has = "a header row" if header else "no header row"
        rule = "none" if header else "one"
        notes.append(f"header drift: {has} where the archive's files of this date have {rule}")
    return _outcome(
        item, status, rows=frame.height, batch_id=batch, detail="; ".join(notes), **shas
    )


def _stamp(item: PlanItem) -> str:
    old = item.previous_last_modified
    new = item.last_modified
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    if old is None or new is None:
        return "LastModified changed"
    return f"LastModified {old.strftime(fmt)} → {new.strftime(fmt)}"


async def _rest(ctx: Context, item: PlanItem) -> Outcome:
    assert ctx.rest is not None
    s = item.series
    try:
        got = await fetch_day(ctx.rest, s, item.first_day, now_ms=ctx.now_ms)
    except (RestError, ValueError) as exc:
        return _outcome(item, "error", detail=f"REST: {exc}")
    batch = rest_batch_id(item.key, content_hash(got.frame))
    cost = f"{got.requests} × {got.route}, weight {got.weight}"
    async with ctx.parse_slots:
        await asyncio.to_thread(
            write_rows,
            ctx.lake,
            s,
            got.frame,
            mode=item.mode,
            first_day=item.first_day,
            last_day=item.last_day,
            source="rest",
            batch_id=batch,
            note=item.key,
        )
    complete = day_is_over(item.first_day, ctx.now_ms)
    status: Status = "ingested" if complete else "partial"
    detail = f"{item.reason}; {cost}" + ("" if complete else "; the day is not over")
    return _outcome(
        item,
        status,
        rows=got.frame.height,
        batch_id=batch,
        detail=detail,
        requests=got.requests,
        weight=got.weight,
    )


def missing_outcome(m: Missing) -> Outcome:
    """The ``ops.sources`` row of a daily file the archive skipped."""
    detail = f"not in the archive although later days are; {m.fallback}"
    return Outcome(m.key, m.series, "vision", "daily", m.day, "missing", detail=detail)
