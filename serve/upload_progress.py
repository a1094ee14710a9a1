"""How far the server is with indexing an upload, for the client that sent it.

An upload is answered once it is indexed: a 60 MB log took minutes, and `pgpt-tui ingest --server`
showed "0/1 files sent ETA ?" all along, with no word of the server's reading or chunks (t67). A
client that sends a random id in the ``X-Pgpt-Progress-Id`` header may poll
``GET /v1/ingest/progress/{id}`` meanwhile: waiting (for the upload turn), reading (the file, into
chunks) or embedding (so many chunks of so many). Only counts are told, never a name or text, and
only under an id nobody else can guess (128 random bits); the API key guards the route as any other.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from pgpt.runtime.remote.progress import PROGRESS_HEADER  # the client's, which sends it

_ID = re.compile(r"[0-9a-f]{32}")


def progress_id(headers: Any) -> str:
    """The request's progress id (32 lower-case hex digits), or '' when it sends none or another form."""
    given = str(headers.get(PROGRESS_HEADER.lower(), "")).strip().lower()
    return given if _ID.fullmatch(given) else ""


class UploadProgress:
    """The uploads being indexed that a client may ask after, by progress id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, dict[str, Any]] = {}

    def waiting(self, key: str) -> None:
        """The upload ``key`` waits for its turn."""
        if key:
            with self._lock:
                self._state[key] = {"state": "waiting", "chunks_done": 0, "chunks": 0}

    def tick(self, key: str, tick: Any) -> None:
        """An ingestion tick (runtime.documents.progress.IngestProgress) of the upload ``key``."""
        state = {"state": "embedding" if tick.file_chunks else "reading",
                 "chunks_done": tick.file_chunks_done, "chunks": tick.file_chunks}
        with self._lock:
            if key in self._state:  # not after ended: a late tick would bring back a finished upload
                self._state[key] = state

    def ended(self, key: str) -> None:
        """The upload ``key`` was answered (indexed, refused or stopped)."""
        with self._lock:
            self._state.pop(key, None)

    def get(self, key: str) -> dict[str, Any] | None:
        """What is known of ``key`` now; None when no upload under it is being indexed."""
        with self._lock:
            found = self._state.get(key)
            return dict(found) if found is not None else None
