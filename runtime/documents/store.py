"""The document index: one LanceDB table of chunks with their vectors.

Every change to one document is one LanceDB commit (``merge_insert`` that inserts the new
chunks and deletes the old ones together), so a kill at any moment leaves each document fully
in or fully out. Readers (search, chat) never take the lock: LanceDB readers see the last
commit while a writer works. The embedding model's id and dimension are stored in the table's
schema; opening the index with another model is refused with an offer to re-index.

A re-index builds a new table beside the one in use and switches at the end: the file
``index/active.json`` names the table readers use (``chunks`` when it is absent), and is
replaced atomically once the new table is complete. A kill before that leaves the old index in
use, complete; the next writer drops the unfinished table. Failures to write (a full disk, a
read-only folder) become StorageError naming the folder.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pgpt.runtime.documents.compaction import compaction_due, mark_compacted
from pgpt.runtime.documents.folding import COLUMNS as FOLDED
from pgpt.runtime.documents.folding import FOLD_META, FOLD_VERSION, fold_table, folded_columns, is_folded
from pgpt.runtime.documents.index_folder import (
    ACTIVE, TABLE, active_table, index_dir, read_pointer, write_atomically, writing,
)
from pgpt.runtime.documents.records import RECORD_COLUMNS, ROW_COLUMNS, DocumentRecord, quote, records_of, where_clause
from pgpt.runtime.documents.text_format import META_FORMAT, TEXT_FORMAT, table_text_format
from pgpt.runtime.errors import IndexModelMismatchError
from pgpt.runtime.settings import Settings, ensure_private_dir

if TYPE_CHECKING:  # numpy is imported where vectors are written: the app asks index_has_data at start
    import numpy as np

_META_IDENTITY = "pgpt.table_id"  # on the chunk_id field: a table's own random id (see DocumentStore.version)
T = TypeVar("T")
# Every write is a commit with a manifest that lists all data files, and LanceDB keeps old versions
# 7 days by default: after 2,673 files (one commit each) the index held 357 MB of manifests for 75 MB
# of data, and each later write took 7-8.5 s, most of it in reading those manifests again (tester
# t42). So the index is compacted, and versions older than CLEANUP_AFTER_S are removed, at the end
# of an ingest once writes piled up (compaction.py) and every COMPACT_EVERY commits, or one commit
# per COMPACT_CHUNKS chunks of the index if that is more: a compaction rewrites the whole table, and
# its old files stay until they are CLEANUP_AFTER_S old. A reader follows the latest version before
# each search, which takes well under a second, so a version a minute old is no longer read.
COMPACT_EVERY = 64
COMPACT_CHUNKS = 100
CLEANUP_AFTER_S = 60
_META_MODEL = b"pgpt.embed_model"
_META_NAME = b"pgpt.embed_name"
_META_DIM = b"pgpt.embed_dim"
class DocumentStore:
    """The chunk table, opened for one embedding model."""

    def __init__(self, settings: Settings, model_id: str, model_name: str, dimension: int,
                 rebuild: bool = False) -> None:
        """Open the index for this embedding model; ``rebuild`` starts a new, empty table beside the
        one in use, which :meth:`publish` makes the index (``--reindex``)."""
        import lancedb

        self.folder = index_dir(settings)
        self.model_id, self.model_name, self.dimension = model_id, model_name, dimension
        self.rebuilding = rebuild
        self.damaged_in_use = ""  # a re-index's unreadable old table (see documents_in_use)
        self.set_aside = ""  # where publish() moved it
        self._changed = False
        self._folded = False  # known to have the folded columns (fold_if_needed)
        self._commits = 0
        with writing(self.folder, "Opening the document index"):
            ensure_private_dir(self.folder)
            self.db = lancedb.connect(str(self.folder))
            if rebuild:
                self._repair_pointer()
                self.name = f"{TABLE}-{uuid.uuid4().hex[:12]}"
                self._table = _with_identity(self.db.create_table(self.name, schema=self._schema()))
            else:
                self.name = active_table(self.folder)
                self._table = self._open_or_create(self.name)
        self._pointer = self._pointer_stamp()
        self._read_version: int | None = None

    @property
    def table(self) -> Any:
        """The LanceDB table; a reader follows a re-index that another process finished meanwhile."""
        if not self.rebuilding and self._pointer_stamp() != self._pointer:
            self._pointer = self._pointer_stamp()
            name = active_table(self.folder)
            if name != self.name:
                import lancedb

                # a fresh session: the old table's files are deleted (a re-index, a purge after a forget),
                # and the old one kept them open, as it keeps every index version it searched (t56)
                self.db = lancedb.connect(str(self.folder))
                self.name, self._table = name, self._open_or_create(name)
        return self._table

    def latest(self) -> Any:
        """The table at its latest version, for a read; a newer version than the last one read is
        opened on a fresh connection. A connection's session keeps every version's full-text index
        it searched, with its file open: a server searching between uploads held one more descriptor
        of a deleted index per upload, about 4 a minute under steady use, so the default limit of 1,024
        within hours (t56). The old connection goes with its last reader."""
        import lancedb

        table = self.table
        table.checkout_latest()
        if self._read_version is not None and table.version != self._read_version and not self.rebuilding:
            self.db = lancedb.connect(str(self.folder))
            table = self._table = self.db.open_table(self.name)
        self._read_version = table.version
        return table

    def _pointer_stamp(self) -> tuple[int, int] | None:
        try:
            info = (self.folder / ACTIVE).stat()
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns

    def _open_or_create(self, name: str) -> Any:
        if name not in self.db.list_tables().tables:
            return _with_identity(self.db.create_table(name, schema=self._schema(), exist_ok=True))
        table = self.db.open_table(name)
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
            pa.field("text", pa.string(), metadata={META_FORMAT: str(TEXT_FORMAT)}),
            pa.field("heading", pa.string()), pa.field("page", pa.int32()),
            pa.field(FOLDED["text"], pa.string(), metadata={FOLD_META: FOLD_VERSION}),
            pa.field(FOLDED["heading"], pa.string()),
            pa.field("start", pa.int64()), pa.field("end", pa.int64()),
            pa.field("ingested_at", pa.float64()),
            pa.field("vector", pa.list_(pa.float32(), self.dimension)),
        ], metadata={_META_MODEL: self.model_id.encode(), _META_NAME: self.model_name.encode(),
                     _META_DIM: str(self.dimension).encode()})

    @property
    def text_format(self) -> int:
        """The version of reading and chunking that wrote the chunks (1: before it was recorded)."""
        return table_text_format(self.table)

    def mark_text_format(self) -> None:
        """Record that every chunk now follows ``TEXT_FORMAT`` (after an ingest re-chunked them all)."""
        with writing(self.folder):
            self.table.update_field_metadata({"path": "text", "metadata": {META_FORMAT: str(TEXT_FORMAT)}})

    @property
    def version(self) -> str:
        """The table's name, identity and commit number: it changes with every ingest, forget and
        re-index. An index deleted or moved aside and made again is a table of the same name whose
        commit number starts over: without its own identity, its answers were taken from the cache of
        the old one, a forgotten document's text with them (t60)."""
        table = self.latest()
        identity = (table.schema.field("chunk_id").metadata or {}).get(_META_IDENTITY.encode(), b"").decode()
        return f"{self.name}{'.' + identity if identity else ''}@{table.version}"

    def documents(self, collection: str | None = None) -> list[DocumentRecord]:
        """Indexed documents with their chunk counts, sorted by path."""
        return records_of(self._rows(list(RECORD_COLUMNS), collection))

    def documents_in_use(self) -> list[DocumentRecord]:
        """While rebuilding: the documents of the index in use (made with any embedder), which the
        re-index carries over; none when there is none or it cannot be read (a damaged index)."""
        name = active_table(self.folder)
        try:
            if name == self.name or name not in self.db.list_tables().tables:
                return []
            table = self.db.open_table(name)
            count = table.count_rows()
            return records_of(table.search().select(list(RECORD_COLUMNS)).limit(count).to_list() if count else [])
        except Exception:  # lancedb and pyarrow raise their own kinds on a damaged table
            logging.getLogger(__name__).warning("the index in use could not be read", exc_info=True)
            # Its documents cannot come along; publish() moves it out of the folder instead of
            # dropping it (its earlier versions may still be readable there).
            self.damaged_in_use = name
            return []

    def chunk_count(self, collection: str | None = None, doc_ids: list[str] | None = None) -> int:
        """Chunks indexed (in ``collection``, of ``doc_ids`` when given), counted without reading them."""
        self.latest()
        return self.reading(lambda: self.table.count_rows(where_clause(collection, doc_ids)))  # a filter reads data

    def _rows(self, columns: list[str], collection: str | None, where: str = "") -> list[dict[str, Any]]:
        self.latest()
        filters = [f for f in (where, f"collection = {quote(collection)}" if collection else "") if f]

        def read() -> list[dict[str, Any]]:
            count = self.table.count_rows(" AND ".join(filters) or None)
            if not count:
                return []
            query = self.table.search().select(columns).limit(count)
            return (query.where(" AND ".join(filters)) if filters else query).to_list()

        return self.reading(read)

    def reading(self, read: Callable[[], T]) -> T:
        """``read()``, and once more on the latest version when a writer's compaction removed the
        files of the version it read (the old version's files go once it is CLEANUP_AFTER_S old, and
        a reader that checked out the latest a moment before the compaction reads them): LanceDB says
        "lance error: Not found: .../data/...", which read as a damaged index."""
        try:
            return read()
        except RuntimeError as exc:
            if "Not found" not in str(exc):
                raise
            self.latest()
            return read()

    def replace_document(self, doc_id: str, rows: list[dict[str, Any]], vectors: np.ndarray,
                         new: bool = False) -> None:
        """Insert a document's chunks and delete its old ones in one commit; a ``new`` document (no
        chunks yet) is appended, without the merge's scan of every chunk for old ones."""
        import numpy as np
        import pyarrow as pa

        now = time.time()
        data = {name: [row[name] for row in rows] for name in ROW_COLUMNS if name != "ingested_at"}
        data["ingested_at"] = [now] * len(rows)
        data.update(folded_columns(data))
        data["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float32).ravel()),
                                                           self.dimension)
        table = pa.table(data, schema=self._schema())
        self.fold_if_needed()  # an index made before the folded columns has no place for them yet
        with writing(self.folder):
            if new:
                self.table.add(table)
            else:
                (self.table.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all()
                 .when_not_matched_by_source_delete(f"doc_id = {quote(doc_id)}").execute(table))
        self._committed()

    def move_document(self, doc_id: str, new_path: str) -> None:
        """A renamed file: its chunks get the new path, and their searched heading its new name (see
        folding.py), without re-embedding (one commit)."""
        import pyarrow as pa

        self.fold_if_needed()
        where = f"doc_id = {quote(doc_id)}"
        rows = self.table.search().where(where).select(["chunk_id", "heading"]).limit(self.table.count_rows(where))
        rows = rows.to_list()
        paths = [new_path] * len(rows)
        folded = folded_columns({"path": paths, "heading": [r["heading"] for r in rows], "text": [""] * len(rows)})
        update = pa.table({"chunk_id": [r["chunk_id"] for r in rows], "path": paths,
                           FOLDED["heading"]: folded[FOLDED["heading"]]})
        with writing(self.folder):
            self.table.merge_insert("chunk_id").when_matched_update_all().execute(update)
        self._committed()

    def forget(self, doc_id: str) -> None:
        """Remove one document's chunks (one commit)."""
        with writing(self.folder):
            self.table.delete(f"doc_id = {quote(doc_id)}")
        self._committed()

    def _committed(self) -> None:
        """Count a commit; compact the index once enough of them piled up (see COMPACT_EVERY)."""
        self._changed = True
        self._commits += 1
        if self._commits >= COMPACT_EVERY and self._commits >= self.table.count_rows() // COMPACT_CHUNKS:
            with writing(self.folder):
                self._optimize()
            self._commits = 0

    def _optimize(self) -> None:
        """Merge the small data files, bring the full-text indexes up to date and remove the versions
        older than CLEANUP_AFTER_S (with their files): a second or less for tens of thousands of chunks."""
        from datetime import timedelta

        self.table.optimize(cleanup_older_than=timedelta(seconds=CLEANUP_AFTER_S))
        mark_compacted(self.folder)

    def mark_changed(self) -> None:
        """Rows were written without replace_document (purge.py's copy): finish_batch() indexes them."""
        self._changed = True

    def fold_if_needed(self) -> None:
        """Give an index made before the folded columns (folding.py) its folded text, in place, and its
        identity if it has none (see version): both are an older release's table brought up to date by
        its first writer, which holds the writer lock. finish_batch() then builds the full-text indexes."""
        if self._folded or is_folded(self.table):
            self._folded = True
            return
        with writing(self.folder, "Folding the document index's text for search"):
            fold_table(self.table)
            _with_identity(self.table)  # made before identities too
        self._folded = self._changed = True

    def finish_batch(self) -> None:
        """After an ingest that changed something: build the full-text indexes if missing (on the
        folded text and heading: a search then matches a chunk's heading trail as well as its text),
        and compact, which also brings them up to date, once writes piled up (see compaction.py)."""
        from lancedb.index import FTS

        if not self._changed:
            return  # nothing to index or compact (and nothing is written, even on a full disk)
        self.fold_if_needed()  # a batch that only forgot documents may not have folded an old index
        with writing(self.folder):
            fts = [i for i in self.table.list_indices() if i.index_type == "FTS"]
            for old in [i for i in fts if not set(i.columns) & set(FOLDED.values())]:
                self.table.drop_index(old.name)  # on the text itself: a search would count both
                fts.remove(old)
            indexed = {column for i in fts for column in i.columns}
            missing = [column for column in FOLDED.values() if column not in indexed]
            if missing and self.table.count_rows():
                for column in missing:
                    self.table.create_index(column, config=FTS(with_position=False), replace=True)
            due = missing or self.rebuilding or compaction_due(self.table, [i.name for i in fts], self.folder,
                                                               self.name, CLEANUP_AFTER_S)
            if due:
                self._optimize()  # also after the indexes were created: it removes the old versions

    def publish(self) -> None:
        """End a re-index: readers switch to the new table at once (one atomic rename), and the old
        table is dropped."""
        assert self.rebuilding, "only a re-index publishes a table"
        with writing(self.folder):
            write_atomically(self.folder / ACTIVE, json.dumps({"table": self.name}))
            self.rebuilding = False
            self._pointer = self._pointer_stamp()
        if self.damaged_in_use:
            self.set_aside = self._set_aside(self.damaged_in_use)
            if not self.set_aside:
                return  # it could not be moved: dropping it would lose what may still be recovered
        self.drop_stale_tables()

    def _set_aside(self, name: str) -> str:
        """Move table ``name`` out of the index folder, beside it (``index.damaged-STAMP/``), as
        the answer cache is; the new folder's path, or '' when it could not be moved."""
        target = self.folder.with_name(f"{self.folder.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            target.mkdir(mode=0o700)
            os.rename(self.folder / f"{name}.lance", target / f"{name}.lance")
        except OSError as exc:
            logging.getLogger(__name__).warning("could not move the damaged index table %s aside: %s", name, exc)
            return ""
        return str(target)

    def abandon(self) -> None:
        """A re-index that stopped: drop its unfinished table; the old index stays in use."""
        if self.rebuilding:
            self._drop(self.name)

    def drop_stale_tables(self) -> None:
        """Drop tables that are not the index (left by a re-index that was killed or replaced).

        Only a writer calls this, under the writer lock: no other process is building a table.
        """
        active, certain, problem = read_pointer(self.folder)
        if not certain:  # several tables and no pointer to say which is the index: keep them all (doctor says so)
            logging.getLogger(__name__).warning("index/%s %s: no unused table is dropped", ACTIVE, problem)
            return
        if not self.rebuilding:
            with writing(self.folder):
                self._repair_pointer()
        keep = {active, self.name}
        for name in self.db.list_tables().tables:
            if name.startswith(TABLE) and name not in keep:
                self._drop(name)

    def _repair_pointer(self) -> None:
        """A writer's: rewrite a missing or damaged ``active.json`` where the tables on disk say for certain
        which one is the index (read_pointer), before a re-index adds a second table that would blur it."""
        active, certain, problem = read_pointer(self.folder)
        if problem and certain:
            logging.getLogger(__name__).warning("index/%s %s: it names %s again", ACTIVE, problem, active)
            write_atomically(self.folder / ACTIVE, json.dumps({"table": active}))

    def _drop(self, name: str) -> None:
        try:
            self.db.drop_table(name, ignore_missing=True)
        except Exception as exc:  # disk space comes back at the next writer's clean-up
            import logging

            logging.getLogger(__name__).warning("could not drop the unused index table %s: %s", name, exc)

    def text_index(self) -> str:
        """How full-text search runs: "folded" on the folded columns (folding.py), "plain" on the
        text itself (an index made before them, until its next ingest), "" not yet (nothing ingested)."""
        columns = {c for i in self.table.list_indices() if i.index_type == "FTS" for c in i.columns}
        return "folded" if FOLDED["text"] in columns else "plain" if columns else ""


def _with_identity(table: Any) -> Any:
    """``table``, given a random identity unless it has one (see DocumentStore.version)."""
    if not (table.schema.field("chunk_id").metadata or {}).get(_META_IDENTITY.encode()):
        table.update_field_metadata({"path": "chunk_id", "metadata": {_META_IDENTITY: uuid.uuid4().hex[:16]}})
    return table
