"""The document index: one LanceDB table of chunks with their vectors, and its writer lock.

Every change to one document is one LanceDB commit (``merge_insert`` that inserts the new
chunks and deletes the old ones together), so a kill at any moment leaves each document fully
in or fully out. Readers (search, chat) never take the lock: LanceDB readers see the last
commit while a writer works. The embedding model's id and dimension are stored in the table's
schema; opening the index with another model is refused with an offer to re-index.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pgpt.runtime.errors import IndexModelMismatchError, IngestLockedError
from pgpt.runtime.settings import Settings, ensure_private_dir

TABLE = "chunks"
# How documents are read and cut into chunks. Version 2: PDF paragraphs (running headers, footers
# and hyphenation undone), headings in plain text and setext Markdown, definition-list terms as
# headings, short sibling sections packed together. An index of another version is re-chunked by
# the next ingest (`ingest` says so), since its chunks and the new ones would not agree.
TEXT_FORMAT = 2
_META_FORMAT = "pgpt.text_format"  # on the text column's field: schema metadata is fixed at creation
_META_MODEL = b"pgpt.embed_model"
_META_NAME = b"pgpt.embed_name"
_META_DIM = b"pgpt.embed_dim"
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


def index_dir(settings: Settings) -> Path:
    """Where the index lives: ``PGPT_HOME/index``."""
    return settings.home / "index"


def quote(value: str) -> str:
    """A SQL string literal for LanceDB filters (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


class DocumentStore:
    """The chunk table, opened for one embedding model."""

    def __init__(self, settings: Settings, model_id: str, model_name: str, dimension: int,
                 rebuild: bool = False) -> None:
        """Open the index for this embedding model; ``rebuild`` drops every chunk first (``--reindex``)."""
        import lancedb

        self.folder = index_dir(settings)
        ensure_private_dir(self.folder)
        self.model_id, self.model_name, self.dimension = model_id, model_name, dimension
        self.db = lancedb.connect(str(self.folder))
        if rebuild:
            self.db.drop_table(TABLE, ignore_missing=True)
        self.table = self._open_or_create()

    def _open_or_create(self) -> Any:
        if TABLE not in self.db.list_tables().tables:
            return self.db.create_table(TABLE, schema=self._schema(), exist_ok=True)
        table = self.db.open_table(TABLE)
        meta = table.schema.metadata or {}
        if meta.get(_META_MODEL, b"").decode() != self.model_id:
            built_with = meta.get(_META_NAME, b"?").decode()
            raise IndexModelMismatchError(
                f"The document index in {self.folder} was built with the embedding model {built_with} "
                f"({meta.get(_META_DIM, b'?').decode()} dimensions); the model in use is {self.model_name} "
                f"({self.dimension} dimensions), and vectors of two models cannot be compared."
            )
        return table

    def _schema(self) -> Any:
        import pyarrow as pa

        return pa.schema([
            pa.field("chunk_id", pa.string()), pa.field("doc_id", pa.string()),
            pa.field("collection", pa.string()), pa.field("path", pa.string()),
            pa.field("content_hash", pa.string()),
            pa.field("text", pa.string(), metadata={_META_FORMAT: str(TEXT_FORMAT)}),
            pa.field("heading", pa.string()), pa.field("page", pa.int32()),
            pa.field("start", pa.int64()), pa.field("end", pa.int64()),
            pa.field("ingested_at", pa.float64()),
            pa.field("vector", pa.list_(pa.float32(), self.dimension)),
        ], metadata={_META_MODEL: self.model_id.encode(), _META_NAME: self.model_name.encode(),
                     _META_DIM: str(self.dimension).encode()})

    @property
    def text_format(self) -> int:
        """The version of reading and chunking that wrote the chunks (1: before it was recorded)."""
        metadata = self.table.schema.field("text").metadata or {}
        return int(metadata.get(_META_FORMAT.encode(), b"1"))

    def mark_text_format(self) -> None:
        """Record that every chunk now follows ``TEXT_FORMAT`` (after an ingest re-chunked them all)."""
        self.table.update_field_metadata({"path": "text", "metadata": {_META_FORMAT: str(TEXT_FORMAT)}})

    @property
    def version(self) -> int:
        """The table's commit number: it changes with every ingest or forget."""
        self.table.checkout_latest()
        return int(self.table.version)

    def documents(self, collection: str | None = None) -> list[DocumentRecord]:
        """Indexed documents with their chunk counts, sorted by path."""
        rows = self._rows(["doc_id", "collection", "path", "content_hash", "ingested_at"], collection)
        found: dict[str, DocumentRecord] = {}
        for row in rows:
            known = found.get(row["doc_id"])
            found[row["doc_id"]] = DocumentRecord(row["path"], row["collection"], row["doc_id"], row["content_hash"],
                                                  (known.chunks if known else 0) + 1, row["ingested_at"])
        return sorted(found.values(), key=lambda d: (d.collection, d.path))

    def _rows(self, columns: list[str], collection: str | None, where: str = "") -> list[dict[str, Any]]:
        self.table.checkout_latest()
        filters = [f for f in (where, f"collection = {quote(collection)}" if collection else "") if f]
        count = self.table.count_rows(" AND ".join(filters) or None)
        if not count:
            return []
        query = self.table.search().select(columns).limit(count)
        if filters:
            query = query.where(" AND ".join(filters))
        return query.to_list()

    def replace_document(self, doc_id: str, rows: list[dict[str, Any]], vectors: np.ndarray) -> None:
        """Insert a document's chunks and delete its old ones in one commit."""
        import pyarrow as pa

        now = time.time()
        data = {name: [row[name] for row in rows] for name in ROW_COLUMNS if name != "ingested_at"}
        data["ingested_at"] = [now] * len(rows)
        data["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float32).ravel()),
                                                           self.dimension)
        table = pa.table(data, schema=self._schema())
        (self.table.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all()
         .when_not_matched_by_source_delete(f"doc_id = {quote(doc_id)}").execute(table))

    def move_document(self, doc_id: str, new_path: str) -> None:
        """A renamed file: its chunks get the new path, no re-embedding (one commit)."""
        self.table.update(where=f"doc_id = {quote(doc_id)}", values={"path": new_path})

    def forget(self, doc_id: str) -> None:
        """Remove one document's chunks (one commit)."""
        self.table.delete(f"doc_id = {quote(doc_id)}")

    def finish_batch(self) -> None:
        """After an ingest: build or update the full-text indexes (text and heading) and compact."""
        from lancedb.index import FTS

        indexed = {column for i in self.table.list_indices() if i.index_type == "FTS" for column in i.columns}
        missing = [column for column in ("text", "heading") if column not in indexed]
        if missing and self.table.count_rows():
            for column in missing:  # a search then matches a chunk's heading trail as well as its text
                self.table.create_index(column, config=FTS(with_position=False), replace=True)
        if indexed:
            self.table.optimize()

    def has_text_index(self) -> bool:
        """Whether full-text search can run (the index exists once something was ingested)."""
        return any(i.index_type == "FTS" for i in self.table.list_indices())


@contextmanager
def writer_lock(settings: Settings) -> Iterator[None]:
    """Hold the index's writer lock; a second writer gets IngestLockedError at once."""
    folder = index_dir(settings)
    ensure_private_dir(folder)
    path = folder / ".writer.lock"
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IngestLockedError(f"Another ingestion ({holder}) is writing to the document index.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock, also when the process is killed
