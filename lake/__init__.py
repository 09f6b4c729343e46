"""cryptolake: a Binance market-data lake on Delta Lake.

The reader's API is importable from here: :func:`read` (any table as a lazy polars frame),
:func:`bars` (bars of any interval from ``silver.bars_1s``) and :class:`ReadError`; SQL over the
lake is :func:`lake.query.run_query`. See docs/read.md. They are imported on first use, so that
``import lake`` (and ``cryptolake --help``) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lake.reader import ReadError, bars, read

__all__ = ["ReadError", "bars", "read"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lake import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'lake' has no attribute {name!r}")
