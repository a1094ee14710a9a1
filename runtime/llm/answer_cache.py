"""A disk cache of answers on diskcache, storing JSON with a checksum and never unpickling.

A damaged cache database (overwritten, truncated) is moved aside and a new, empty one started,
with a warning: the cache only saves time, so it must never stop an answer. A cache that cannot
be written (full disk, read-only folder) raises StorageError when opened, and writes that fail
later are skipped; the chat then goes on without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import StorageError
from pgpt.runtime.storage_faults import storage_fault
from pgpt.runtime.settings import ensure_private_dir

log = logging.getLogger(__name__)
_VERSION = 1
DOCUMENTS = "documents"  # the tag of entries made from document text (answers, drafts): a forget drops them


def _safe_disk_class() -> type:
    """A diskcache Disk that refuses pickled values (CVE-2025-69872) instead of loading them."""
    import diskcache

    class SafeDisk(diskcache.Disk):
        def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
            if not isinstance(value, str):
                raise TypeError("the answer cache stores text only")
            return super().store(value, read, key=key)

        def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
            if mode == diskcache.core.MODE_PICKLE:
                raise ValueError("refusing a pickled cache entry")
            return super().fetch(mode, filename, value, read)

    return SafeDisk


def cache_key(**parts: Any) -> str:
    """A sha256 over the canonical JSON of everything that decides an answer."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class AnswerCache:
    """Exact-match cache: key -> answer record. Any damaged entry is a miss and is removed.

    ``warnings`` collects what the user should be told (a damaged cache was moved aside).
    """

    def __init__(self, folder: Path, size_limit_mb: int = 256) -> None:
        """Open (or create) the cache in ``folder``; a damaged database is moved aside first.

        Raises:
            StorageError: the folder cannot be written (disk full, read-only, permissions).
        """
        self.folder = folder
        self.size_limit_mb = size_limit_mb
        self.warnings: list[str] = []
        self._cache = self._open()

    def _open(self) -> Any:
        import diskcache

        for attempt in range(2):
            try:
                ensure_private_dir(self.folder)
                cache = diskcache.Cache(str(self.folder), disk=_safe_disk_class(),
                                        size_limit=self.size_limit_mb * 1024 * 1024)
                cache.get("")  # a damaged database may open and fail only at its first read
                _private_files(self.folder)
                return cache
            except Exception as exc:
                fault = storage_fault(exc, self.folder, "Opening the answer cache")
                if fault is not None:
                    raise fault from exc
                if not _is_damage(exc) or attempt:
                    raise
                self._move_aside(exc)
        raise AssertionError("unreachable")

    def _move_aside(self, error: BaseException) -> None:
        """Rename the damaged folder out of the way, so the next open starts an empty cache."""
        aside = self.folder.with_name(f"{self.folder.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        try:
            os.replace(self.folder, aside)
        except FileNotFoundError:
            return  # another process moved it just now
        except OSError as exc:
            raise storage_fault(exc, self.folder, "Moving the damaged answer cache aside") or exc from error
        text = (f"The answer cache in {self.folder} was damaged ({error}); it was moved to {aside} and a new, "
                f"empty cache was started. Delete {aside.name} when you no longer need it.")
        log.warning("%s", text)
        self.warnings.append(text)

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached record for ``key``, or None (a damaged entry is deleted)."""
        try:
            raw = self._cache.get(key)
        except Exception as exc:  # sqlite, checksum or pickle refusal: all are misses
            log.warning("answer cache entry unreadable (%s); treated as a miss", type(exc).__name__)
            if _is_damage(exc):
                self._recover(exc)
            else:
                self._discard(key)
            return None
        if raw is None:
            return None
        record = _decode(raw)
        if record is None:
            log.warning("answer cache entry failed its checksum; treated as a miss")
            self._discard(key)
        return record

    def put(self, key: str, record: dict[str, Any], tag: str | None = None) -> None:
        """Store a record (``tag``: DOCUMENTS for one made from document text, which :meth:`evict`
        drops); a full disk or a locked database only skips caching."""
        try:
            self._cache.set(key, _encode(record), tag=tag)
        except Exception as exc:  # the answer was shown already; caching is best effort
            log.warning("answer cache write skipped (%s: %s)", type(exc).__name__, exc)
            if _is_damage(exc):
                self._recover(exc)

    def _recover(self, error: BaseException) -> None:
        """The database broke while in use: move it aside and go on with an empty one."""
        try:
            self._cache.close()
            self._move_aside(error)
            self._cache = self._open()
        except (StorageError, OSError, sqlite3.Error) as exc:
            log.warning("the damaged answer cache could not be replaced (%s)", exc)

    def clear(self) -> None:
        """Drop every entry."""
        self._cache.clear()

    def evict(self, tag: str) -> int:
        """Drop the entries stored with ``tag``, and their bytes from the database file too (SQLite
        keeps a deleted row's bytes in its free pages until a VACUUM); how many were dropped."""
        dropped = self._cache.evict(tag)
        if dropped:
            with contextlib.closing(sqlite3.connect(self.folder / "cache.db", timeout=30)) as database:
                database.execute("VACUUM")
                database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return dropped

    def close(self) -> None:
        """Close the underlying SQLite connection."""
        self._cache.close()

    def _discard(self, key: str) -> None:
        try:
            self._cache.delete(key)
        except Exception:  # deleting a bad entry is best effort; the next get retries
            log.warning("could not delete a damaged cache entry")


def cache_state(folder: Path) -> str:
    """What `doctor` says about the answer cache: entries and size, or what is wrong (read only)."""
    database = folder / "cache.db"
    if not database.exists():
        return f"{folder}: empty (not created yet)"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            entries = db.execute("SELECT COUNT(*) FROM Cache").fetchone()[0]
    except sqlite3.Error as exc:
        verdict, entries = str(exc), 0
    if verdict != "ok":
        return (f"{folder}: DAMAGED ({verdict}); the next chat moves it aside and starts an empty cache, "
                "or delete the folder yourself")
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6
    writable = "" if os.access(folder, os.W_OK) and os.access(database, os.W_OK) else ", NOT writable (answers are not cached)"
    return f"{folder}: ok, {entries} answers, {size:.1f} MB{writable}"


def _is_damage(error: BaseException) -> bool:
    """A database that is not one or is malformed (OperationalError is about locks, space, modes)."""
    return isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError)


def _private_files(folder: Path) -> None:
    """Take group and other permissions off the cache's files (diskcache makes them 0644); never
    add a permission, so a file the user made read-only stays read-only."""
    for name in os.listdir(folder):
        path = folder / name
        mode = path.stat().st_mode
        if path.is_file() and mode & 0o077:
            os.chmod(path, mode & 0o700)


def _encode(record: dict[str, Any]) -> str:
    body = json.dumps(record, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return json.dumps({"v": _VERSION, "sha256": digest, "body": body})


def _decode(raw: Any) -> dict[str, Any] | None:
    try:
        envelope = json.loads(raw)
        body = envelope["body"]
        if hashlib.sha256(body.encode("utf-8")).hexdigest() != envelope["sha256"]:
            return None
        record = json.loads(body)
    except (TypeError, ValueError, KeyError):
        return None
    return record if isinstance(record, dict) else None
