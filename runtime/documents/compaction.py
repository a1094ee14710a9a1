"""When the end of an ingest compacts the document index (LanceDB's `optimize`), and its marker.

Each `optimize` kept 0.1-0.2 MB of the process for good (LanceDB's own; the server grew as much under
jemalloc), and every upload ran one at its end: a server grew with its uploads, 6.5 MB per 100 rounds
of `python -m pgpt.bench.serve_churn` (t56; 3.3 MB now). So an ingest's end compacts only once writes
piled up.
Until then nothing is lost: chunks not yet in the full-text index are still found (LanceDB reads them
in full), and deleted chunks and old versions wait for that compaction's clean-up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

OPTIMIZE_FRAGMENTS = 16  # data files (each commit adds one, the next write reads them all); old versions
OPTIMIZE_UNINDEXED = 2000  # chunks the full-text index has not taken in (a search reads those in full)
COMPACTED = "compacted"  # in the index folder, touched by each compaction: its time is the last clean-up's


def compaction_due(table: Any, fts_indexes: list[str], folder: Path, name: str, cleanup_after_s: float) -> bool:
    """Whether the writes since the last compaction of ``table`` (named ``name`` in ``folder``, its
    full-text indexes named ``fts_indexes``) are worth one now: OPTIMIZE_FRAGMENTS data files,
    OPTIMIZE_UNINDEXED unindexed chunks, or OPTIMIZE_FRAGMENTS old versions a clean-up would remove now."""
    if table.stats()["fragment_stats"]["num_fragments"] >= OPTIMIZE_FRAGMENTS:
        return True
    if any(table.index_stats(index).num_unindexed_rows >= OPTIMIZE_UNINDEXED for index in fts_indexes):
        return True
    # the last clean-up kept the versions under cleanup_after_s old (a reader may be on one): after a
    # large ingest, the files its compactions replaced, several times the index, go at the next upload
    try:
        since = time.time() - (folder / COMPACTED).stat().st_mtime
        versions = sum(1 for path in (folder / f"{name}.lance" / "_versions").iterdir() if path.suffix == ".manifest")
    except OSError:  # never compacted, or a table not written yet
        return True
    return since >= cleanup_after_s and versions >= OPTIMIZE_FRAGMENTS


def mark_compacted(folder: Path) -> None:
    """Note the time of a compaction (and of its clean-up)."""
    (folder / COMPACTED).touch(mode=0o600)  # a new one private, as pgpt's other state files (t66)
