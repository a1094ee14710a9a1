"""A document's chunks and their vectors, embedded in batches, without embedding again a text the
index or a stopped run already has a vector for.

Two cases embedded everything again: an edit to one paragraph of a long manual re-embedded all of
its chunks, and a stop late in a large file (Ctrl-C, Ctrl+X, SIGTERM) threw its embedded chunks
away: the next run started that file over (t53). Now an updated document reuses the vectors of its
unchanged chunks (read from the index), and a stop keeps the stopped file's vectors, beside other
stopped files' (each by its content hash), in ``PGPT_HOME/unfinished-adds/vectors.npz``, which the
next run of the same file and embedder reads.

A vector is keyed by the sha256 of the text the embedder reads (heading trail and text). An
embedding does not depend on the texts batched with it, so a kept vector is the one the embedder
would give now. The .npz holds only numbers and bytes and is read with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pgpt.runtime.documents.chunking import chunk_sections
from pgpt.runtime.documents.readers import Section
from pgpt.runtime.documents.records import quote
from pgpt.runtime.errors import Cancelled
from pgpt.runtime.settings import Settings, ensure_private_dir

log = logging.getLogger(__name__)

# Chunks embedded per call: between two calls a large file reports progress and can be stopped
# (a 20 MB text is 25,000 chunks: 8 minutes on a busy 2-core machine showed "0/12 files" all along).
# 128, about 2 s on 2 cores: at 512 a stop (Ctrl+X, a server told to stop) waited 6-10 s unanswered;
# 1,024 chunks embedded 128 or 512 at a time took the same time (13.8-14.9 s, alternated runs).
EMBED_BATCH = 128
# A stopped file's vectors (66 MB for 42,867 chunks) go after a week unless it is added again.
KEEP_S = 7 * 24 * 3600.0
# At most this many kept vectors (300 MB at 384 dimensions), the newest stopped files' first.
KEEP_MAX = 200_000


def embedding_text(heading: str, text: str) -> str:
    """What the embedder reads of a chunk: the heading trail gives it its context (a bare paragraph
    may not name its subject)."""
    return f"{heading}\n{text}" if heading else text


def text_key(text: str) -> bytes:
    """The key of a text's vector."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class KeptVectors:
    """The vectors one ingestion may reuse: stopped runs' (a few files, each by its content) and, per
    document, the index's own; ``model_id`` keeps another embedder's vectors out."""

    def __init__(self, settings: Settings, model_id: str) -> None:
        self.file = kept_path(settings)
        self.model_id = model_id
        self._stopped: dict[str, StoppedFile] | None = None

    def for_document(self, store: Any, content_hash: str, old_doc_id: str | None) -> dict[bytes, np.ndarray]:
        """The vectors known for a file with ``content_hash``: a stopped run's of this very content,
        and those of the chunks the index holds for it (``old_doc_id``: the document it updates)."""
        known: dict[bytes, np.ndarray] = {}
        if old_doc_id is not None:
            try:
                count = max(store.chunk_count(doc_ids=[old_doc_id]), 1)
                rows = store.reading(lambda: store.table.search().where(f"doc_id = {quote(old_doc_id)}")
                                     .select(["text", "heading", "vector"]).limit(count).to_list())
                known = {text_key(embedding_text(r["heading"], r["text"])): np.asarray(r["vector"], np.float32)
                         for r in rows}
            except Exception as exc:  # only time is saved: an index that cannot be read here is written anyway
                log.warning("the old chunks of %s are embedded again: %s", old_doc_id, exc)
        stopped = self._stopped_runs().get(content_hash)
        if stopped is not None:
            known.update(stopped.vectors)
        return known

    def _stopped_runs(self) -> dict[str, StoppedFile]:
        if self._stopped is None:
            self._stopped = read_kept(self.file, self.model_id)
        return self._stopped

    def keep(self, content_hash: str, keys: list[bytes], vectors: np.ndarray, path: str = "") -> None:
        """Save a stopped file's vectors beside the other stopped files' (a second stop threw the first
        file's away, 90 s of embedding, t67), the newest first up to KEEP_MAX vectors; a failure is
        logged: the next run then embeds them again."""
        runs = self._stopped_runs()
        runs.pop(content_hash, None)
        runs = {content_hash: StoppedFile(path, time.time(), dict(zip(keys, vectors.astype(np.float32)))), **runs}
        room, self._stopped = KEEP_MAX, {}
        for digest, run in runs.items():  # the newest first, kept whatever its size
            if self._stopped and len(run.vectors) > room:
                log.warning("the vectors kept for %s are dropped (more than %d vectors kept)", run.path, KEEP_MAX)
                continue
            room -= len(run.vectors)
            self._stopped[digest] = run
        self._write()

    def done(self, content_hash: str) -> None:
        """The stopped file is indexed now: its kept vectors go."""
        if self._stopped_runs().pop(content_hash, None) is not None:
            self._write()

    def drop_under(self, paths: list[str]) -> None:
        """Forget the vectors of stopped files under ``paths`` (a folder deleted after its add stopped)."""
        runs = self._stopped_runs()
        gone = [digest for digest, run in runs.items()
                if not run.path or any(run.path == p or run.path.startswith(p.rstrip("/") + "/") for p in paths)]
        for digest in gone:
            del runs[digest]
        if gone:
            self._write()

    def _write(self) -> None:
        runs = self._stopped_runs()
        if not runs:
            self.forget()
            return
        tmp = self.file.with_name(f"vectors.tmp-{os.getpid()}.npz")
        order = list(runs.values())
        try:
            ensure_private_dir(self.file.parent)
            # 0600 whatever the umask, as pgpt's other state files (it was 0644, t67)
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                np.savez(out, model_id=np.array(self.model_id), hashes=np.array(list(runs)),
                         paths=np.array([run.path for run in order]), stamps=np.array([run.stamp for run in order]),
                         owner=np.concatenate([np.full(len(run.vectors), i, np.int32) for i, run in enumerate(order)]),
                         keys=np.array([k for run in order for k in run.vectors], dtype="S32"),
                         vectors=np.stack([v for run in order for v in run.vectors.values()]).astype(np.float32))
            os.replace(tmp, self.file)
        except OSError as exc:
            log.warning("the stopped file's vectors are not kept: %s", exc)
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def forget(self) -> None:
        """Remove the kept vectors' file."""
        self._stopped = {}
        try:
            self.file.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove %s: %s", self.file, exc)


@dataclass
class StoppedFile:
    """The vectors kept of one stopped file: its path (as it was added), when they were kept, and
    the vectors by text key."""

    path: str
    stamp: float
    vectors: dict[bytes, np.ndarray]


def read_kept(file: Path, model_id: str) -> dict[str, StoppedFile]:
    """The stopped files' vectors in ``file`` by content hash, if they are ``model_id``'s; those older
    than KEEP_S are left out. A file that cannot be read is removed (it only ever saved time)."""
    try:
        with np.load(file, allow_pickle=False) as data:
            if str(data["model_id"]) != model_id:
                return {}
            keys, vectors = data["keys"], data["vectors"].astype(np.float32)
            if keys.dtype != np.dtype("S32") or vectors.ndim != 2 or len(keys) != len(vectors):
                raise ValueError("keys and vectors do not match")
            if "hashes" in data:
                hashes, paths, stamps = data["hashes"], data["paths"], data["stamps"]
                owner = data["owner"]
            else:  # one stopped file's, as written before 2026-12-07
                hashes, paths = np.array([str(data["content_hash"])]), np.array([""])
                stamps, owner = np.array([file.stat().st_mtime]), np.zeros(len(keys), np.int32)
            if not len(hashes) == len(paths) == len(stamps) or len(owner) != len(keys):
                raise ValueError("the files and their vectors do not match")
            runs = {str(h): StoppedFile(str(p), float(s), {}) for h, p, s in zip(hashes, paths, stamps)}
            order = list(runs.values())
            for k, v, o in zip(keys, vectors, owner):
                order[int(o)].vectors[bytes(k)] = v
        now = time.time()
        fresh = {h: run for h, run in runs.items() if now - run.stamp <= KEEP_S}  # the others were not added again
        if runs and not fresh:
            file.unlink(missing_ok=True)
        return fresh
    except FileNotFoundError:
        return {}
    except Exception as exc:  # damaged or foreign: the files are embedded again, as before
        log.warning("ignoring %s: %s", file, exc)
        with contextlib.suppress(OSError):
            file.unlink(missing_ok=True)
        return {}


def chunk_rows(embedder: Any, sections: list[Section], doc_id: str, collection: str, key: str,
               content_hash: str, cancel: threading.Event | None = None,
               within: Callable[[int, int, int], None] | None = None, known: dict[bytes, np.ndarray] | None = None,
               kept: KeptVectors | None = None) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The rows and vectors of one document's chunks; texts with a ``known`` vector are not
    embedded, the others are, EMBED_BATCH at a time; ``within`` hears (chunks with a vector,
    chunks, chunks whose vector was known) once the chunks are known and after each batch, for a file
    larger than one batch. A stop keeps the vectors made so far in ``kept``.

    Raises:
        Cancelled: ``cancel`` was set while the file was cut into chunks or between two batches
            (nothing of the file is written).
    """
    count_tokens = embedder.count_tokens
    if cancel is not None:  # cutting a 60 MB log into chunks took 3 minutes after its client had gone (t67)
        def count_tokens(text: str, count: Callable[[str], int] = embedder.count_tokens) -> int:
            if cancel.is_set():
                raise Cancelled(f"stopped while cutting {key} into chunks")
            return count(text)
    chunks = chunk_sections(sections, count_tokens)
    texts = [embedding_text(c.heading, c.text) for c in chunks]
    keys = [text_key(text) for text in texts]
    known = known or {}
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    have = np.zeros(len(texts), dtype=bool)
    for i, k in enumerate(keys):
        if k in known and known[k].shape == (embedder.dimension,):
            vectors[i], have[i] = known[k], True
    missing, reused = [i for i in range(len(texts)) if not have[i]], int(have.sum())
    if within is not None and len(texts) > EMBED_BATCH:
        # the chunk count as soon as it is known (after minutes of reading a 60 MB log, t67), and where
        # a stopped file goes on from
        within(reused, len(texts), reused)
    try:
        for start in range(0, len(missing), EMBED_BATCH):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"stopped while embedding {key}")
            batch = missing[start:start + EMBED_BATCH]
            vectors[batch] = embedder.embed([texts[i] for i in batch])
            have[batch] = True
            if within is not None and len(texts) > EMBED_BATCH:
                within(int(have.sum()), len(texts), reused)
    except BaseException:  # a cancel, Ctrl-C, SIGTERM: what was embedded is kept for the next run
        if kept is not None and have.any() and not have.all():
            kept.keep(content_hash, [k for k, h in zip(keys, have) if h], vectors[have], key)
        raise
    if kept is not None:
        kept.done(content_hash)
    rows = [{"chunk_id": f"{doc_id}:{i}", "doc_id": doc_id, "collection": collection, "path": key,
             "content_hash": content_hash, "text": c.text, "heading": c.heading, "page": c.page,
             "start": c.start, "end": c.end} for i, c in enumerate(chunks)]
    return rows, vectors


def drop_kept_under(settings: Settings, paths: list[str]) -> None:
    """Forget the kept vectors of stopped files under ``paths``, whichever embedder made them."""
    file = kept_path(settings)
    try:
        with np.load(file, allow_pickle=False) as data:
            model_id = str(data["model_id"])
    except FileNotFoundError:
        return
    except Exception:  # unreadable: nothing in it can be told apart
        with contextlib.suppress(OSError):
            file.unlink(missing_ok=True)
        return
    KeptVectors(settings, model_id).drop_under(paths)


def kept_path(settings: Settings) -> Path:
    """Where a stopped file's vectors are kept."""
    return settings.home / "unfinished-adds" / "vectors.npz"
