"""``cryptolake collect`` and ``cryptolake land``. Heavy imports happen inside the commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from lake.clikit import (
    EXIT_FAILURE,
    console,
    emit_json,
    fail,
    open_lake_for_writing,
    probe_exchange,
    settings_with_exchange,
)
from lake.settings import markets_option, symbols_option

if TYPE_CHECKING:
    from pathlib import Path

    from lake.capture.collector import CollectSummary, Snapshot
    from lake.capture.land import LandResult
    from lake.capture.repair import RepairResult
    from lake.settings import Market, Settings
    from lake.storage import Lake


ExchangeOpt = Annotated[
    str | None, typer.Option("--exchange", help="sim, live or a base URL (default: config).")
]
MarketsOpt = Annotated[str, typer.Option("--markets", help="Comma-separated: spot,um.")]
SymbolsOpt = Annotated[
    str | None, typer.Option("--symbols", help="Comma-separated symbols (default: config).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON only.")]


def parse_markets(text: str) -> list[Market]:
    try:
        return markets_option(text)
    except ValueError as exc:
        fail(str(exc))


def parse_symbols(text: str | None) -> list[str] | None:
    try:
        return symbols_option(text)
    except ValueError as exc:
        fail(str(exc))


def collect(
    ctx: typer.Context,
    exchange: ExchangeOpt = None,
    markets: MarketsOpt = "spot,um",
    symbols: SymbolsOpt = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", help="Stop after SECONDS (default: run on).", min=1),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Capture live streams into landing segments and bronze until stopped (SIGINT/SIGTERM).

    Everything is checked before anything is created: the options, the configuration, the root
    and the landing directory, then the exchange (it must answer within seconds and list every
    symbol asked for).
    """
    import asyncio
    import math
    import signal

    from rich.live import Live

    from lake.capture.collector import CapturePlan
    from lake.capture.collector import collect as run_collect
    from lake.capture.lock import CollectorBusy
    from lake.simulator import SimulatorError, exchange_url

    chosen = parse_markets(markets)
    syms = parse_symbols(symbols)
    if duration is not None and not math.isfinite(duration):
        fail(f"--duration {duration}: give a number of seconds, or leave it out to run on")
    settings = settings_with_exchange(ctx, exchange, writable=True)
    lake = open_lake_for_writing(ctx)
    landing = _landing(settings)
    plan = CapturePlan.from_settings(settings, markets=chosen, symbols=syms)
    if not plan.markets:
        fail(f"nothing to collect on {','.join(chosen)}: no symbols or no streams configured")
    for market in plan.markets:
        _check_writable(landing / market, "the landing directory")
    live = None if as_json else Live(console=console, refresh_per_second=2, transient=False)

    def on_tick(snap: Snapshot) -> None:
        if live is not None:
            live.update(_live_table(snap))

    async def run(url: str) -> CollectSummary:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await run_collect(
            lake,
            settings.endpoints(url),
            plan,
            settings.capture,
            landing=landing,
            duration_s=duration,
            stop=stop,
            on_tick=on_tick,
        )

    try:
        wanted = {m: plan.symbols[m] for m in plan.markets}
        with exchange_url(settings, wanted) as url:
            probe_exchange(url, plan.markets, symbols=wanted)
            lake.create_all()
            if live is not None:
                console.print(f"collecting from [bold]{url}[/] into {lake.root} (Ctrl-C stops)")
                with live:
                    summary = asyncio.run(run(url))
                if not console.is_terminal:  # the last frame of the live table ends no line
                    console.line()
            else:
                summary = asyncio.run(run(url))
    except (CollectorBusy, SimulatorError) as exc:
        fail(str(exc), code=EXIT_FAILURE)
    _report(summary, as_json)


def land(
    ctx: typer.Context,
    exchange: ExchangeOpt = None,
    markets: MarketsOpt = "spot,um",
    repair: Annotated[
        bool, typer.Option("--repair/--no-repair", help="Fill open gaps from REST after landing.")
    ] = True,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            help="Seconds to wait for a collect or land that holds a landing directory.",
            min=0,
        ),
    ] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Land closed landing segments into bronze and record (and fill) the gaps they reveal.

    Each market's landing directory is held while landing (as ``collect`` holds it): a second
    ``land`` waits up to ``--wait`` seconds, then stops with one ``error:`` line, exit 1.
    """
    import asyncio
    import contextlib
    import logging
    import sys

    from lake.binance.rest import RestClient
    from lake.capture.collector import CollectSummary, land_and_repair
    from lake.capture.land import LandResult
    from lake.capture.lock import CollectorBusy, check_landing_dir, landing_lock
    from lake.simulator import exchange_url

    chosen = parse_markets(markets)
    settings = settings_with_exchange(ctx, exchange, writable=True)
    root = _landing(settings)
    for m in chosen:  # before anything is written
        try:
            check_landing_dir(root / m)
        except NotADirectoryError as exc:
            fail(str(exc))
    # a market without a landing directory has nothing to land, and none is made for it
    present = [m for m in chosen if (root / m).is_dir()]
    summary = CollectSummary(landed={m: LandResult() for m in chosen})

    async def run(lake: Lake, url: str | None) -> None:
        if url is None:
            await land_and_repair(lake, None, root, present, settings.capture, summary)
            return
        async with RestClient(settings.endpoints(url)) as client:
            await land_and_repair(lake, client, root, present, settings.capture, summary)

    # one line on stderr per damaged segment, as the landing logs it
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setFormatter(logging.Formatter("warning: %(message)s"))
    land_log = logging.getLogger("cryptolake.land")
    land_log.addHandler(warnings)
    propagate, land_log.propagate = land_log.propagate, False
    try:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(exchange_url(settings)) if repair else None
            if url is not None:  # before anything is written (--no-repair lands without it)
                probe_exchange(url, chosen)
            for m in present:
                stack.enter_context(landing_lock(root / m, holder="land", wait_s=wait))
            _, lake = _open(ctx, exchange)
            asyncio.run(run(lake, url))
    except CollectorBusy as exc:
        fail(str(exc), code=1)
    finally:
        land_log.removeHandler(warnings)
        land_log.propagate = propagate
    out = {
        "landed": {m: r.as_dict() for m, r in summary.landed.items()},
        "rows_stored": summary.rows_stored,
        "repair": summary.repairs[-1].as_dict() if summary.repairs else None,
    }
    if as_json:
        emit_json(out)
        _fail_on_repair_errors(summary)
        return
    for market, r in summary.landed.items():
        console.print(f"{market}: {_landed_line(r)}")
    if summary.repairs:
        console.print(_repair_line(summary.repairs[-1]))
        for err in summary.repairs[-1].errors[:5]:
            console.print(f"  [yellow]{err}[/]")
        for note in summary.repairs[-1].notes:
            console.print(f"  {note}")
    _fail_on_repair_errors(summary)


def _fail_on_repair_errors(summary: CollectSummary) -> None:
    """Landing is done; a repair that could not talk to the exchange is still a failure."""
    errors = [e for r in summary.repairs for e in r.errors]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        fail(f"landed, but the repair failed: {errors[0]}{more}", code=1)


def _open(ctx: typer.Context, exchange: str | None) -> tuple[Settings, Lake]:
    """The settings (``--exchange`` applied, root writable) and the lake, its tables created."""
    settings = settings_with_exchange(ctx, exchange, writable=True)
    lake = open_lake_for_writing(ctx)
    lake.create_all()
    return settings, lake


def _check_writable(directory: Path, what: str) -> None:
    from lake.settings import ConfigError, check_writable_dir

    try:
        check_writable_dir(directory, what)
    except ConfigError as exc:
        fail(str(exc))


def _landing(settings: Settings) -> Path:
    from lake.settings import ConfigError

    try:
        return settings.landing_path
    except ConfigError as exc:
        fail(str(exc))


def _landed_line(r: LandResult) -> str:
    tables = ", ".join(
        f"{t} {r.stored.get(t, 0):,} new of {n:,}" for t, n in sorted(r.rows.items())
    )
    damaged = ""
    if r.damaged:
        lost = sum(d.lost_bytes for d in r.damaged)
        damaged = (
            f"; {len(r.damaged)} damaged segment(s) moved to damaged/, {lost:,} unreadable "
            "byte(s) quarantined"
        )
    return (
        f"{r.segments} segment(s), {r.frames:,} frames; rows stored: {tables or 'none'}; "
        f"{r.rejected} quarantined, {r.gaps} gap(s) recorded{damaged}"
    )


def _repair_line(r: RepairResult) -> str:
    return (
        f"repair: {r.repaired} gap(s) repaired ({r.rows:,} rows), {r.unrepairable} unrepairable"
        f" ({r.refused_rows} rows refused), {r.left_open} left open, {r.requests} request(s)"
    )


def _clock_note(offset_s: float | None) -> str:
    if offset_s is None:
        return ""
    hours = offset_s / 3600
    when = f"{abs(hours) / 24:,.1f} days" if abs(hours) >= 48 else f"{abs(hours):,.1f} h"
    side = "behind" if offset_s > 0 else "ahead of"
    return f" · exchange clock {when} {side} local (a replay?): latency not shown"


def _live_table(snap: Snapshot) -> Table:
    table = Table(
        title=f"capture {snap.elapsed_s:,.0f}s · frames received {snap.frames_received:,} · "
        f"durable {snap.frames_durable:,} · rows stored {snap.rows_stored:,} · "
        f"connects {snap.connects} · drops {snap.drops} · recycles {snap.recycles} · "
        f"silent {snap.silent_reports} · gaps repaired {snap.gaps_repaired} · "
        f"dropped {snap.dropped}" + _clock_note(snap.clock_offset_s)
    )
    for col in ("market", "stream", "frames", "msg/s", "latency ms", "silent s"):
        table.add_column(col, justify="left" if col in ("market", "stream") else "right")
    for r in snap.streams:
        lat = "-" if r.latency_ms is None else f"{r.latency_ms:,.1f}"
        table.add_row(
            r.market, r.stream, f"{r.messages:,}", f"{r.rate:,.1f}", lat, f"{r.silent_s:,.1f}"
        )
    return table


def _report(summary: CollectSummary, as_json: bool) -> None:
    payload = summary.as_dict()
    if as_json:
        emit_json(payload)
        return
    console.print(
        f"stopped after {summary.duration_s:,.1f}s: {payload['frames_received']:,} frames "
        f"received, {summary.rows_stored:,} rows newly stored"
        + _clock_note(payload["exchange_clock_offset_s"])
    )
    for market, r in summary.landed.items():
        console.print(f"  {market}: {_landed_line(r)}")
    unrepairable = payload["gaps_unrepairable"]
    console.print(
        f"  gaps repaired {summary.gaps_repaired}, unrepairable {unrepairable}, "
        f"left open {summary.gaps_left_open}; recycles {payload['recycles']}, "
        f"silent streams reported {payload['silent_reports']}"
    )
    for err in payload["repair_errors"][:5]:
        console.print(f"  [yellow]{err}[/]")
