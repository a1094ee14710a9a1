"""Forgetting for good: once a document is forgotten, its text leaves the disk, not only the answers.

LanceDB deletes a row by marking it: its text stays in the data file until a compaction rewrites
that file, which it does only once a tenth of the file's rows are gone, and the old versions keep
it a minute more. The answer cache kept the answers made from it, passages included, until its
size cap evicted them: months for one user (t60). So a forget (`pgpt-tui forget`, `ingest
--prune`, the app's Delete, the server's DELETE) ends with :func:`purge`: the index's remaining
rows are copied into a new table, which readers switch to at once (one atomic rename, as a
re-index publishes), the old table's files are deleted, and the answers cached from documents are
dropped (an index that changed can no longer reach them; the chat answers stay). An edited
document's old text goes at the index's next compaction instead (see compaction.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pgpt.runtime.errors import StorageError

if TYPE_CHECKING:
    from pgpt.runtime.documents.store import DocumentStore
    from pgpt.runtime.settings import Settings

log = logging.getLogger(__name__)


def purge(settings: Settings, store: DocumentStore) -> None:
    """After documents were forgotten from ``store`` (under the writer lock): rewrite the index
    without them and drop the answers cached from documents. A failure (a full disk) is logged: the
    documents are forgotten all the same, and their text goes at the next compaction."""
    try:
        _rewrite(settings, store)
    except StorageError as fault:
        log.warning("the forgotten documents' text stays on disk until the next compaction: %s", fault)
    forget_cached_answers(settings)


def forget_cached_answers(settings: Settings) -> int:
    """Drop every answer the cache keeps from document text (answers, drafts, similar questions);
    how many entries went. Chat answers stay."""
    from pgpt.runtime.llm.answer_cache import DOCUMENTS, AnswerCache

    if not (settings.answer_cache_dir / "cache.db").exists():
        return 0
    try:
        cache = AnswerCache(settings.answer_cache_dir, settings.cache_size_mb)
    except StorageError as fault:
        log.warning("the answers cached from the forgotten documents were not dropped: %s", fault)
        return 0
    try:
        return cache.evict(DOCUMENTS)
    except Exception as exc:  # sqlite: locked for 30 s, or damaged; the answers are unreachable anyway
        log.warning("the answers cached from the forgotten documents were not dropped: %s", exc)
        return 0
    finally:
        cache.close()


def _rewrite(settings: Settings, store: DocumentStore) -> None:
    """Copy the index's rows into a new table and make it the index; the old table is dropped."""
    from pgpt.runtime.documents.store import DocumentStore
    from pgpt.runtime.documents.text_format import META_FORMAT

    store.fold_if_needed()  # the copy has the folded columns: an older table gets them first
    rows = store.table.to_arrow()  # without the deleted rows; vectors and all (no re-embedding)
    text_format = store.text_format
    fresh = DocumentStore(settings, store.model_id, store.model_name, store.dimension, rebuild=True)
    try:
        if rows.num_rows:
            fresh.table.add(rows.select(fresh.table.schema.names))
            fresh.mark_changed()
        fresh.table.update_field_metadata({"path": "text", "metadata": {META_FORMAT: str(text_format)}})
        fresh.finish_batch()
        fresh.publish()
    except BaseException:
        fresh.abandon()
        raise
