"""(I/O) Which partitions of a table changed after a version: what an incremental consumer reads.

Each commit written by :mod:`lake.storage.writes` records the partitions it touched
(``cryptolake.partitions``); for any other commit (a table written before that key existed, a
migration, a commit by another tool) the partitions come from the commit's ``add``/``remove``/
``cdc`` actions whose ``dataChange`` is true, read from ``_delta_log``. Compaction and z-ordering
change no data (their actions say so), so they report nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lake.schemas import TableSpec
from lake.storage.layout import STORED_NAMES
from lake.storage.lineage import Partition, lineage_of
from lake.storage.log import read_commit

if TYPE_CHECKING:
    from lake.storage.tables import Lake

DATA_ACTIONS = ("add", "remove", "cdc")


def changed_partitions(lake: Lake, spec: TableSpec, since: int) -> list[Partition]:
    """The partitions touched by the commits after version ``since``, sorted and distinct.

    A partition is ``{logical partition column: value as text}`` (``{"market": "um", "date":
    "2024-01-02"}``); an unpartitioned table that changed answers ``[{}]``. The answer may hold a
    partition whose rows a commit rewrote unchanged (a merge records every partition of its batch),
    never miss one that changed.

    Raises:
        ValueError: ``since`` is negative.
        LookupError: the table does not exist, or a commit after ``since`` is no longer in the log
            (cleaned up after its retention): rebuild from the whole table instead.
    """
    if since < 0:
        raise ValueError(f"{spec.key}: since must be a version >= 0, not {since}")
    table = lake.open(spec)
    latest = table.version()
    if since >= latest:
        return []
    commits = {c["version"]: c for c in table.history(latest - since) if c["version"] > since}
    found: set[tuple[tuple[str, str], ...]] = set()
    for version in range(since + 1, latest + 1):
        commit = commits.get(version)
        recorded = lineage_of(commit).get("partitions") if commit is not None else None
        parts = recorded if recorded is not None else _from_log(lake, spec, version)
        found.update(tuple(sorted(p.items())) for p in parts)
    return [dict(p) for p in sorted(found)]


def _from_log(lake: Lake, spec: TableSpec, version: int) -> list[Partition]:
    actions = read_commit(lake.uri(spec), lake.storage_options, version)
    if actions is None:
        raise LookupError(
            f"table {spec.key}: commit {version} is no longer in the log; "
            "rebuild from the whole table"
        )
    logical = {v: k for k, v in STORED_NAMES.items()}
    out: list[Partition] = []
    for action in actions:
        for kind in DATA_ACTIONS:
            body: dict[str, Any] | None = action.get(kind)
            # a cdc file carries dataChange false by the protocol, yet only comes with a change
            if body is not None and (kind == "cdc" or body.get("dataChange", True)):
                values = body.get("partitionValues") or {}
                out.append({logical.get(c, c): str(v) for c, v in values.items()})
    return out
