"""Prefect's embedded defaults, wherever a command runs (not only in the checkout).

``prefect.toml`` holds them for a run from the checkout; a command run from any other directory
would otherwise get Prefect's own defaults: state under ``~/.prefect`` shared with other tools,
and telemetry whose writes race the ephemeral API for SQLite's lock (``database is locked``
tracebacks). These values apply unless the environment sets them; call :func:`apply` before
Prefect is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_LOGGING_LEVEL": "INFO",
}
HOME_OUTSIDE_CHECKOUT = Path("~/.cryptolake/prefect")
"""Prefect's state when no ``prefect.toml`` (which says ``.prefect``) is in the directory."""


def apply() -> None:
    """Set every default the environment does not set already."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not Path("prefect.toml").is_file() and "PREFECT_HOME" not in os.environ:
        home = HOME_OUTSIDE_CHECKOUT.expanduser()
        home.mkdir(parents=True, exist_ok=True)  # Prefect makes only the last level
        os.environ["PREFECT_HOME"] = str(home)
