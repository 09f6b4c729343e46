"""Small helpers shared by every command group: settings from the command line, one-line errors,
opening the lake, probing the exchange, JSON.

Kept free of heavy imports (polars, deltalake, Prefect, Great Expectations) so that
``cryptolake --help`` stays fast; what needs them imports them inside.

Exit codes: 0 success; 1 a failure while running (an exchange or storage that cannot be reached,
a run that failed); 2 bad input (arguments, configuration, a root that is not a lake, a symbol the
exchange does not list). Either way one ``error: …`` line on stderr, and nothing written.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

# typer vendors click (0.26+) and exports none of the usage errors it raises; they live here. If a
# typer upgrade moves them, this import fails at once (and tests/integration/test_bad_inputs.py).
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click.core import Context

    from lake.settings import Market, Settings, StorageConfig
    from lake.storage import Lake

EXIT_FAILURE = 1
EXIT_USAGE = 2

LAKE_ENTRIES = frozenset({"bronze", "silver", "gold", "ops", "_landing", "_work"})
"""What a local root holds once cryptolake has written to it: its layers, the landing directory
(``lake.settings.LANDING_DIR_NAME``) and the work area (``lake.workdir.WORK_DIR_NAME``)."""
_NOT_CONTENT = frozenset({"lost+found"})  # a freshly formatted volume is still empty

# Piped output (logs, CI, tests) is not wrapped at 80 columns: lines stay whole and greppable.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one ``error: …`` line on stderr and exit with ``code``."""
    line = " ".join(message.split())  # whatever a cause holds, the error stays one line
    print(f"error: {line}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


class OneLineErrors(TyperGroup):
    """The command group of ``cryptolake`` (and of ``python -m lake.exchange``): a usage error —
    an unknown option or command, a missing argument, a value of the wrong type or out of
    range — prints one ``error: …`` line and exits 2, like every other bad input, instead of
    click's usage block."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Context | None = None, **extra: Any
    ) -> Context:
        with _one_line_usage():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        with _one_line_usage():
            try:
                return super().invoke(ctx)
            except KeyboardInterrupt:  # Ctrl-C: one line and 130, not click's "Aborted!"
                print(
                    "interrupted: stopped on Ctrl-C; every commit made is whole, and running "
                    "the command again goes on where it stopped",
                    file=sys.stderr,
                )
                raise typer.Exit(130) from None


@contextmanager
def _one_line_usage() -> Iterator[None]:
    try:
        yield
    except NoArgsIsHelpError:
        raise  # a bare command group prints its help, as it always has
    except UsageError as exc:
        message = exc.format_message().strip().rstrip(".")
        if message[1:2].islower():  # click's "Missing argument", "No such option"
            message = message[:1].lower() + message[1:]
        where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        fail(f"{message}{where}", EXIT_USAGE)


@dataclass
class CliState:
    """What the top-level options say; settings are loaded on first use."""

    config: Path | None = None
    lake_root: str | None = None
    exchange: str | None = None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self, *, writable: bool = False) -> Settings:
        """The validated settings; exits with one error line and code 2 when they are wrong."""
        # imported here: `python -m lake.exchange` shares this module but needs no settings
        from lake.settings import ConfigError, check_writable_root, load_settings

        if self._settings is None:
            overrides: dict[str, Any] = {}
            if self.lake_root is not None:
                overrides["storage"] = {"root": self.lake_root}
            if self.exchange is not None:
                overrides["exchange"] = self.exchange
            names = {"storage.root": "--lake", "exchange": "--exchange"}
            try:
                self._settings = load_settings(
                    self.config, overrides=overrides, override_names=names
                )
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


def open_lake_for_reading(ctx: typer.Context) -> Lake:
    """The lake at the configured root, to read (it may not exist yet: then it has no tables).

    Exits with one ``error:`` line: 2 when the root is a file or a directory that holds
    something other than a cryptolake lake; 1 when remote storage cannot be reached.
    """
    return _open_lake(state(ctx).settings())


def open_lake_for_writing(ctx: typer.Context) -> Lake:
    """The lake at the configured root, to write; nothing is created yet.

    Exits with one ``error:`` line as :func:`open_lake_for_reading` does, and with 2 when a local
    root cannot be written.
    """
    return _open_lake(state(ctx).settings(writable=True))


def _open_lake(settings: Settings) -> Lake:
    from lake.storage import Lake

    if settings.storage.is_local:
        _check_local_root(settings.storage.local_root.resolve())
    else:
        _probe_remote_root(settings.storage)
    return Lake.from_settings(settings)


def _check_local_root(root: Path) -> None:
    if root.exists() and not root.is_dir():
        fail(f"storage.root {root} is a file, not a lake directory: check --lake or storage.root")
    if not root.is_dir():
        return
    try:
        names = sorted(p.name for p in root.iterdir())
    except OSError as exc:
        fail(f"storage.root {root} cannot be read ({exc.strerror or type(exc).__name__})")
    content = [n for n in names if not n.startswith(".") and n not in _NOT_CONTENT]
    if content and not LAKE_ENTRIES & set(content):
        shown = ", ".join(content[:3]) + (", …" if len(content) > 3 else "")
        fail(
            f"storage.root {root} holds {len(content)} entr{'y' if len(content) == 1 else 'ies'}"
            f" ({shown}) and no cryptolake lake: point --lake at a lake, or at an empty or new "
            "directory"
        )


_S3_SCHEMES = ("s3://", "s3a://")
# A probe retries little and briefly; the user's options still say where and who.
_S3_PROBE = {"max_retries": "1", "retry_timeout": "10s", "connect_timeout": "5s", "timeout": "20s"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _probe_remote_root(storage: StorageConfig) -> None:
    """One listing request under the root; what the object store says when it fails."""
    from deltalake import DeltaTable

    options = dict(storage.options)
    if storage.root.startswith(_S3_SCHEMES):
        options |= _S3_PROBE
    try:
        DeltaTable.is_deltatable(f"{storage.uri}/ops/sources", storage_options=options or None)
    except (OSError, ValueError) as exc:
        # delta-rs chains causes as "↳" lines: the first says what, the last says why
        lines = [ln.strip(" ↳") for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip(" ↳")]
        cause = lines[0] if len(lines) < 2 else f"{lines[0]}: {lines[-1]}"
        fail(f"storage.root {storage.uri} cannot be reached ({cause})", EXIT_FAILURE)


def probe_exchange(
    url: str,
    markets: Sequence[Market],
    *,
    symbols: Mapping[Market, Sequence[str]] | None = None,
) -> None:
    """Check, in a few seconds, that the exchange at ``url`` (``live`` or a base URL) answers
    on every market of ``markets`` and, given ``symbols``, lists each of them.

    Exits with one ``error:`` line: 1 when the exchange cannot be reached (naming the URL and the
    cause); 2 naming the symbols it does not list, per market.
    """
    from lake.binance.endpoints import Endpoints
    from lake.binance.probe import Unreachable, ping, unlisted

    endpoints = Endpoints.for_exchange(url)
    try:
        ping(endpoints, markets)
        missing = unlisted(endpoints, symbols or {})
    except Unreachable as exc:
        fail(str(exc), EXIT_FAILURE)
    if missing:
        where = "; ".join(f"{', '.join(s)} on {m}" for m, s in missing.items())
        fail(f"the exchange at {url} does not list {where}: check --symbols or markets.*.symbols")


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def emit_json(payload: Any) -> None:
    """Machine-readable output: JSON on stdout and nothing else."""
    sys.stdout.write(json.dumps(payload, default=_default, indent=2) + "\n")
    sys.stdout.flush()
