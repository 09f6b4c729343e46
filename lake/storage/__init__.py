"""Delta Lake storage: table lifecycle, idempotent writes, lineage, time travel, watermarks."""

from lake.storage.lineage import CommitInfo, Partition, content_hash, new_batch_id
from lake.storage.log import DamagedTableError
from lake.storage.scope import Scope, TimeRange, day_range
from lake.storage.tables import Lake, TableStats
from lake.storage.writes import Keep, WriteResult

__all__ = [
    "CommitInfo",
    "DamagedTableError",
    "Keep",
    "Lake",
    "Partition",
    "Scope",
    "TableStats",
    "TimeRange",
    "WriteResult",
    "content_hash",
    "day_range",
    "new_batch_id",
]
