"""An upload's indexing progress, asked of the server while the upload waits for its answer.

pgpt-serve answers an upload once it is indexed (minutes for a large file); a client that sends a
random id in ``X-Pgpt-Progress-Id`` may poll ``GET /v1/ingest/progress/{id}`` meanwhile
(serve/upload_progress.py). A server without that route (an older pgpt-serve, PrivateGPT) answers
404, and nothing is shown, as before.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

PROGRESS_HEADER = "X-Pgpt-Progress-Id"
POLL_S = 1.0


def new_key() -> str:
    """A progress id nobody else can guess: 128 random bits as 32 hex digits."""
    return uuid.uuid4().hex


@contextmanager
def polled(http: Any, key: str, on_progress: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """While the block runs, ask the server how far the upload ``key`` is every POLL_S seconds on
    the httpx client ``http`` (shared: httpx's clients may be used from several threads) and hand
    each answer to ``on_progress``; a failed poll is skipped (the upload itself says what went wrong)."""
    stop, every = threading.Event(), POLL_S

    def poll() -> None:
        while not stop.wait(every):
            try:
                response = http.get(f"/v1/ingest/progress/{key}", timeout=max(every * 5, 5.0))
                if response.status_code == 200 and not stop.is_set():
                    on_progress(dict(response.json()))
            except Exception:  # noqa: BLE001 - progress is a courtesy: the upload goes on without it
                continue

    thread = threading.Thread(target=poll, name="pgpt-upload-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every * 6)


def server_step(progress: dict[str, Any]) -> str:
    """What a bar says of the server's work on the file: waiting, reading, or its chunks embedded."""
    state = progress.get("state")
    if state == "embedding":
        return f"the server embedded {progress.get('chunks_done', 0)}/{progress.get('chunks', 0)} chunks of it"
    if state == "reading":
        return "the server reads it and cuts it into chunks"
    if state == "busy":  # its upload queue is full: sent again after the wait (client.py)
        return f"the server is busy: sending it again in {progress.get('retry_in_s', 1)} s"
    return "waiting for the server's upload turn" if state == "waiting" else ""
