"""``cryptolake collect`` and ``cryptolake land``. Heavy imports happen inside the commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from lake.clikit import console, emit_json, fail, settings_with_exchange
from lake.settings import markets_option, symbols_option

if TYPE_CHECKING:
    from lake.capture.collector import CollectSummary, Snapshot
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
    """Capture live streams into landing segments and bronze until stopped (SIGINT/SIGTERM)."""
    import asyncio
    import signal

    from rich.live import Live

    from lake.capture.collector import CapturePlan, CollectorBusy
    from lake.capture.collector import collect as run_collect
    from lake.simulator import SimulatorError, exchange_url

    chosen = parse_markets(markets)
    syms = parse_symbols(symbols)
    settings, lake = _open(ctx, exchange)
    plan = CapturePlan.from_settings(settings, markets=chosen, symbols=syms)
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
            duration_s=duration,
            stop=stop,
            on_tick=on_tick,
        )

    try:
        with exchange_url(settings) as url:
            if live is not None:
                console.print(f"collecting from [bold]{url}[/] into {lake.root} (Ctrl-C stops)")
                with live:
                    summary = asyncio.run(run(url))
            else:
                summary = asyncio.run(run(url))
    except (CollectorBusy, SimulatorError) as exc:
        fail(str(exc), code=1)
    _report(summary, as_json)


def land(
    ctx: typer.Context,
    exchange: ExchangeOpt = None,
    markets: MarketsOpt = "spot,um",
    repair: Annotated[
        bool, typer.Option("--repair/--no-repair", help="Fill open gaps from REST after landing.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Land closed landing segments into bronze and record (and fill) the gaps they reveal."""
    import asyncio
    from pathlib import Path

    from lake.binance.rest import RestClient
    from lake.capture.land import land_market
    from lake.capture.repair import repair_open_gaps
    from lake.simulator import exchange_url

    chosen = parse_markets(markets)
    settings, lake = _open(ctx, exchange)
    root = Path(settings.capture.landing_dir)
    out: dict[str, Any] = {"landed": {}, "repair": None}
    for market in chosen:
        r = land_market(lake, root / market, market)
        out["landed"][market] = {
            "segments": r.segments,
            "frames": r.frames,
            "rows": r.rows,
            "rejected": r.rejected,
            "gaps": r.gaps,
        }
    if repair:

        async def fix(url: str) -> Any:
            async with RestClient(settings.endpoints(url)) as client:
                return await repair_open_gaps(
                    lake, client, max_ids=settings.capture.max_rest_fill_ids
                )

        with exchange_url(settings) as url:
            res = asyncio.run(fix(url))
        out["repair"] = {
            "repaired": res.repaired,
            "rows": res.rows,
            "left_open": res.left_open,
            "errors": res.errors,
        }
    if as_json:
        emit_json(out)
        return
    for market, r in out["landed"].items():
        console.print(
            f"{market}: {r['segments']} segment(s), {r['frames']:,} frames, rows {r['rows']}, "
            f"{r['rejected']} quarantined, {r['gaps']} gap(s) recorded"
        )
    if out["repair"] is not None:
        rep = out["repair"]
        console.print(
            f"repair: {rep['repaired']} gap(s) repaired ({rep['rows']:,} rows), "
            f"{rep['left_open']} left open"
        )
        for err in rep["errors"][:5]:
            console.print(f"  [yellow]{err}[/]")


def _open(ctx: typer.Context, exchange: str | None) -> tuple[Settings, Lake]:
    """The settings (``--exchange`` applied, root writable) and the lake, its tables created."""
    from lake.storage import Lake

    settings = settings_with_exchange(ctx, exchange, writable=True)
    lake = Lake.from_settings(settings)
    lake.create_all()
    return settings, lake


def _live_table(snap: Snapshot) -> Table:
    table = Table(
        title=f"capture {snap.elapsed_s:,.0f}s · durable {snap.frames_durable:,} · "
        f"connects {snap.connects} · drops {snap.drops} · recycles {snap.recycles} · "
        f"gaps repaired {snap.gaps_repaired} · dropped {snap.dropped}"
    )
    for col in ("market", "stream", "messages", "msg/s", "latency ms", "silent s"):
        table.add_column(col, justify="left" if col in ("market", "stream") else "right")
    for r in snap.streams:
        lat = "-" if r.latency_ms is None else f"{r.latency_ms:,.1f}"
        table.add_row(
            r.market, r.stream, f"{r.messages:,}", f"{r.rate:,.1f}", lat, f"{r.silent_s:,.1f}"
        )
    return table


def _report(summary: CollectSummary, as_json: bool) -> None:
    landed = {
        m: {
            "segments": r.segments,
            "frames": r.frames,
            "rows": r.rows,
            "rejected": r.rejected,
            "gaps": r.gaps,
        }
        for m, r in summary.landed.items()
    }
    last = summary.last
    payload = {
        "duration_s": round(summary.duration_s, 3),
        "landed": landed,
        "gaps_repaired": summary.gaps_repaired,
        "gaps_left_open": summary.repairs[-1].left_open if summary.repairs else 0,
        "connects": last.connects if last else 0,
        "drops": last.drops if last else 0,
        "recycles": last.recycles if last else 0,
        "silent_reports": last.silent_reports if last else 0,
        "dropped_frames": last.dropped if last else 0,
        "streams": [
            {
                "market": r.market,
                "stream": r.stream,
                "messages": r.messages,
                "latency_ms": r.latency_ms,
            }
            for r in (last.streams if last else [])
        ],
    }
    if as_json:
        emit_json(payload)
        return
    console.print(
        f"stopped after {summary.duration_s:,.1f}s: "
        + "; ".join(f"{m} {v['frames']:,} frames → {v['rows']}" for m, v in landed.items())
        + f"; gaps repaired {payload['gaps_repaired']}, left open {payload['gaps_left_open']}"
    )
