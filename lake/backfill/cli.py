"""``cryptolake backfill``: history from Vision archives, then REST for the tail.

Module-level imports stay light (typer, rich) so ``cryptolake --help`` is fast; the work is
imported inside the command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lake.clikit import (
    EXIT_FAILURE,
    console,
    emit_json,
    fail,
    open_lake_for_reading,
    open_lake_for_writing,
    probe_exchange,
    settings_with_exchange,
)

if TYPE_CHECKING:
    from lake.backfill.plan import Plan
    from lake.backfill.provenance import Outcome
    from lake.backfill.request import BackfillRequest
    from lake.backfill.run import Summary
    from lake.settings import Settings
    from lake.storage import Lake


def backfill(
    ctx: typer.Context,
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Comma-separated symbols (default: config).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="First UTC day, YYYY-MM-DD (default: config).")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Last UTC day, inclusive (default: config, else yesterday)."),
    ] = None,
    exchange: Annotated[
        str | None, typer.Option("--exchange", help="sim, live or a base URL (default: config).")
    ] = None,
    markets: Annotated[str, typer.Option("--markets", help="spot, um or spot,um.")] = "spot,um",
    datasets: Annotated[
        str | None,
        typer.Option("--datasets", help="Vision dataset names, comma-separated (default: all)."),
    ] = None,
    source: Annotated[
        str, typer.Option("--source", help="auto (Vision, then REST), vision or rest.")
    ] = "auto",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; fetch and write nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout only.")] = False,
) -> None:
    """Backfill history: Vision files (verified) first, REST for the days they lack.

    The options, the configuration and the root are checked first, then the exchange (it must
    answer within seconds and list every symbol); the lake is created only then.
    """
    import asyncio

    from lake.backfill.request import RequestError, request_from_settings
    from lake.binance.rest import RestError
    from lake.binance.vision import VisionError
    from lake.simulator import SimulatorError, exchange_url

    settings = settings_with_exchange(ctx, exchange, writable=not dry_run)
    try:
        request = request_from_settings(
            settings,
            start=start,
            end=end,
            symbols=symbols,
            markets=markets,
            datasets=datasets,
            source=source,
        )
    except RequestError as exc:
        fail(str(exc))
    lake = open_lake_for_reading(ctx) if dry_run else open_lake_for_writing(ctx)
    wanted = request.symbols_by_market()
    try:
        with exchange_url(settings, wanted) as url:
            probe_exchange(url, request.markets, symbols=wanted)
            summary = asyncio.run(_run(settings, lake, url, request, dry_run, as_json))
    except SimulatorError as exc:
        fail(str(exc), code=EXIT_FAILURE)
    except RequestError as exc:
        fail(str(exc))
    except (RestError, VisionError) as exc:  # the exchange stopped answering mid-run
        fail(f"backfill stopped: {exc}", code=EXIT_FAILURE)
    if summary is not None and summary.failed:
        raise typer.Exit(EXIT_FAILURE)


async def _run(
    settings: Settings,
    lake: Lake,
    url: str,
    request: BackfillRequest,
    dry_run: bool,
    as_json: bool,
) -> Summary | None:
    from lake.backfill.run import Options, execute, make_plan
    from lake.binance.rest import RestClient
    from lake.binance.vision import VisionClient

    endpoints = settings.endpoints(url)
    max_dl = settings.backfill.max_concurrent_downloads
    vision_client = VisionClient(endpoints, max_concurrent=max_dl)
    async with vision_client as vision, RestClient(endpoints) as rest:
        plan = await make_plan(lake, request, vision=vision, rest=rest)
        if dry_run:
            _print_plan(plan, as_json)
            return None
        if not as_json:
            console.print(f"backfill {request.describe()} from [bold]{url}[/] into {lake.root}")
        options = Options(max_downloads=max_dl)
        if as_json or not plan.items:
            summary = await execute(lake, plan, vision=vision, rest=rest, options=options)
        else:
            with _Bars(plan) as bars:
                summary = await execute(
                    lake, plan, vision=vision, rest=rest, options=options, progress=bars
                )
    _report(summary, as_json)
    return summary


class _Bars:
    """rich progress bars: files, bytes, REST days; rows and weight used alongside."""

    def __init__(self, plan: Plan) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.n_files, self.n_rest = len(plan.vision_items), len(plan.rest_items)
        self.total_mib = plan.bytes / 2**20
        self.files = self.progress.add_task("files", total=max(1, self.n_files), info="")
        self.bytes = self.progress.add_task("bytes", total=max(1, plan.bytes), info="")
        self.rest = self.progress.add_task("REST days", total=max(1, self.n_rest), info="")
        self.done_files = self.done_rest = self.rows = self.got = 0
        self._show(0)

    def _show(self, weight: int) -> None:
        update = self.progress.update
        update(self.files, info=f"{self.done_files:,}/{self.n_files:,} · rows {self.rows:,}")
        update(self.bytes, info=f"{self.got / 2**20:,.1f}/{self.total_mib:,.1f} MiB")
        update(self.rest, info=f"{self.done_rest:,}/{self.n_rest:,} · weight used {weight:,}")

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def planned(self, plan: Plan) -> None:
        return None

    def done(self, outcome: Outcome, weight_used: int) -> None:
        if outcome.status == "missing":
            return
        self.rows += outcome.rows
        if outcome.source == "vision":
            self.done_files += 1
            self.got += outcome.size or outcome.bytes
            self.progress.update(self.files, completed=self.done_files)
            self.progress.update(self.bytes, completed=self.got)
        else:
            self.done_rest += 1
            self.progress.update(self.rest, completed=self.done_rest)
        self._show(weight_used)
        if outcome.status not in ("ingested", "partial"):
            self.progress.console.print(outcome.line(), markup=False, highlight=False)


def _print_plan(plan: Plan, as_json: bool) -> None:
    rows = plan.rows()
    if as_json:
        payload = {
            "request": plan.request.describe(),
            "plan": rows,
            "missing": [m.key for m in plan.missing],
            "files": len(plan.vision_items),
            "rest_days": len(plan.rest_items),
            "bytes": plan.bytes,
        }
        emit_json(payload)
        return
    table = Table(title=f"backfill plan: {plan.request.describe()}")
    cols = ("market", "dataset", "symbol", "action", "count", "first", "last", "bytes")
    for col in cols:
        table.add_column(col, justify="right" if col in ("count", "bytes") else "left")
    for r in rows:
        table.add_row(*(_cell(r[c]) for c in cols))
    console.print(table)
    for m in plan.missing:
        console.print(f"missing           {m.key}  not in the archive although later days are")
    console.print(
        f"{len(plan.vision_items)} file(s) ({plan.bytes / 2**20:,.1f} MiB) and "
        f"{len(plan.rest_items)} REST day(s) to fetch; {sum(plan.held.values())} day(s) held"
    )


def _cell(value: object) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) else str(value)


def _report(summary: Summary, as_json: bool) -> None:
    if as_json:
        emit_json(summary.as_dict())
        return
    d = summary.as_dict()
    for o in summary.outcomes:
        if o.status == "missing":
            console.print(o.line(), markup=False, highlight=False)
    for g in summary.plan.gaps:
        line = f"{g.kind:<17} {g.series.label} {g.first_day}..{g.last_day}: {g.reason}"
        console.print(line, markup=False, highlight=False)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(d["statuses"].items())) or "nothing to fetch"
    skipped = summary.before_listing_days
    before = f", {skipped} day(s) before listing skipped" if skipped else ""
    console.print(
        f"done in {summary.elapsed_s:,.1f}s: {statuses}; {d['rows']:,} rows, "
        f"{d['bytes'] / 2**20:,.1f} MiB, {d['held_days']} day(s) already held{before}; "
        f"REST {d['rest_requests']} request(s), weight {d['weight_used']:,}, "
        f"429s {summary.throttled}"
    )
