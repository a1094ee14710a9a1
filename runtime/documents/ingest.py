"""`pgpt-tui ingest`: files and folders into the document index, incrementally and safely.

Per file: a content hash decides. Unchanged -> skipped; changed -> its chunks replaced; the same
content under a new path while the old path is gone -> renamed without re-embedding; new ->
read, chunked, embedded (batched) and written in one commit. ``prune`` removes documents whose
files are gone. A cancel (or a kill) stops between files; every file done so far stays done, so
the next run resumes where this one stopped. ``reindex`` builds a new index beside the one in
use and switches to it at the end (readers and a kill see the old one, complete, until then).

One bad file never stops the run. Whatever goes wrong with one file (its name, the file system,
a reader, a decompressor, an XML or PDF parser, a hang, a crash) ends at the file's boundary:
the file is listed as skipped (it gives no text: binary, encrypted, damaged) or failed (it could
not be read: unreadable, over the time or memory limit, or pgpt's own bug, logged with its
traceback as "internal error: TYPE"), and the next file goes on. The readers run in a worker
process for that (:mod:`pgpt.runtime.documents.isolation`). Only faults of the index itself stop
the run: a full disk, a read-only or forbidden folder (StorageError), another writer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgpt.runtime.documents.chunk_vectors import KeptVectors, chunk_rows, embedding_text, text_key
from pgpt.runtime.documents import left_out
from pgpt.runtime.documents.discovery import (NO_SUCH_PATH, collect_files, emptied_roots, fs_reason, gone_documents,
                                              is_gone, readable_file, resolved, split_unreadable)
from pgpt.runtime.documents.isolation import IsolatedReader
from pgpt.runtime.documents.opened_files import hash_open, open_file_path, open_regular
from pgpt.runtime.documents.index_folder import index_dir, writer_lock
from pgpt.runtime.documents.progress import IngestProgress, WorkShares, tick
from pgpt.runtime.documents.purge import purge
from pgpt.runtime.documents.records import DEFAULT_COLLECTION, DocumentRecord
from pgpt.runtime.documents.store import DocumentStore
from pgpt.runtime.documents.text_format import TEXT_FORMAT, changed_suffixes
from pgpt.runtime.documents.summary import IngestReport, mark_stale
from pgpt.runtime.errors import Cancelled, NotIndexedError, StorageError
from pgpt.runtime.settings import Settings

log = logging.getLogger(__name__)


def ingest(settings: Settings, paths: list[Path], embedder: Any, collection: str = DEFAULT_COLLECTION,
           prune: bool = False, reindex: bool = False, progress: Callable[[IngestProgress], None] | None = None,
           cancel: threading.Event | None = None, lock_wait_s: float = 0.0) -> IngestReport:
    """Bring the index up to date with ``paths`` (see the module docstring); ``lock_wait_s``: how long
    to wait for another writer (a server's upload) before IngestLockedError.

    Raises:
        IngestLockedError: another ingestion holds the writer lock.
        IndexModelMismatchError: the index was built with another embedding model (use ``reindex``).
        StorageError: the index cannot be written (disk full, read-only, permissions).
        Cancelled: ``cancel`` was set; the files done so far are in the index (with ``reindex``:
            the old index stays in use, unchanged).
    """
    started = time.perf_counter()
    report = IngestReport()
    with writer_lock(settings, lock_wait_s):
        store = open_store(settings, embedder, rebuild=reindex)
        kept = KeptVectors(settings, embedder.model_id)  # vectors not to embed again (chunk_vectors.py)
        work: list[tuple[Path, str, bool]] = []  # (file, collection, re-chunk it even if unchanged)
        try:
            # The reader process starts first: its Python starts while the index is read and the folders listed.
            with IsolatedReader(settings.read_timeout_s, settings.read_memory_mb) as reader:
                store.drop_stale_tables()
                store.fold_if_needed()  # an index of an earlier release gets its folded search text
                catalog = _catalog(store)
                known = catalog.setdefault(collection, {})
                files, left_out = collect_files(paths, own=(settings.home, settings.model_cache))
                # absolute, as every other path of the report (a file named as typed, "docs/a.txt", was left so, t50)
                left_out = [(os.path.abspath(path), reason) for path, reason in left_out]
                if prune:  # a PATH that is gone is what --prune is for: its documents go, it is no skipped file
                    left_out = [(path, reason) for path, reason in left_out if reason != NO_SUCH_PATH]
                report.skipped, report.failed = split_unreadable(left_out)
                work = [(path, collection, False) for path in files]
                if reindex:  # every document of the index in use comes along, in its own collection
                    work += _carried_over(store, {(str(path), collection) for path in files}, report)
                if store.text_format != TEXT_FORMAT and store.table.count_rows():
                    # Chunks of the old format first (every collection), then the files asked for.
                    report.rechunked_from = store.text_format
                    changed = changed_suffixes(store.text_format)  # after a rollback (a newer format): all
                    again = [(Path(d.path), d.collection, True) for docs in catalog.values() for d in docs.values()
                             if readable_file(d.path) and (changed is None or store.text_format > TEXT_FORMAT
                                                            or Path(d.path).suffix.lower() in changed)]
                    # a file asked for that is re-chunked anyway is done once (10 files counted 0/22)
                    done = {(str(path), into) for path, into, _ in again}
                    work = again + [item for item in work if (str(item[0]), item[1]) not in done]
                weights = WorkShares([path for path, _, _ in work])
                # the rate's clock starts with the files: the lock, the index and the folders' listing took
                # seconds that no byte stands for, and 2 of 11 small files read "ETA 194s" for a run of 8 s (t79)
                started_files = time.perf_counter()
                for index, (path, into, rechunk) in enumerate(work):
                    embedded = [0, 0]  # the current file's chunks embedded, of how many
                    if cancel is not None and cancel.is_set():
                        raise stopped(index, len(work), reindex)  # between files: none was in progress
                    if progress is not None:
                        progress(tick(index, len(work), str(path), report.chunks, started_files, share=weights(index),
                                       skipped=weights.skipped, size=weights.sizes[index]))
                    def within(done: int, total: int, reused: int, at: int = index, name: str = str(path)) -> None:
                        embedded[:] = [done, total]
                        weights.reused(at, reused / total if total else 0.0)
                        if progress is not None:
                            progress(tick(at, len(work), name, report.chunks + done, started_files, done, total,
                                           weights(at, done / total if total else 0.0), weights.skipped))

                    quick = len(report.unchanged) + len(report.skipped) + len(report.failed)
                    try:
                        _ingest_file(store, (embedder, kept), reader, path, into, catalog.setdefault(into, {}),
                                     report, cancel, rechunk, within)
                    except Cancelled:
                        raise stopped(index, len(work), reindex, str(path), (embedded[0], embedded[1])) from None
                    if len(report.unchanged) + len(report.skipped) + len(report.failed) > quick:
                        weights.passed_over(index)
                if report.rechunked_from:
                    store.mark_text_format()
            if prune:  # a folder found empty or missing keeps its documents: an unmounted share, not a purge
                emptied = emptied_roots(known.values(), paths, [*map(str, files), *(p for p, _ in left_out)])
                report.not_pruned = [(root, len(records)) for root, records in emptied]
                kept = {record.doc_id for _, records in emptied for record in records}
                _prune(store, {key: r for key, r in known.items() if r.doc_id not in kept}, paths, report)
            else:
                report.gone = [record.path for record in gone_documents(known.values(), paths)]
            mark_stale(report, known)
            _remember_left_out(settings, collection, paths, report)
        except BaseException as exc:
            _end_unfinished(store, exc)
            raise
        store.finish_batch()
        if reindex:
            store.publish()
            report.set_aside = store.set_aside
        elif report.removed:  # --prune forgot documents: their text leaves the disk too
            purge(settings, store)
    report.seconds = time.perf_counter() - started
    if progress is not None:
        progress(IngestProgress(len(work), len(work), "", report.chunks, 0.0))
    return report


def _remember_left_out(settings: Settings, collection: str, paths: list[Path], report: IngestReport) -> None:
    """Note the files this add left out that may hold text (left_out.py), under the paths as typed
    and as resolved (a folder's files are listed resolved, a file named alone as typed)."""
    roots = {Path(os.path.abspath(path.expanduser())) for path in paths} | {resolved(path) for path in paths}
    indexed = report.added + report.updated + report.renamed + report.unchanged + report.rechunked
    left_out.remember(index_dir(settings), collection, roots, report.skipped + report.failed, indexed)


def stopped(done: int, total: int, reindex: bool, current: str = "", embedded: tuple[int, int] = (0, 0)) -> Cancelled:
    """The error of an ingest stopped after ``done`` of ``total`` files (a cancel, Ctrl-C): what
    stays and what to run next, in one paragraph (the generic "Nothing was changed" is not true).
    ``current``: the file it stopped inside, which is not in the index (a file's chunks are committed
    together, so that a document is never half in it); ``embedded``: how many of its chunks were, of
    how many (their vectors are kept for the next run: t53)."""
    if reindex:
        error = Cancelled(f"Re-indexing stopped after {done} of {total} files; the index in use is unchanged. "
                          "Run it again to rebuild it.", hint="")
    else:
        inside = f" {starts_over(current, embedded)}" if current else ""
        error = Cancelled(f"Ingestion stopped after {done} of {total} files; the files done are in the index. Run "
                          f"it again to continue where it stopped (the files done are skipped).{inside}", hint="")
    # `ingest --json` printed only this paragraph: a script had to parse English for the counts (t53)
    error.details = {"stopped": True, "reindex": reindex, "files_done": done, "files_total": total,
                     "files_done_kept": not reindex, "unfinished_file": current or None,
                     "unfinished_chunks_embedded": embedded[0], "unfinished_chunks": embedded[1]}
    return error


def starts_over(current: str, embedded: tuple[int, int], kept: bool = True) -> str:
    """The sentence on the file an add stopped inside: it is read again, but its chunks embedded so
    far are kept (chunk_vectors.py), so only the rest is embedded then; ``kept`` False: they were not
    saved (an app that quit before its add reached a batch's end), and are embedded again."""
    then = "they are kept, and only the rest is embedded then" if kept else "they are embedded again then"
    done = f" ({embedded[0]:,} of its {embedded[1]:,} chunks were embedded; {then})" if embedded[0] else ""
    return f"{Path(current).name} was not finished and is read again then{done}."


def _end_unfinished(store: DocumentStore, error: BaseException) -> None:
    """After a stop: a re-index drops its new table; an update indexes the text of what it did
    (unless the index cannot be written, which would only fail again)."""
    if store.rebuilding:
        store.abandon()
    elif not isinstance(error, StorageError):
        try:
            store.finish_batch()
        except StorageError as fault:
            log.warning("full-text index not updated after the stop: %s", fault)


def _catalog(store: DocumentStore) -> dict[str, dict[str, DocumentRecord]]:
    """The indexed documents by collection, then by path."""
    catalog: dict[str, dict[str, DocumentRecord]] = {}
    for record in store.documents():
        catalog.setdefault(record.collection, {})[record.path] = record
    return catalog


def forget_path(settings: Settings, embedder: Any, path: str, collection: str | None = None) -> list[DocumentRecord]:
    """Remove the document at ``path`` (an absolute path as indexed), or every document under it
    when it is a folder, from ``collection`` (None: every collection), and the files left out there
    from `docs`' list; [] when only such files were there.

    Raises:
        NotIndexedError: nothing is indexed under that path (exit 2: a path to check, not a fault).
        IngestLockedError: an ingestion is writing the index.
    """
    with writer_lock(settings):
        store = open_store(settings, embedder)
        documents = store.documents(collection)
        matches = [d for d in documents if d.path == path or Path(d.path).is_relative_to(Path(path))]
        if not matches:  # the name as `docs` shows it: a name with a newline or an escape is listed cleaned (t47)
            from pgpt.runtime.sanitize import one_line, shown_name

            matches = [d for d in documents if shown_name(d.path) == path != d.path]  # as `docs` shows it
            matches = matches or [d for d in documents if one_line(d.path) == one_line(path) != d.path]
        if not matches and left_out.forget_under(index_dir(settings), path, collection):
            return []  # only files that were left out when added: they are no longer named (left_out.py)
        if not matches:
            where = f" (collection {collection})" if collection else ""
            raise NotIndexedError(f"{path} is not in the document index{where}, and no indexed file is under it.",
                                  hint="See the indexed files with `pgpt-tui docs`.")
        for record in matches:
            store.forget(record.doc_id)
            _drop_upload(settings, record)
        left_out.forget_under(index_dir(settings), path, collection)
        purge(settings, store)
    return matches


def forget_document(settings: Settings, embedder: Any, doc_id: str, lock_wait_s: float = 0.0) -> DocumentRecord | None:
    """Remove the document ``doc_id`` (as listed by the index); None when there is none.

    Raises:
        IngestLockedError: an ingestion is writing the index (``lock_wait_s`` waited for it).
    """
    with writer_lock(settings, lock_wait_s):
        store = open_store(settings, embedder)
        record = next((d for d in store.documents() if d.doc_id == doc_id), None)
        if record is not None:
            store.forget(doc_id)
            _drop_upload(settings, record)
            purge(settings, store)
    return record


def _drop_upload(settings: Settings, record: DocumentRecord) -> None:
    """Delete the copy a pgpt-serve keeps of an uploaded document it forgets (under PGPT_HOME/uploads):
    the server's DELETE did, `pgpt-tui forget` of the same document left the file (t60)."""
    path = Path(record.path)
    if path.is_relative_to(settings.home / "uploads") and not path.is_symlink():
        path.unlink(missing_ok=True)


def forget_gone(settings: Settings, embedder: Any, paths: list[Path],
                collection: str = DEFAULT_COLLECTION) -> list[DocumentRecord]:
    """What ``ingest(..., prune=True)`` forgets, without reading the files again: the documents of
    ``collection`` under ``paths`` whose files are gone (the app's key after a report of them).

    Raises:
        IngestLockedError: an ingestion is writing the index.
    """
    with writer_lock(settings):
        store = open_store(settings, embedder)
        gone = _prune(store, _catalog(store).get(collection, {}), paths, IngestReport())
        if gone:
            purge(settings, store)
        return gone


def open_store(settings: Settings, embedder: Any, rebuild: bool = False) -> DocumentStore:
    """The index for ``embedder`` (refused when it was built with another model, unless ``rebuild``)."""
    return DocumentStore(settings, embedder.model_id, embedder.info.name, embedder.dimension, rebuild=rebuild)


def _ingest_file(store: DocumentStore, embedding: tuple[Any, KeptVectors], reader: IsolatedReader, path: Path,
                 collection: str, known: dict[str, DocumentRecord], report: IngestReport,
                 cancel: threading.Event | None,
                 rechunk: bool = False, within: Callable[[int, int], None] | None = None) -> None:
    """One file, from its hash to its commit; every failure of the file itself ends in ``report``.
    ``embedding``: the embedder and the vectors it need not make again (chunk_vectors.py);
    ``rechunk``: read and chunk it again even if unchanged (the index's text format changed).

    Raises:
        StorageError: the index cannot be written (the run stops: the next file would fail too).
        Cancelled: ``cancel`` was set while the file was read or embedded.
    """
    key = str(path)
    try:
        opened = open_regular(path)
    except OSError as exc:
        report.failed.append((key, fs_reason(exc)))
        return
    with opened:
        _ingest_opened(store, embedding, reader, path, opened, collection, known, report, cancel, rechunk, within)


def _ingest_opened(store: DocumentStore, embedding: tuple[Any, KeptVectors], reader: IsolatedReader, path: Path,
                   opened: Any, collection: str, known: dict[str, DocumentRecord], report: IngestReport,
                   cancel: threading.Event | None, rechunk: bool, within: Callable[[int, int], None] | None) -> None:
    """``_ingest_file`` once the file is open: hashed and read from that one open file."""
    key = str(path)
    try:
        content_hash = hash_open(opened)
    except OSError as exc:
        report.failed.append((key, fs_reason(exc)))
        return
    existing = known.get(key)
    if existing is not None and existing.content_hash == content_hash and not rechunk:
        if key not in report.rechunked:
            report.unchanged.append(key)
        return
    moved = _moved_from(known, content_hash, key) if existing is None else None
    if moved is not None:
        store.move_document(moved.doc_id, key)
        known[key] = DocumentRecord(key, collection, moved.doc_id, content_hash, moved.chunks, moved.ingested_at)
        del known[moved.path]
        report.renamed.append(key)
        report.moved.append((moved.path, key))
        return
    # The reader reads the file that was opened and hashed, never the name again: a file swapped for a
    # link to a private file after the listing was read through the link and indexed (t52).
    outcome = reader.read(path, cancel, open_file_path(opened))
    if outcome.sections is None:
        (report.skipped if outcome.skipped else report.failed).append((key, outcome.skipped or outcome.failed))
        return
    doc_id = existing.doc_id if existing is not None else uuid.uuid4().hex
    model, kept = embedding  # the embedder, and the vectors it need not make again
    try:
        # an updated document's unchanged chunks, or a stopped run's, are not embedded again, nor a copy's of a
        # document indexed under another path (a server's upload of a file added from its folder was embedded
        # again in full, t67)
        twin = existing or next((r for r in known.values() if r.content_hash == content_hash), None)
        reusable = kept.for_document(store, content_hash, twin.doc_id if twin is not None else None)
        rows, vectors = chunk_rows(model, outcome.sections, doc_id, collection, key, content_hash, cancel, within,
                                   reusable, kept)
    except Cancelled:
        raise
    except Exception as exc:  # pgpt's own chunking or embedding failed: a bug, logged, and the next file goes on
        log.exception("indexing %s failed", key)
        report.failed.append((key, f"internal error: {type(exc).__name__}"))
        return
    store.replace_document(doc_id, rows, vectors, new=existing is None)
    known[key] = DocumentRecord(key, collection, doc_id, content_hash, len(rows), time.time())
    (report.rechunked if rechunk else report.updated if existing is not None else report.added).append(key)
    report.chunks += len(rows)
    report.embedded += len(rows) - sum(text_key(embedding_text(r["heading"], r["text"])) in reusable for r in rows)


def _moved_from(known: dict[str, DocumentRecord], content_hash: str, key: str) -> DocumentRecord | None:
    """A known document with this content whose file no longer exists, or is ``key`` now (a rename)."""
    for record in known.values():
        # or the same file under the path a link now gives it: `mv docs /data/docs && ln -s /data/docs docs`
        # indexed every document a second time (t70)
        if record.content_hash == content_hash and (is_gone(record.path) or _same_file(record.path, key)):
            return record
    return None


def _same_file(indexed: str, key: str) -> bool:
    """Whether the indexed path leads, through links, to the file ``key`` (itself a resolved path)."""
    try:
        return indexed != key and os.path.realpath(indexed) == key
    except (OSError, ValueError):
        return False


def _prune(store: DocumentStore, known: dict[str, DocumentRecord], paths: list[Path],
           report: IngestReport) -> list[DocumentRecord]:
    """Forget documents under ``paths`` whose files are gone; they are returned too."""
    gone = gone_documents(known.values(), paths)
    for record in gone:
        store.forget(record.doc_id)
        report.removed.append(record.path)
    return gone


def _carried_over(store: DocumentStore, asked: set[tuple[str, str]],
                  report: IngestReport) -> list[tuple[Path, str, bool]]:
    """A re-index's other work: the documents of the index in use that the paths asked for do not
    cover, each into its collection (``--reindex PATH`` dropped every other folder and collection).
    A file that is gone, or whose path now leads through a link, cannot be read again: removed."""
    work = []
    for record in store.documents_in_use():
        if (record.path, record.collection) in asked:
            continue
        if os.path.realpath(record.path) == record.path and readable_file(record.path):
            work.append((Path(record.path), record.collection, False))
        else:
            report.removed.append(record.path)
    return work
