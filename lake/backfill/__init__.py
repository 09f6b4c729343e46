"""History backfill: Vision archives first, REST for the tail, provenance for every file.

* :mod:`.catalog` (pure): the datasets, their tables, REST routes and row scopes;
* :mod:`.request` (pure): a validated backfill request;
* :mod:`.plan` (pure): the cheapest source for every (dataset, symbol, day);
* :mod:`.provenance` (pure): outcomes and the ``ops.sources`` rows that record them;
* :mod:`.rest_fetch`, :mod:`.write`, :mod:`.ingest`, :mod:`.run` (I/O): fetch, verify, parse,
  write and record; :mod:`.cli` is ``cryptolake backfill``.
"""
