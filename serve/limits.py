"""Bounded queues for the server's work outside the chat scheduler (uploads and embeddings), and a
cancel event that a client's disconnect sets.

The scheduler bounds chat answers (``--parallel``, ``--max-queue``); uploads and embeddings ran in
the event loop's shared thread pool without a bound, each one kept running after its client left,
and a few of them held every pool thread that answers need: a 5-token answer took 44 s behind 7
abandoned embedding requests, and a second upload hung for minutes behind an abandoned one (t52,
t53). Now each kind has its own queue (one at a time, ``--max-queue`` waiting, 503 beyond), waits
in the event loop instead of in a pool thread, and stops at its next batch once its client is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

from pgpt.runtime.errors import ServerBusyError

POLL_S = 0.25  # how often a watcher looks at the server's stop flag


class WorkQueue:
    """At most ``running`` jobs of one kind at once and ``waiting`` more in line; one more is refused
    at once with ServerBusyError (503 and Retry-After), never left to hang."""

    def __init__(self, what: str, running: int, waiting: int, retry_after_s: int = 2,
                 gauges: tuple[Any, Any] | None = None, rejected: Any = None) -> None:
        self.what, self.running, self.max_waiting, self.retry_after_s = what, running, waiting, retry_after_s
        self.waiting = 0
        self._slots: asyncio.Semaphore | None = None  # made in the event loop that uses it
        self._gauges = gauges  # (running, waiting) of /metrics
        # pgpt:requests_rejected_total counts these refusals too: an alert on it missed a full upload queue (t80)
        self._rejected = rejected

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for this job's turn (in the event loop: no thread is held while it waits)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.running)
        if self._slots.locked() and self.waiting >= self.max_waiting:
            if self._rejected is not None:
                self._rejected.inc()
            raise ServerBusyError(f"The server is busy with {self.what}: {self.running} running and "
                                  f"{self.waiting} waiting (max_queue={self.max_waiting}).",
                                  limit=f"max_queue={self.max_waiting}", retry_after_s=self.retry_after_s)
        self._count(waiting=1)
        try:
            await self._slots.acquire()
        finally:
            self._count(waiting=-1)
        self._count(running=1)
        try:
            yield
        finally:
            self._count(running=-1)
            self._slots.release()

    def _count(self, running: int = 0, waiting: int = 0) -> None:
        self.waiting += waiting
        if self._gauges is not None:
            self._gauges[0].inc(running)
            self._gauges[1].inc(waiting)


async def client_gone(receive: Any) -> None:
    """Return when the client disconnects (read what it sends after its request's body)."""
    while (await receive())["type"] != "http.disconnect":
        pass


@contextlib.asynccontextmanager
async def cancelled_when_gone(receive: Any, stopping: threading.Event) -> AsyncIterator[threading.Event]:
    """An event for the work's ``cancel``, set when the client disconnects or the server is told to
    stop; read the request's body before entering (the watcher reads what the client sends next)."""
    cancel = threading.Event()

    async def watch() -> None:
        left = asyncio.ensure_future(client_gone(receive))
        try:
            while not left.done() and not stopping.is_set():
                await asyncio.wait({left}, timeout=POLL_S)
        finally:
            left.cancel()
        cancel.set()

    watcher = asyncio.ensure_future(watch())
    try:
        yield cancel
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
