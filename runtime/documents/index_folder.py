"""The document index's folder: where it lives, which table readers use, its writer lock, and its state.

``PGPT_HOME/index`` holds LanceDB tables; ``active.json`` names the one readers use (``chunks``
when it is absent) and is replaced atomically when a re-index finishes. One writer at a time holds
``.writer.lock`` (an flock, released by the kernel when its process dies); readers never take it.
Everything here works without opening the table or loading an embedder (the app's start and
`doctor` ask these questions); the table itself is ``store.DocumentStore``.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import FolderPermissionError, IngestLockedError
from pgpt.runtime.settings import Settings, ensure_private_dir, write_private
from pgpt.runtime.storage_faults import storage_fault

LOCK_POLL_S = 0.2  # how often a writer that waits tries the lock again

TABLE = "chunks"  # the table's name until the first re-index; then active.json names it
ACTIVE = "active.json"


def index_dir(settings: Settings) -> Path:
    """Where the index lives: ``PGPT_HOME/index``."""
    return settings.home / "index"


@contextmanager
def writing(folder: Path, action: str = "Writing the document index") -> Iterator[None]:
    """Turn a failed write (disk full, read-only, permissions) into the StorageError naming ``folder``."""
    try:
        yield
    except Exception as exc:
        fault = storage_fault(exc, folder, action)
        if fault is None:
            raise
        raise fault from exc


def active_table(folder: Path) -> str:
    """The name of the table readers use (see the module docstring and read_pointer)."""
    return read_pointer(folder)[0]


def read_pointer(folder: Path) -> tuple[str, bool, str]:
    """The table readers use, whether that is certain, and what is wrong with ``active.json`` ('' if nothing).

    A pointer that is missing, damaged or names a table that is not there is not taken to mean the
    first table: after a re-index the index is another table, and taking ``chunks`` showed an empty
    index, and the next ingest dropped the real one as unfinished (t66). The tables on disk decide:
    ``chunks`` where no pointer was ever written, else the only table there is. Between several
    tables and no pointer the largest is read, and nothing may be dropped (``certain`` is False).
    """
    problem = ""
    try:
        name = json.loads((folder / ACTIVE).read_text(encoding="utf-8")).get("table")
        if not (isinstance(name, str) and name.startswith(TABLE)):
            problem = "names no table"
    except FileNotFoundError:
        name = None  # never re-indexed (the first table), or deleted
    except (OSError, ValueError, AttributeError) as exc:
        name, problem = None, f"is damaged ({type(exc).__name__})"
    tables = _tables_on_disk(folder)
    if not problem and isinstance(name, str):
        if name in tables or not tables:
            return name, True, ""
        problem = f"names {name}, which is not there"
    if not problem and (TABLE in tables or not tables):
        return TABLE, True, ""
    problem = problem or "is missing"
    if len(tables) <= 1:
        return (tables or [TABLE])[0], True, problem
    return max(tables, key=lambda table: _size(folder / f"{table}.lance")), False, problem


def _tables_on_disk(folder: Path) -> list[str]:
    try:
        return sorted(path.name.removesuffix(".lance") for path in folder.glob(f"{TABLE}*.lance") if path.is_dir())
    except OSError:
        return []


def _size(folder: Path) -> int:
    """The bytes of the files under ``folder`` (links not followed); 0 when it cannot be read."""
    try:
        return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
    except OSError:
        return 0


def index_has_data(settings: Settings) -> bool:
    """Whether anything was ever written to the index, looked up without opening it (fast: no LanceDB).

    Raises:
        StorageError: the index may not be read (its owner or mode): a home restored as another user's
            read as "Nothing is indexed yet", and the user re-added everything (t70).
    """
    folder = index_dir(settings)
    try:
        return any((folder / f"{active_table(folder)}.lance" / "data").iterdir())
    except PermissionError as exc:
        raise storage_fault(exc, folder, "Reading the document index") or exc from None
    except OSError:
        return False


def index_state(settings: Settings) -> str:
    """What `doctor` says about the document index: its size and full-text index, or what is wrong.

    Reads only (no embedding model needed): the active table's rows and documents, tables a
    killed re-index left behind, and whether everything can be read.
    """
    import lancedb

    from pgpt.runtime.documents.folding import is_folded
    from pgpt.runtime.documents.text_format import TEXT_FORMAT, changed_suffixes, table_text_format

    folder = index_dir(settings)
    if not folder.is_dir():
        return f"{folder}: empty (nothing ingested yet)"
    name, certain, pointer = read_pointer(folder)
    if pointer:  # said first: it decides which table the rest describes
        pointer = (f", {ACTIVE} {pointer}: reading {name}, "
                   + ("the next ingest writes it again" if certain else "the largest of several tables (the next "
                      "ingest drops none of them; `pgpt-tui ingest --reindex PATH...` rebuilds one index)"))
    try:
        db = lancedb.connect(str(folder))
        tables = db.list_tables().tables
        if name not in tables:
            return f"{folder}: empty (nothing ingested yet)"
        table = db.open_table(name)
        rows = table.count_rows()
        paths = {row["doc_id"]: row["path"] for row in
                 table.search().select(["doc_id", "path"]).limit(max(rows, 1)).to_list()}
        documents = len(paths)
        text_index = any(i.index_type == "FTS" for i in table.list_indices())
        text_format = table_text_format(table)
        folded = is_folded(table)
    except Exception as exc:  # any failure to read it is what doctor is for
        if isinstance(storage_fault(exc, folder), FolderPermissionError):  # a home restored as another user's
            return (f"{folder}: cannot be read by this user (permission denied; owner uid {_owner(folder)}, you "
                    f"are uid {os.getuid()}): the index may be whole. Run pgpt as its owner, or give it to this "
                    f"user (chown -R {os.getuid()} {folder})")
        return (f"{folder}: DAMAGED or unreadable ({type(exc).__name__}: {exc}); move it aside "
                f"(mv {folder} {folder}.damaged) and add your documents again with `pgpt-tui ingest PATH...`")
    stale = [t for t in tables if t.startswith(TABLE) and t != name and certain]
    writer = _writer(folder)
    # while an ingest runs, its own end builds it ("missing (the next ingest builds it)" was said then)
    notes = "" if text_index or not rows else (", full-text index built when the running ingestion ends" if writer
                                              else ", full-text index missing (the next ingest builds it)")
    if rows and text_format != TEXT_FORMAT:  # an upgrade: said before the ingest that does it, not only after
        changed = changed_suffixes(text_format) if text_format < TEXT_FORMAT else None
        which = f"all its {documents} documents" if changed is None else f"its {', '.join(changed)} documents"
        notes += (f", made by {'an older' if text_format < TEXT_FORMAT else 'a newer'} pgpt (text format "
                  f"{text_format}, this one writes {TEXT_FORMAT}): the next ingest reads and chunks {which} again")
    if rows and not folded:
        notes += ", full-text search not folded yet (made by an older pgpt: the next ingest folds it in seconds)"
    if writer:
        notes += f", {'a re-index or ' if stale else 'an '}ingestion is running ({writer})"
    elif stale:
        notes += f", {len(stale)} unfinished re-index table(s) (the next ingest drops them)"
    notes = pointer + notes + _gone_note(list(paths.values()))
    writable = "" if os.access(folder, os.W_OK) else ", NOT writable (ingest cannot add documents)"
    return f"{folder}: ok, {documents} documents, {rows} chunks, {_size(folder) / 1e6:.0f} MB on disk{notes}{writable}"


def _writer(folder: Path) -> str:
    """Who holds the index's writer lock ("pid N"), or "" when nobody does (looked at, not taken)."""
    try:
        with open(folder / ".writer.lock", "r", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return handle.read().strip() or "another process"
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        pass
    return ""


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file (fsynced, then renamed); no temporary is left behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write_private(tmp, text, sync=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def writer_lock(settings: Settings, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the index's writer lock; a second writer gets IngestLockedError once ``wait_s`` seconds
    have passed (at once by default: a command says so rather than sit silent behind a long ingest)."""
    folder = index_dir(settings)
    with writing(folder, "Locking the document index for writing"):
        ensure_private_dir(folder)
        handle = os.fdopen(os.open(folder / ".writer.lock", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+",
                           encoding="utf-8")
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(LOCK_POLL_S)
                    continue
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise IngestLockedError(f"Another ingestion ({holder}{_how_far(settings, holder)}) is writing to "
                                        "the document index.") from None
        with writing(folder, "Locking the document index for writing"):
            handle.seek(0)
            handle.truncate()
            handle.write(_holder())
            handle.flush()
        yield
    finally:
        try:
            handle.close()  # closing releases the lock, also when the process is killed
        except OSError:
            pass  # the pid did not fit on a full disk: the lock is released all the same


ADDING = ": adding "  # how a refusal names the other writer's paths (pgpt-serve's answers leave them out)


def _how_far(settings: Settings, holder: str) -> str:
    """": adding /docs, 416 of 1717 files" when the writer's add keeps a marker (the app and `ingest`
    do), else '': the refused command said to wait, with no way to know for how long (t53)."""
    import re

    from pgpt.runtime.documents.unfinished import unfinished_adds

    pid = re.search(r"pid (\d+)", holder)
    add = next((a for a in unfinished_adds(settings) if pid and a.pid == int(pid.group(1))), None)
    return f"{ADDING}{', '.join(add.paths)}, {add.done} of {add.total} files" if add else ""


def refuse_if_writing(settings: Settings) -> None:
    """IngestLockedError now if another process writes the index: a command that loads the embedder
    first was refused only after it (5-6 s); the lock is taken again, for real, by the write."""
    if index_dir(settings).is_dir():
        with writer_lock(settings):
            pass


def _holder() -> str:
    """Who writes, as the lock file says it to a second writer: "pgpt-serve, pid 6227" (a bare pid
    sent users looking for an `ingest` process that was the server indexing an upload)."""
    program = Path(sys.argv[0]).name
    return f"{program}, pid {os.getpid()}" if program.startswith("pgpt") else f"pid {os.getpid()}"


def _gone_note(paths: list[str]) -> str:
    """What doctor adds on documents whose files are not on disk: a restore whose documents stayed
    behind passed as "ok, 15 documents" (t70)."""
    from pgpt.runtime.documents.discovery import is_gone

    gone = sum(is_gone(path) for path in paths)
    if paths and gone == len(paths):
        return (f", ALL FILES GONE: none of its {gone} documents' files is on disk (they still answer; moved? "
                "`pgpt-tui ingest NEW-PLACE` finds them renamed)")
    return f", {gone} of its documents' files gone from disk (`pgpt-tui docs` marks them)" if gone else ""


def _owner(path: Path) -> str:
    try:
        return str(path.stat().st_uid)
    except OSError:
        return "?"


def listing_store(settings: Settings) -> Any:
    """The index opened with the embedding model it was built with, named by its own metadata, to list
    its documents without that model (`docs` in a cron job without PGPT_MODEL_CACHE refused to list,
    t71); None when nothing is indexed. Searching or adding needs the model itself."""
    import lancedb

    from pgpt.runtime.documents import store as stores

    folder = index_dir(settings)
    if not index_has_data(settings):
        return None
    name, db = active_table(folder), lancedb.connect(str(folder))
    if name not in db.list_tables().tables:
        return None
    meta = db.open_table(name).schema.metadata or {}
    return stores.DocumentStore(settings, meta.get(stores._META_MODEL, b"").decode(),
                                meta.get(stores._META_NAME, b"?").decode(), int(meta.get(stores._META_DIM, b"0")))
