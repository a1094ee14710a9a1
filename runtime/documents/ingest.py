"""`pgpt-tui ingest`: files and folders into the document index, incrementally and safely.

Per file: a content hash decides. Unchanged -> skipped; changed -> its chunks replaced; the same
content under a new path while the old path is gone -> renamed without re-embedding; new ->
read, chunked, embedded (batched) and written in one commit. ``prune`` removes documents whose
files are gone. Files that give no text are reported with the reason, never silently dropped.
A cancel (or a kill) stops between files; every file done so far stays done, so the next run
resumes where this one stopped.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgpt.runtime.documents.chunking import chunk_sections
from pgpt.runtime.documents.readers import KNOWN_SUFFIXES, Skipped, is_text_file, read_document
from pgpt.runtime.documents.store import DocumentRecord, DocumentStore, writer_lock
from pgpt.runtime.errors import Cancelled, PgptError
from pgpt.runtime.settings import Settings

MAX_FILE_BYTES = 100_000_000
DEFAULT_COLLECTION = "default"


@dataclass(frozen=True)
class IngestProgress:
    """One tick: files looked at so far, of how many, and the current file."""

    done: int
    total: int
    current: str
    chunks: int
    eta_s: float | None


@dataclass
class IngestReport:
    """The summary printed at the end (``--json`` prints these fields)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0

    @property
    def chunks_per_s(self) -> float:
        """Chunks embedded and written per second of the run."""
        return self.chunks / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        """One line: the counts, chunks and speed."""
        return (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.renamed)} renamed, "
                f"{len(self.unchanged)} unchanged, {len(self.removed)} removed, {len(self.skipped)} skipped, "
                f"{len(self.failed)} failed; {self.chunks} chunks in {self.seconds:.1f} s "
                f"({self.chunks_per_s:.1f} chunks/s)")


def ingest(settings: Settings, paths: list[Path], embedder: Any, collection: str = DEFAULT_COLLECTION,
           prune: bool = False, reindex: bool = False, progress: Callable[[IngestProgress], None] | None = None,
           cancel: threading.Event | None = None) -> IngestReport:
    """Bring the index up to date with ``paths`` (see the module docstring).

    Raises:
        IngestLockedError: another ingestion holds the writer lock.
        IndexModelMismatchError: the index was built with another embedding model (use ``reindex``).
        Cancelled: ``cancel`` was set; the files done so far are in the index.
    """
    started = time.perf_counter()
    report = IngestReport()
    with writer_lock(settings):
        store = open_store(settings, embedder, rebuild=reindex)
        known = {d.path: d for d in store.documents(collection)}
        files, report.skipped = _collect(paths)
        try:
            for index, path in enumerate(files):
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"Ingestion stopped after {index} of {len(files)} files; "
                                    "run it again to continue where it stopped.")
                if progress is not None:
                    progress(_tick(index, len(files), str(path), report.chunks, started))
                _ingest_file(store, embedder, path, collection, known, report)
            if prune:
                _prune(store, known, paths, report)
        finally:
            store.finish_batch()
    report.seconds = time.perf_counter() - started
    if progress is not None:
        progress(IngestProgress(len(files), len(files), "", report.chunks, 0.0))
    return report


def forget_path(settings: Settings, embedder: Any, path: str) -> list[DocumentRecord]:
    """Remove the document at ``path`` (an absolute path as indexed) from every collection.

    Raises:
        PgptError: nothing is indexed under that path.
        IngestLockedError: an ingestion is writing the index.
    """
    with writer_lock(settings):
        store = open_store(settings, embedder)
        matches = [d for d in store.documents() if d.path == path]
        if not matches:
            raise PgptError(f"{path} is not in the document index.", hint="See the indexed files with `pgpt-tui docs`.")
        for record in matches:
            store.forget(record.doc_id)
    return matches


def forget_document(settings: Settings, embedder: Any, doc_id: str) -> DocumentRecord | None:
    """Remove the document ``doc_id`` (as listed by the index); None when there is none.

    Raises:
        IngestLockedError: an ingestion is writing the index.
    """
    with writer_lock(settings):
        store = open_store(settings, embedder)
        record = next((d for d in store.documents() if d.doc_id == doc_id), None)
        if record is not None:
            store.forget(doc_id)
    return record


def open_store(settings: Settings, embedder: Any, rebuild: bool = False) -> DocumentStore:
    """The index for ``embedder`` (refused when it was built with another model, unless ``rebuild``)."""
    return DocumentStore(settings, embedder.model_id, embedder.info.name, embedder.dimension, rebuild=rebuild)


def _tick(done: int, total: int, current: str, chunks: int, started: float) -> IngestProgress:
    elapsed = time.perf_counter() - started
    eta = elapsed / done * (total - done) if done else None
    return IngestProgress(done, total, current, chunks, eta)


def _collect(paths: list[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to read under ``paths``, and the ones left out with why."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for root in paths:
        root = root.expanduser()
        if not root.exists():
            skipped.append((str(root), "no such file or folder"))
        elif root.is_dir():
            for path, reason in _walk(root.resolve()):
                (skipped.append((str(path), reason)) if reason else files.append(path))
        else:
            reason = _file_problem(root.resolve())
            (skipped.append((str(root), reason)) if reason else files.append(root.resolve()))
    return sorted(set(files)), skipped


def _walk(root: Path) -> Iterator[tuple[Path, str]]:
    """Every file under ``root``; symlinks followed only when they stay inside ``root``."""
    for folder, dirs, names in os.walk(root, followlinks=False):
        for name in sorted(dirs):
            link = Path(folder) / name
            if link.is_symlink():
                target = link.resolve()
                if not target.is_relative_to(root):
                    yield link, "a symlink leading outside the folder"
                # a link to a folder inside the root: that folder is walked on its own
        dirs[:] = [d for d in dirs if not d.startswith(".") and not (Path(folder) / d).is_symlink()]
        for name in sorted(names):
            path = Path(folder) / name
            if name.startswith("."):
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    yield path, "a symlink leading outside the folder"
                continue  # an inside target is ingested under its own path
            yield path, _file_problem(path)


def _file_problem(path: Path) -> str:
    """Why ``path`` cannot be ingested, or ''."""
    try:
        info = path.lstat()
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return "a special file (device, pipe or socket)"
    if info.st_size > MAX_FILE_BYTES:
        return f"too large ({info.st_size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB)"
    if not os.access(path, os.R_OK):
        return "unreadable (permission denied)"
    if path.suffix.lower() not in KNOWN_SUFFIXES and not is_text_file(path):
        return "binary file"
    return ""


def _ingest_file(store: DocumentStore, embedder: Any, path: Path, collection: str,
                 known: dict[str, DocumentRecord], report: IngestReport) -> None:
    key = str(path)
    try:
        content_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        report.failed.append((key, f"unreadable ({exc.strerror})"))
        return
    existing = known.get(key)
    if existing is not None and existing.content_hash == content_hash:
        report.unchanged.append(key)
        return
    moved = _moved_from(known, content_hash) if existing is None else None
    if moved is not None:
        store.move_document(moved.doc_id, key)
        known[key] = DocumentRecord(key, collection, moved.doc_id, content_hash, moved.chunks, moved.ingested_at)
        del known[moved.path]
        report.renamed.append(f"{moved.path} -> {key}")
        return
    try:
        sections = read_document(path)
    except Skipped as exc:
        report.skipped.append((key, str(exc)))
        return
    except (OSError, ValueError, RuntimeError) as exc:  # a damaged file must not stop the run
        report.failed.append((key, f"{type(exc).__name__}: {exc}"))
        return
    doc_id = existing.doc_id if existing is not None else uuid.uuid4().hex
    chunks = chunk_sections(sections, lambda text: len(embedder.tokenizer.encode(text).ids))
    vectors = embedder.embed([_embedding_text(c) for c in chunks])
    rows = [{"chunk_id": f"{doc_id}:{i}", "doc_id": doc_id, "collection": collection, "path": key,
             "content_hash": content_hash, "text": c.text, "heading": c.heading, "page": c.page,
             "start": c.start, "end": c.end} for i, c in enumerate(chunks)]
    store.replace_document(doc_id, rows, vectors)
    known[key] = DocumentRecord(key, collection, doc_id, content_hash, len(rows), time.time())
    (report.updated if existing is not None else report.added).append(key)
    report.chunks += len(rows)


def _embedding_text(chunk: Any) -> str:
    """The heading trail gives a chunk its context (a bare paragraph may not name its subject)."""
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


def _moved_from(known: dict[str, DocumentRecord], content_hash: str) -> DocumentRecord | None:
    """A known document with this content whose file no longer exists (a rename)."""
    for record in known.values():
        if record.content_hash == content_hash and not Path(record.path).exists():
            return record
    return None


def _prune(store: DocumentStore, known: dict[str, DocumentRecord], paths: list[Path],
           report: IngestReport) -> None:
    """Forget documents under ``paths`` whose files are gone."""
    roots = [p.expanduser().resolve() for p in paths]
    for record in list(known.values()):
        path = Path(record.path)
        inside = any(path == root or path.is_relative_to(root) for root in roots)
        if inside and not path.exists():
            store.forget(record.doc_id)
            report.removed.append(record.path)
