"""``cryptolake exchange serve``: run the built-in exchange until SIGINT/SIGTERM.

Module-level imports stay cheap (typer only) so ``cryptolake --help`` is fast; the server stack is
imported inside the command.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from lake.clikit import OneLineErrors, fail

app = typer.Typer(
    cls=OneLineErrors,  # run as `python -m lake.exchange`, usage errors are one line here too
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The built-in Binance exchange (simulated market, replay, faults) on 127.0.0.1.",
)


@app.callback()
def _root() -> None:
    """The built-in Binance exchange (simulated market, replay, faults) on 127.0.0.1."""


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.", min=0, max=65535)] = 0,
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="Market seed: equal seeds serve equal history.")] = 42,
    symbols: Annotated[
        str, typer.Option(help="BTCUSDT,ETHUSDT (both markets) or spot:X,um:Y.")
    ] = "BTCUSDT,ETHUSDT",
    replay: Annotated[
        list[Path] | None,
        typer.Option(help="Recording to replay; its symbols are served from it (repeatable)."),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Replay speed; 0 = as fast as possible.", min=0)
    ] = 1.0,
    faults: Annotated[str, typer.Option(help="Fault spec, e.g. 'ws.drop:every=30s'.")] = "",
    start: Annotated[str, typer.Option(help="Exchange clock start (ISO UTC); default now.")] = "",
    clock_speed: Annotated[
        float, typer.Option(help="Exchange seconds per wall second; 0 = a frozen clock.", min=0)
    ] = 1.0,
    agg_rate: Annotated[
        float, typer.Option(help="aggTrades per second per symbol (more than 0).")
    ] = 15.0,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            help="API key that USD-M historicalTrades then requires, as Binance does (repeatable)."
        ),
    ] = None,
) -> None:
    """Serve the exchange: prints http://127.0.0.1:PORT first, runs until SIGINT/SIGTERM."""
    import asyncio
    import signal
    from dataclasses import replace
    from datetime import UTC, datetime

    from lake.exchange.config import ExchangeConfig, parse_symbols
    from lake.exchange.faults import FaultSpecError, parse_spec

    # Check the cheap things before importing the server stack: bad input fails fast.
    rates = {"--speed": speed, "--clock-speed": clock_speed, "--agg-rate": agg_rate}
    for flag, value in rates.items():
        if not math.isfinite(value):
            fail(f"{flag} {value}: give a finite number")
    if agg_rate <= 0:
        fail(f"--agg-rate {agg_rate:g}: give aggTrades per second per symbol, more than 0")
    if any(not key.strip() for key in api_key or ()):
        fail("--api-key is empty: give the key USD-M historicalTrades should require")
    try:
        specs = parse_symbols(symbols, agg_rate=agg_rate)
        parse_spec(faults)
    except (ValueError, FaultSpecError) as exc:
        fail(str(exc))
    start_ms = None
    if start:
        try:
            dt = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            fail(f"bad --start {start!r}: use an ISO time such as 2024-01-01T00:00:00Z")
        start_ms = int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1000)
    for path in replay or []:
        if path.is_dir():
            fail(f"--replay {path} is a directory: give a recording file")
        if not path.is_file():
            fail(f"replay file not found: {path}")

    from lake.exchange.app import create_state, stop
    from lake.exchange.app import start as start_server
    from lake.exchange.clock import Clock
    from lake.exchange.replay import Recording, ReplayError

    try:
        config = replace(
            ExchangeConfig(),
            seed=seed,
            symbols=specs,
            host=host,
            port=port,
            api_keys=tuple(api_key or ()),
        )
        recording = Recording(list(replay), speed) if replay else None
        state = create_state(
            config, clock=Clock(start_ms, clock_speed), faults=faults, replay=recording
        )
    except ReplayError as exc:
        fail(str(exc))

    async def run() -> None:
        try:
            runner, bound = await start_server(state)
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        print(f"http://{host}:{bound}", flush=True)  # only once signals stop us cleanly
        await done.wait()
        await stop(runner, state)

    asyncio.run(run())
