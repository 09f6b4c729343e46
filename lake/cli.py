"""The ``cryptolake`` command line: every flow and lake operation runnable from the shell.

Exit codes: 0 success, 1 a failure while running, 2 bad input (configuration, arguments, a table
that does not exist). ``--json`` prints machine-readable JSON on stdout and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from lake.backfill import cli as backfill_cli
from lake.capture import cli as capture_cli
from lake.clikit import (
    CliState,
    OneLineErrors,
    console,
    emit_json,
    fail,
    open_lake_for_reading,
    open_lake_for_writing,
    state,
)
from lake.exchange.cli import app as exchange_app

if TYPE_CHECKING:
    from lake.schemas import TableSpec
    from lake.storage import Lake

app = typer.Typer(
    cls=OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    help="cryptolake: a Binance market-data lake (capture, backfill, Delta tables, quality).",
)

app.add_typer(exchange_app, name="exchange")
app.command()(capture_cli.collect)
app.command()(capture_cli.land)
app.command()(backfill_cli.backfill)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")]


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML config (default: $LAKE_CONFIG or config/lake.yaml)."),
    ] = None,
    lake_root: Annotated[
        str | None, typer.Option("--lake", help="Storage root; overrides storage.root.")
    ] = None,
) -> None:
    ctx.obj = CliState(config=config, lake_root=lake_root)


def _lake(ctx: typer.Context, *, writable: bool = False) -> Lake:
    """The lake at the configured root; one ``error:`` line when the root is no lake (see
    :func:`lake.clikit.open_lake_for_reading`)."""
    return open_lake_for_writing(ctx) if writable else open_lake_for_reading(ctx)


def _table(name: str) -> TableSpec:
    from lake.schemas import get_table

    try:
        return get_table(name)
    except KeyError as exc:
        fail(str(exc.args[0]))


@app.command()
def init(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Create every table of the lake (idempotent)."""
    from lake.schemas import ALL_TABLES
    from lake.storage import DamagedTableError

    lake = _lake(ctx, writable=True)
    try:
        created = lake.create_all()
    except DamagedTableError as exc:  # a table to migrate whose log is damaged
        fail(str(exc))
    if as_json:
        emit_json({"root": lake.root, "created": created, "tables": len(ALL_TABLES)})
        return
    console.print(
        f"lake at [bold]{lake.root}[/]: {len(created)} table(s) created, "
        f"{len(ALL_TABLES) - len(created)} already present"
    )


@app.command()
def tables(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List every table: layer, rows, Delta version, files."""
    from lake.schemas import ALL_TABLES
    from lake.storage import DamagedTableError

    lake = _lake(ctx)
    try:
        stats = [lake.stats(spec) for spec in ALL_TABLES]
    except DamagedTableError as exc:
        fail(str(exc))
    if as_json:
        emit_json([s.as_dict() for s in stats])
        return
    out = Table(title=f"tables under {lake.root}")
    for col in ("table", "layer", "rows", "version", "files", "size"):
        out.add_column(
            col, justify="right" if col in ("rows", "version", "files", "size") else "left"
        )
    for s in stats:
        version = "-" if s.version is None else str(s.version)
        out.add_row(s.name, s.layer, f"{s.rows:,}", version, str(s.files), _size(s.size_bytes))
    console.print(out)
    if not any(s.exists for s in stats):
        console.print("no tables yet: run `cryptolake init`")


@app.command()
def history(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(help="Table, e.g. agg_trades or bronze.agg_trades.")],
    limit: Annotated[
        int | None, typer.Option(help="Newest N commits only.", min=1, max=2**31 - 1)
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a table's commits with their lineage (source, batch, flow run, rows, hash)."""
    from lake.storage import DamagedTableError

    spec = _table(table)
    lake = _lake(ctx)
    try:
        commits = lake.history(spec, limit)
    except (LookupError, DamagedTableError) as exc:
        fail(str(exc))
    if as_json:
        emit_json(commits)
        return
    out = Table(title=f"history of {spec.key}")
    for col in ("version", "time", "operation", "source", "batch", "rows", "flow run", "hash"):
        out.add_column(col)
    for c in commits:
        lin: dict[str, Any] = c["lineage"]
        out.add_row(
            str(c["version"]),
            c["timestamp"] or "",
            str(lin.get("operation", c["operation"])),
            str(lin.get("source", "")),
            str(lin.get("batch_id", "")),
            str(lin.get("rows", c["rows_added"] or "")),
            str(lin.get("flow_run_id", "")),
            str(lin.get("content_hash", ""))[:12],
        )
    console.print(out)


@app.command("show-watermark")
def show_watermark(
    ctx: typer.Context,
    table: Annotated[
        str | None, typer.Option(help="One table only (default: every bronze/silver/gold table).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Latest event time per table and market/symbol, read from the tables themselves."""
    from lake.schemas import iter_tables
    from lake.storage import DamagedTableError

    specs = [_table(table)] if table else [t for t in iter_tables() if t.layer != "ops"]
    lake = _lake(ctx)
    rows: list[dict[str, Any]] = []
    for spec in specs:
        try:
            if not lake.exists(spec):
                continue
            watermarks = lake.watermarks(spec)
        except DamagedTableError as exc:
            fail(str(exc))
        for wm in watermarks.iter_rows(named=True):
            group = {k: wm[k] for k in spec.watermark_by}
            rows.append(
                {"table": spec.key, **group, "watermark": wm["watermark"], "rows": wm["rows"]}
            )
    if as_json:
        emit_json(rows)
        return
    out = Table(title="watermarks")
    for col in ("table", "group", "watermark", "rows"):
        out.add_column(col)
    for r in rows:
        label = " ".join(str(v) for k, v in r.items() if k not in ("table", "watermark", "rows"))
        out.add_row(r["table"], label, str(r["watermark"]), f"{r['rows']:,}")
    console.print(out if rows else "no data yet")


@app.command()
def query(
    ctx: typer.Context,
    sql: Annotated[
        str,
        typer.Argument(
            help="DuckDB SQL over bronze_trades (or bronze.trades), … and the views bars_1m, "
            "latest_price."
        ),
    ],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Read the tables as of a Delta version or an ISO time."),
    ] = None,
    as_json: JsonFlag = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV on stdout.")] = False,
) -> None:
    """Query the lake with SQL (DuckDB, in memory; nothing is written). See docs/read.md."""
    import sys

    if as_json and as_csv:
        fail("give --json or --csv, not both")
    from lake.query import json_rows, run_query

    version: int | str | None = int(as_of) if as_of and as_of.strip().isdigit() else as_of
    lake = _lake(ctx)
    try:
        result = run_query(lake, sql, as_of=version)
    except ValueError as exc:  # QueryError, ReadError, DamagedTableError
        fail(str(exc))
    if as_json:
        emit_json(json_rows(result))
        return
    if as_csv:
        try:
            text = result.write_csv()
        except Exception as exc:  # a nested column has no CSV form
            fail(f"the result cannot be written as CSV ({exc}): use --json")
        sys.stdout.write(text)
        return
    out = Table(caption=f"{result.height:,} row(s)")
    for name, dtype in result.schema.items():
        out.add_column(name, justify="right" if dtype.is_numeric() else "left")
    for row in result.iter_rows():
        out.add_row(*("" if v is None else str(v) for v in row))
    console.print(out)


@app.command()
def doctor(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Check every table's Delta log; name what is damaged and how to recover (exit 1 if so)."""
    from lake.doctor import examine

    checkup = examine(_lake(ctx))
    if as_json:
        emit_json(checkup.as_dict())
    else:
        for health in checkup.tables:
            console.print(health.line(), markup=False, highlight=False)
        damaged = checkup.damaged
        console.print(
            f"{len(damaged)} damaged table(s): {', '.join(damaged)}"
            if damaged
            else "every table's log is whole",
            markup=False,
            highlight=False,
        )
    if not checkup.ok:
        raise typer.Exit(1)


@app.command()
def demo(
    ctx: typer.Context,
    capture_s: Annotated[
        float, typer.Option("--capture", help="Seconds of live capture.", min=1)
    ] = 20,
    in_session: Annotated[bool, typer.Option("--in-session", hidden=True)] = False,
) -> None:
    """Run the whole pipeline on the built-in exchange and say what it did (Ctrl-C stops it)."""
    import sys

    from lake.interrupt import EXIT_INTERRUPTED, cooperative_stop, run_supervised

    st = state(ctx)
    settings = st.settings(writable=True)
    if not in_session:  # the flows run in a session of their own, where Ctrl-C is a request
        config = ["--config", str(st.config)] if st.config else []
        cmd = [sys.executable, "-m", "lake.cli", *config, "--lake", settings.storage.uri]
        raise typer.Exit(
            run_supervised([*cmd, "demo", "--capture", str(capture_s), "--in-session"])
        )
    from flows.demo import demo as demo_flow  # the shell entry point may start flows

    console.print(f"[bold]cryptolake demo[/] — lake at {settings.storage.uri}")
    with cooperative_stop():
        ran = demo_flow(settings.storage.uri, capture_s, return_state=True)
    if ran.is_cancelled():
        print(
            "interrupted: the demo stopped; what it captured is landed and every commit is "
            "whole (run it again to go on)",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    result: dict[str, Any] = ran.result()  # type: ignore[assignment]  # a Completed demo's dict
    out = Table(title="what the demo left in the lake")
    for col in ("table", "rows", "version", "files"):
        out.add_column(col)
    for s in result["tables"]:
        out.add_row(str(s["table"]), f"{s['rows']:,}", str(s["version"]), str(s["files"]))
    console.print(out)
    console.print(
        "next: `cryptolake tables`, `cryptolake history agg_trades`, `cryptolake show-watermark`"
    )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
