"""The ``cryptolake`` command line (skeleton; commands are registered per layer)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="cryptolake: a Binance market-data lake.")


def main() -> None:
    app()
