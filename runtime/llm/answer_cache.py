"""A disk cache of answers on diskcache, storing JSON with a checksum and never unpickling."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from pgpt.runtime.settings import ensure_private_dir

log = logging.getLogger(__name__)
_VERSION = 1


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
    """Exact-match cache: key -> answer record. Any damaged entry is a miss and is removed."""

    def __init__(self, folder: Path, size_limit_mb: int = 256) -> None:
        import diskcache

        ensure_private_dir(folder)
        self._cache = diskcache.Cache(
            str(folder), disk=_safe_disk_class(), size_limit=size_limit_mb * 1024 * 1024
        )
        for name in os.listdir(folder):
            path = folder / name
            if path.is_file():
                os.chmod(path, 0o600)

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached record for ``key``, or None (a damaged entry is deleted)."""
        try:
            raw = self._cache.get(key)
        except Exception as exc:  # sqlite, checksum or pickle refusal: all are misses
            log.warning("answer cache entry unreadable (%s); treated as a miss", type(exc).__name__)
            self._discard(key)
            return None
        if raw is None:
            return None
        record = _decode(raw)
        if record is None:
            log.warning("answer cache entry failed its checksum; treated as a miss")
            self._discard(key)
        return record

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Store a record; a full disk or a locked database only skips caching."""
        try:
            self._cache.set(key, _encode(record))
        except Exception as exc:  # the answer was shown already; caching is best effort
            log.warning("answer cache write skipped (%s)", type(exc).__name__)

    def clear(self) -> None:
        """Drop every entry."""
        self._cache.clear()

    def close(self) -> None:
        """Close the underlying SQLite connection."""
        self._cache.close()

    def _discard(self, key: str) -> None:
        try:
            self._cache.delete(key)
        except Exception:  # deleting a bad entry is best effort; the next get retries
            log.warning("could not delete a damaged cache entry")


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
