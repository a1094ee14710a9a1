"""The index's rows as the rest of pgpt reads them: documents with their chunk counts, and filters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Columns read for listings and results (never the vectors).
ROW_COLUMNS = ["chunk_id", "doc_id", "collection", "path", "content_hash", "text", "heading", "page",
               "start", "end", "ingested_at"]


@dataclass(frozen=True)
class DocumentRecord:
    """One indexed document, as `pgpt-tui docs` lists it."""

    path: str
    collection: str
    doc_id: str
    content_hash: str
    chunks: int
    ingested_at: float


DEFAULT_COLLECTION = "default"  # where documents go when no collection is named

RECORD_COLUMNS = ("doc_id", "collection", "path", "content_hash", "ingested_at")


def records_of(rows: list[dict[str, Any]]) -> list[DocumentRecord]:
    """Chunk rows as documents with their chunk counts, sorted by collection and path."""
    found: dict[str, DocumentRecord] = {}
    for row in rows:
        known = found.get(row["doc_id"])
        found[row["doc_id"]] = DocumentRecord(row["path"], row["collection"], row["doc_id"], row["content_hash"],
                                              (known.chunks if known else 0) + 1, row["ingested_at"])
    return sorted(found.values(), key=lambda d: (d.collection, d.path))


def quote(value: str) -> str:
    """A SQL string literal for LanceDB filters (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def where_clause(collection: str | None, doc_ids: list[str] | None) -> str | None:
    """The LanceDB filter for one collection and some documents (None: every chunk)."""
    filters = [f"collection = {quote(collection)}"] if collection else []
    if doc_ids:
        filters.append(f"doc_id IN ({', '.join(quote(d) for d in doc_ids)})")
    return " AND ".join(filters) or None
