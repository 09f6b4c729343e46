"""Small helpers shared by every command group: settings from the command line, errors, JSON.

Kept free of heavy imports (polars, deltalake, Prefect, Great Expectations) so that
``cryptolake --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

from lake.settings import ConfigError, Settings, check_writable_root, load_settings

EXIT_USAGE = 2

# Piped output (logs, CI, tests) is not wrapped at 80 columns: lines stay whole and greppable.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


@dataclass
class CliState:
    """What the top-level options say; settings are loaded on first use."""

    config: Path | None = None
    lake_root: str | None = None
    exchange: str | None = None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self, *, writable: bool = False) -> Settings:
        """The validated settings; exits with one error line and code 2 when they are wrong."""
        if self._settings is None:
            overrides: dict[str, Any] = {}
            if self.lake_root is not None:
                overrides["storage"] = {"root": self.lake_root}
            if self.exchange is not None:
                overrides["exchange"] = self.exchange
            try:
                self._settings = load_settings(self.config, overrides=overrides)
            except ConfigError as exc:
                fail(str(exc))
        if writable:
            try:
                check_writable_root(self._settings.storage)
            except ConfigError as exc:
                fail(str(exc))
        return self._settings


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def settings_with_exchange(
    ctx: typer.Context, exchange: str | None, *, writable: bool = False
) -> Settings:
    """The settings of a command that takes its own ``--exchange`` (it wins over the
    top-level one)."""
    st = state(ctx)
    if exchange is not None:
        st.exchange = exchange
    return st.settings(writable=writable)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one ``error: …`` line on stderr and exit with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def emit_json(payload: Any) -> None:
    """Machine-readable output: JSON on stdout and nothing else."""
    sys.stdout.write(json.dumps(payload, default=_default, indent=2) + "\n")
    sys.stdout.flush()
