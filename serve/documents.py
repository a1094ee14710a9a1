"""PrivateGPT's document API over pgpt's index: chunks, ingest file and text, list, delete.

Uploads are written to ``PGPT_HOME/uploads/COLLECTION/NAME`` (the name, which may hold folders, as
``docs/guide/README.md``, is the document's identity: the same name again updates it, unchanged
content is skipped) and then go through the
CLI's ``ingest``: the same readers, size cap and hostile-file rules, one commit per document, one
writer at a time while searches and answers go on.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable

from pgpt.runtime.errors import Cancelled, RequestRefusedError
from pgpt.runtime.sanitize import shown_name, strip_controls
from pgpt.serve.completions import ADD_TO_COLLECTION
from pgpt.serve.sources import context_chunk, shown_path
from pgpt.serve.service import Service

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
_COPY_BYTES = 1 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_PARTS = 16
# An upload or a delete waits this long for another process's write (a second server on the same
# home, an app's add): two servers' uploads of small files at once were answered 409, one in two.
# A long `pgpt-tui ingest` still gets the 409, with Retry-After, within a client's patience.
LOCK_WAIT_S = 10.0
_LEFT_BEHIND = re.compile(r"^\.(upload|earlier|new)-(\d+)-([0-9a-f]+)$")


def sweep_uploads(home: Path) -> int:
    """Undo what a server killed mid-upload left in ``home``'s uploads folder, when its process is gone;
    how many files it removed or put back. ``.upload-PID-*``: an upload being received, removed;
    ``.earlier-PID-TAG``: a document's previous copy, kept while its new one was indexed, put back over
    the upload it names (TAG, _name_tag); ``.new-PID-TAG``: a new document being indexed, whose file is
    removed: it never made it into the index (it stayed under its own name, unlisted, t66). Nothing
    listed or removed them, and one outlived its document's DELETE (t60). A live process's are left
    alone: two servers may share a home."""
    from pgpt.runtime.settings import process_alive

    uploads = home / "uploads"
    undone = 0
    for path in sorted(uploads.rglob(".*")) if uploads.is_dir() else []:
        match = _LEFT_BEHIND.match(path.name)
        if not match or path.is_symlink() or not path.is_file() or process_alive(int(match.group(2))):
            continue
        kind, tag = match.group(1), match.group(3)
        upload = next((p for p in path.parent.iterdir() if not p.name.startswith(".") and _name_tag(p.name) == tag
                       and p.is_file() and not p.is_symlink()), None)
        if kind == "earlier" and upload is not None:
            os.replace(path, upload)  # the index holds the earlier content: so does its file again
        else:
            if kind == "new" and upload is not None:
                upload.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        undone += 1
    return undone


def _name_tag(name: str) -> str:
    """The tag that ties an upload's temporary files to its name (names may be long: not the name)."""
    import hashlib

    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def upload_folder(service: Service, collection: str) -> Path:
    """Where uploads of ``collection`` are kept (private to the server's user).

    Raises:
        RequestRefusedError: 400 when ``collection`` is not a plain name (the allowed characters named).
    """
    import argparse

    from pgpt.runtime.arg_types import collection_name
    from pgpt.runtime.settings import ensure_private_dir

    try:  # the name is the folder's and the index's: one rule keeps them one to one
        collection = collection_name(collection)
    except argparse.ArgumentTypeError as exc:
        raise RequestRefusedError(f"{str(exc)[:1].upper()}{str(exc)[1:]}.", status=400,
                                  hint="Choose a collection name such as default or team-notes.") from None
    return ensure_private_dir(service.settings.home / "uploads" / collection)


def safe_name(name: str | None, what: str = "file name") -> list[str]:
    """A client's file name as its parts: a plain name (``report.pdf``), or one under plain folder
    names (``docs/guide/README.md``: a folder uploaded by ``pgpt-tui ingest``, whose files of one
    name in different folders stay apart). Each part is not empty, not ``.`` or ``..``, not hidden,
    without control characters, at most 255 bytes; at most 16 parts; ``\\`` and a leading ``/``
    are refused, never cut away, so that the client learns under which name the document is kept.

    Raises:
        RequestRefusedError: 400 with the reason.
    """
    raw = name or ""
    parts = raw.strip().split("/")
    problem = ("it is empty" if not raw.strip() else
               "it has a '\\'" if "\\" in raw else
               "it starts at the root ('/')" if raw.strip().startswith("/") else
               f"it has more than {_MAX_PARTS} parts" if len(parts) > _MAX_PARTS else
               next((_part_problem(part) for part in parts if _part_problem(part)), ""))
    if problem:
        raise RequestRefusedError(f"The {what} {raw[:80]!r} cannot be used: {problem}; it must be a plain name, "
                                  "or one under plain folder names (docs/report.pdf), none hidden, empty, '.' or "
                                  "'..', without control or invisible characters, at most 255 bytes each.",
                                  status=400, hint="Send the file under a plain name such as report.pdf.")
    # one spelling of "é": macOS sends names decomposed (NFD), and "café.txt" from a Mac was a second
    # document beside the same name typed elsewhere, shown alike, its edits "added", not "updated" (t46)
    return [unicodedata.normalize("NFC", part.strip()) for part in parts]


def _part_problem(part: str) -> str:
    """Why one part of a name cannot be a file or folder name under the uploads folder, or ''."""
    base = part.strip()
    return ("it has an empty part ('//')" if not base else
            "it has a '..' or '.' part" if base in (".", "..") else
            "it is hidden (a part starts with '.')" if base.startswith(".") else
            "it holds control characters" if _CONTROL.search(base) else
            # what the one sanitizer hides from display: "fe\u200brry.txt" was shown as a second
            # "ferry.txt" that `forget ferry.txt` missed
            "it holds invisible or direction-changing characters" if strip_controls(base) != base else
            "a part is longer than 255 bytes" if len(base.encode()) > 255 else
            # "~/x.txt" posed as a file of the server's own home, as listings show those (t52)
            "it starts with '~'" if base.startswith("~") else
            _look_alike(base))


def _look_alike(part: str) -> str:
    """Why ``part`` would be shown like another name: a character that stands for a plain ASCII one
    ("ｆｅｒｒｙ.md", "ferry․md" beside "ferry.md" were three documents that look the same, t52)."""
    alike = [c for c in part if ord(c) > 127 and unicodedata.normalize("NFKC", c).isascii()]
    if not alike:
        return ""
    plain = "".join(unicodedata.normalize("NFKC", c) if c in alike else c for c in part)
    return f"it holds look-alikes of plain characters ({''.join(dict.fromkeys(alike))}); name it {plain!r}"


def _upload_target(service: Service, name: str | None, collection: str) -> Path:
    """Where an upload named ``name`` is kept: its folders made private, under the collection's."""
    from pgpt.runtime.settings import ensure_private_dir

    folder = upload_folder(service, collection)
    *folders, file_name = safe_name(name)
    for part in folders:
        folder = folder / part
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise _taken(name, part, "a document's name")
        ensure_private_dir(folder)
    if (folder / file_name).is_dir():
        raise _taken(name, file_name, "a folder of documents")
    return folder / file_name


def _taken(name: str | None, part: str, what: str) -> RequestRefusedError:
    return RequestRefusedError(f"The file name {str(name)[:80]!r} cannot be used: {part!r} is {what} in this "
                               "collection already.", status=409,
                               hint="Send it under another name, or into another collection.")


async def ingest_upload(service: Service, name: str | None, data: BinaryIO, collection: str,
                        receive: Any = None, progress_key: str = "") -> dict[str, Any]:
    """Store an uploaded file and index it; the PrivateGPT answer with its document. With the
    request's ``receive``, a client that disconnects stops the indexing and the upload is not kept;
    ``progress_key``: the id its progress is told under (upload_progress.py)."""
    target = _upload_target(service, name, collection)
    return await _index(service, target, collection, lambda: _store_file(data, target, service.serve.max_body_bytes),
                        receive, progress_key)


async def ingest_text(service: Service, file_name: str, text: str, collection: str,
                      receive: Any = None, progress_key: str = "") -> dict[str, Any]:
    """Store a text under ``file_name`` (``.txt`` added unless it ends in a text suffix) and index it."""
    import io

    name = "/".join(safe_name(file_name))
    if not name.lower().endswith(TEXT_SUFFIXES):
        name += ".txt"
    target = _upload_target(service, name, collection)
    data = io.BytesIO(text.encode("utf-8"))
    return await _index(service, target, collection, lambda: _store_file(data, target, service.serve.max_body_bytes),
                        receive, progress_key)


def _store_file(data: BinaryIO, target: Path, limit: int) -> None:
    """Copy into a new private file beside ``target``, then rename over it: a reader never sees
    half a file, and a symlink planted at ``target`` is replaced, never written through."""
    temporary = target.with_name(f".upload-{os.getpid()}-{uuid.uuid4().hex}")  # the pid: see sweep_uploads
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while block := data.read(_COPY_BYTES):
                written += len(block)
                if written > limit:
                    raise RequestRefusedError(f"The file is larger than this server's limit of {limit / 1e6:g} MB.",
                                              status=413, hint="Ask the operator to raise --max-body-mb.")
                out.write(block)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


async def _index(service: Service, path: Path, collection: str, store_file: Callable[[], None],
                 receive: Any = None, progress_key: str = "") -> dict[str, Any]:
    """Put the upload in place and index it, both in one turn of the server's upload queue: eight
    clients sending one name at once were told "unchanged" for the content that stayed indexed
    and "updated" for content a later rename had replaced before it was read."""
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.documents.summary import STALE
    from pgpt.serve.limits import cancelled_when_gone

    embedder = await service.embedder()
    store = await service.store()

    def run(cancel: threading.Event) -> tuple[Any, Any]:
        with service.ingest_lock, _kept_until_indexed(path):  # another process's ingest gets 409
            store_file()
            # the client gone or the server told to stop: indexing stops at the next batch of chunks
            # (an abandoned 20 MB upload kept both cores for minutes and was then indexed, t53)
            report = ingest(service.settings, [path], embedder, collection=collection, cancel=cancel,
                            lock_wait_s=LOCK_WAIT_S, progress=told)
            if report.skipped or report.failed:  # nothing of it is indexed: the earlier file comes back
                reason = (report.skipped + report.failed)[0][1]
                kept = "; its earlier upload stays indexed" if reason.endswith(STALE) else ""  # (the CLI's words)
                raise RequestRefusedError(f"{path.name} was not indexed: {reason.removesuffix(STALE)}{kept}.",
                                          status=415,
                                          hint="Send a text, Markdown, HTML, PDF (with a text layer) or .docx file.")
            return report, next(d for d in store.documents(collection) if d.path == str(path))

    def told(tick: Any) -> None:
        service.upload_progress.tick(progress_key, tick)

    service.upload_progress.waiting(progress_key)
    try:
        async with service.uploads.turn():
            if receive is None:
                report, record = await asyncio.to_thread(run, service.stopping)
            else:
                async with cancelled_when_gone(receive, service.stopping) as cancel:
                    report, record = await asyncio.to_thread(run, cancel)
    except Cancelled:
        from pgpt.serve.completions import stopping

        if service.stopping.is_set():
            raise stopping(f"pgpt-serve was told to stop while it indexed {path.name}; the upload was not "
                           "kept.") from None
        raise Cancelled(f"The client closed the connection before {path.name} was indexed; the upload was "
                        "not kept.") from None
    finally:
        service.upload_progress.ended(progress_key)
    status = next((name for name in ("added", "updated", "renamed") if getattr(report, name)), "unchanged")
    return listing([ingested_document(record, service.settings.home, status=status)])


@contextmanager
def _kept_until_indexed(path: Path) -> Iterator[None]:
    """Give ``path`` back its earlier content (or remove it, when it is new) unless the block ends
    well: an upload refused with 409 (another process ingesting) or stopped midway replaced the
    stored copy of an indexed document, while the index kept the old content."""
    tag = f"{os.getpid()}-{_name_tag(path.name)}"  # a server killed here: sweep_uploads undoes it at its start
    earlier = path.with_name(f".earlier-{tag}") if path.is_file() and not path.is_symlink() else None
    new = path.with_name(f".new-{tag}") if earlier is None else None
    if earlier is not None:
        os.link(path, earlier, follow_symlinks=False)  # the new upload is renamed over path; this keeps the old
    elif new is not None:
        new.write_bytes(b"")
    try:
        yield
    except BaseException:
        if earlier is not None:
            os.replace(earlier, path)
        else:
            path.unlink(missing_ok=True)
        raise
    finally:
        for left in (earlier, new):
            if left is not None:
                left.unlink(missing_ok=True)


async def list_documents(service: Service, collection: str | None = None) -> dict[str, Any]:
    """Every indexed document (PrivateGPT's ``/v1/ingest/list``), or those of one ``collection``."""
    store = await service.store()
    home = service.settings.home
    return listing([ingested_document(d, home) for d in await asyncio.to_thread(store.documents)
                    if collection is None or d.collection == collection])


async def delete_document(service: Service, doc_id: str) -> None:
    """Forget one document (and its uploaded file: forget_document deletes it).

    Raises:
        RequestRefusedError: 404 when no document has that id.
        IngestLockedError: another process is ingesting (409).
    """
    from pgpt.runtime.documents.ingest import forget_document

    embedder = await service.embedder()

    def run() -> Any:
        with service.ingest_lock:
            return forget_document(service.settings, embedder, doc_id, lock_wait_s=LOCK_WAIT_S)

    async with service.uploads.turn():  # behind the uploads, waiting without holding a thread
        record = await asyncio.to_thread(run)
    if record is None:
        raise RequestRefusedError(f"No document has the id {doc_id[:80]!r}.", status=404,
                                  hint="GET /v1/ingest/list lists the documents and their ids.")


async def chunks(service: Service, text: str, doc_ids: list[str] | None, limit: int,
                 around: int, collection: str | None = None) -> dict[str, Any]:
    """The passages closest to ``text`` (PrivateGPT's ``/v1/chunks``), with their neighbours;
    ``collection`` (pgpt's own) searches that one only."""
    from pgpt.runtime.documents.retrieval import neighbours, require_collection, require_documents, search

    store, embedder = await service.store(), await service.embedder()

    def run() -> list[dict[str, Any]]:
        require_collection(store, collection, ADD_TO_COLLECTION)
        require_documents(store, doc_ids, collection)
        found = []
        for hit in search(store, embedder, text, k=limit, collection=collection, per_document=limit,
                          doc_ids=doc_ids):
            before, after = neighbours(store, hit.chunk_id, around, around) if around else (None, None)
            found.append(context_chunk({"source": shown_path(service.settings.home, hit.source), "page": hit.page,
                                        "text": hit.text, "score": hit.score, "similarity": hit.similarity,
                                        "doc_id": hit.chunk_id.rpartition(":")[0], "collection": hit.collection,
                                        "previous_texts": before, "next_texts": after}))
        return found

    return listing(await asyncio.to_thread(run))


def ingested_document(record: Any, home: Path, status: str = "") -> dict[str, Any]:
    """PrivateGPT's ``ingest.document``: the id, and the file name in ``doc_metadata`` (``path`` as
    clients see it: :func:`shown_path`; ``content_hash``, the sha256 of the file, by which a client
    tells a renamed file from a new one)."""
    metadata: dict[str, Any] = {"file_name": shown_name(Path(record.path).name), "path": shown_path(home, record.path),
                                "collection": record.collection, "chunks": record.chunks,
                                "ingested_at": record.ingested_at, "content_hash": record.content_hash}
    if status:
        metadata["status"] = status
    return {"object": "ingest.document", "doc_id": record.doc_id, "doc_metadata": metadata}


def listing(data: list[dict[str, Any]]) -> dict[str, Any]:
    """PrivateGPT's list envelope (its clients check ``model == "private-gpt"``)."""
    return {"object": "list", "model": "private-gpt", "data": data}
