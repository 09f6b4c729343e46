"""(I/O) ``cryptolake doctor``: is every table's Delta log whole, and how to recover when not.

A damaged commit file (truncated, garbage, 0 bytes or missing) makes every version from it on
unreadable, while the versions before it still read whole by time travel; a damaged checkpoint
hides the commits it summarises until it is moved away. The report names the file, why it is
damaged, the last good version and the way back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from lake.schemas import ALL_TABLES, TableSpec
from lake.storage import Lake
from lake.storage.log import LOG_DIR, LogState, inspect_log

Health = Literal["ok", "absent", "damaged"]


@dataclass(frozen=True)
class TableHealth:
    """One table's log, as :func:`examine` found it."""

    table: str
    uri: str
    log: LogState

    @property
    def status(self) -> Health:
        if self.log.damage:
            return "damaged"
        return "ok" if self.log.exists else "absent"

    def recovery(self) -> str | None:
        """How to get the table back, or ``None`` when it needs nothing."""
        if not self.log.damage:
            return None
        good = self.log.last_good
        first = min(self.log.damage, key=lambda d: d.version)
        if first.kind == "checkpoint file":
            return (
                f"move {first.path} and {self.uri}/{LOG_DIR}/_last_checkpoint out of {LOG_DIR}: "
                "the table is then read from the commit files (or an earlier checkpoint) if they "
                "are still there"
            )
        if good is None:
            return (
                f"no version of {self.table} reads whole: move {self.uri} aside, run "
                "`cryptolake init` and backfill the table again"
            )
        via = " (its checkpoint)" if good == self.log.checkpoint else ""
        latest = self.log.latest if self.log.latest is not None else first.version
        later = (
            f"{first.version:020d}.json to {latest:020d}.json out of {LOG_DIR} and re-run the "
            "writes they held"
            if latest > first.version
            else f"{first.version:020d}.json out of {LOG_DIR} and re-run the write it held"
        )
        return (
            f"time travel to version {good}, the last good one{via} "
            f"(`Lake(root).read(get_table({self.table!r}), version={good})` reads it whole); "
            f"to make it the latest again, move {later}"
        )

    def line(self) -> str:
        if self.status == "ok":
            return f"ok       {self.table}  version {self.log.latest}"
        if self.status == "absent":
            return f"absent   {self.table}  not created yet (run `cryptolake init`)"
        problems = "; ".join(d.line() for d in self.log.damage)
        return f"damaged  {self.table}  {problems}\n         recover: {self.recovery()}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "uri": self.uri,
            "status": self.status,
            "latest_version": self.log.latest,
            "checkpoint_version": self.log.checkpoint,
            "last_good_version": self.log.last_good if self.log.exists else None,
            "damage": [d.as_dict() for d in self.log.damage],
            "recovery": self.recovery(),
        }


@dataclass(frozen=True)
class Checkup:
    """Every table's health; ``ok`` when no log is damaged (absent tables are not damage)."""

    tables: tuple[TableHealth, ...]

    @property
    def damaged(self) -> list[str]:
        return [t.table for t in self.tables if t.status == "damaged"]

    @property
    def ok(self) -> bool:
        return not self.damaged

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "damaged": self.damaged,
            "tables": [t.as_dict() for t in self.tables],
        }


def examine(lake: Lake, specs: Iterable[TableSpec] = ALL_TABLES) -> Checkup:
    """Check the log of every table (the commit files after its last checkpoint)."""
    return Checkup(
        tuple(
            TableHealth(spec.key, lake.uri(spec), inspect_log(lake.uri(spec), lake.storage_options))
            for spec in specs
        )
    )
