"""What one server instance holds: its chat engine, embedder, document index and admission gate.

Built by the app factory from the settings; nothing lives in module globals, so one process may
hold several services (tests do; Ray Serve would put one in each replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from pgpt.runtime.errors import ModelNotFoundError, ServerBusyError
from pgpt.runtime.settings import Settings
from pgpt.serve.config import ServeSettings
from pgpt.serve.metrics import ServerMetrics

log = logging.getLogger("pgpt.serve")
DEFAULT_MODEL_NAMES = ("", "default")


class Admission:
    """``parallel`` requests run, ``max_queue`` more wait; beyond that a request is refused at once.

    Why refuse instead of queueing without end: a load balancer or a client can then go elsewhere
    or retry later, and the server's memory and latency stay bounded (vllm#2901, ollama#4144).
    """

    def __init__(self, parallel: int, max_queue: int, metrics: ServerMetrics) -> None:
        self.parallel, self.max_queue, self.metrics = parallel, max_queue, metrics
        self.running = 0
        self.waiting = 0
        self._free = asyncio.Semaphore(parallel)

    def reserve(self) -> Ticket:
        """A place in the queue, taken at once (no await, so no other request slips in between).

        Raises:
            ServerBusyError: ``parallel`` run and ``max_queue`` wait already.
        """
        if self.running + self.waiting >= self.parallel + self.max_queue:
            self.metrics.rejected.inc()
            raise ServerBusyError(
                f"The server is generating {self.running} answers and {self.waiting} requests are waiting, "
                f"its limit (--parallel {self.parallel}, --max-queue {self.max_queue}).",
                limit=f"max_queue={self.max_queue}", retry_after_s=1 + self.waiting // self.parallel)
        self.waiting += 1
        self._gauges()
        return Ticket(self)

    def _gauges(self) -> None:
        self.metrics.running.set(self.running)
        self.metrics.waiting.set(self.waiting)


class Ticket:
    """A reserved place: ``async with ticket`` waits for a slot and holds it; ``drop`` gives up
    a place that was never used (the request failed before it ran)."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._queued = True

    def drop(self) -> None:
        """Leave the queue without running (harmless after the slot was taken)."""
        if self._queued:
            self._queued = False
            self._admission.waiting -= 1
            self._admission._gauges()

    async def __aenter__(self) -> Ticket:
        gate = self._admission
        try:
            await gate._free.acquire()
        finally:
            self.drop()
        gate.running += 1
        gate._gauges()
        return self

    async def __aexit__(self, *exc: object) -> None:
        gate = self._admission
        gate.running -= 1
        gate._free.release()
        gate._gauges()


class Service:
    """The models and the index behind the routes (loaded in threads when the app starts)."""

    def __init__(self, settings: Settings, serve: ServeSettings, metrics: ServerMetrics) -> None:
        self.settings, self.serve, self.metrics = settings, serve, metrics
        self.admission = Admission(serve.parallel, serve.max_queue, metrics)
        self.started = time.time()
        self._engine: Any = None
        self._embedder: Any = None
        self._store: Any = None
        self._loading: asyncio.Task[None] | None = None
        self.load_error: BaseException | None = None  # the chat model's
        self.embedder_error: BaseException | None = None  # documents and embeddings only
        self.ingest_lock = threading.Lock()  # one writer at a time inside this server

    async def start(self) -> None:
        """Start loading the chat model and the embedder; /ready answers 200 once the chat model is in."""
        self._loading = asyncio.create_task(self._load())

    async def _load(self) -> None:
        from pgpt.runtime.llm.chat import ChatEngine
        from pgpt.runtime.llm.embeddings import default_embedder

        engine, embedder = await asyncio.gather(asyncio.to_thread(ChatEngine, self.settings, self.serve.model),
                                                asyncio.to_thread(default_embedder, self.settings),
                                                return_exceptions=True)
        if isinstance(embedder, BaseException):  # chat still works; documents answer with this error
            self.embedder_error = embedder
            log.error("embedding model unavailable: %s", embedder)
        else:
            self._embedder = embedder
        if isinstance(engine, BaseException):  # kept: every chat request then answers with it
            self.load_error = engine
            self.metrics.model_load_failures.labels(self.serve.model or "default").inc()
            log.error("chat model loading failed: %s", engine)
            return
        self._engine = engine
        self.metrics.model_loads.labels(engine.model.info.name).inc()
        self.metrics.loaded.set(1)
        log.info("serving %s@%s on %s", engine.model.info.name, version_of(engine), engine.provider)

    @property
    def ready(self) -> bool:
        """Whether the chat model is loaded."""
        return self._engine is not None

    async def wait_loaded(self) -> None:
        """Wait for the start-up load; raise what loading the chat model raised."""
        if self._loading is not None:
            await asyncio.shield(self._loading)
        if self.load_error is not None:
            raise self.load_error

    async def chat_engine(self, name: str) -> Any:
        """The engine that serves model ``name`` ('default', its name, or name@version)."""
        await self.wait_loaded()
        engine = self._engine
        wanted, _, version = name.partition("@")
        if wanted not in DEFAULT_MODEL_NAMES and wanted != engine.model.info.name or (
                version and version != version_of(engine)):
            raise ModelNotFoundError(f"This server serves {engine.model.info.name}@{version_of(engine)}, "
                                     f"not {name!r}.", hint="Ask for model 'default' or see GET /v1/models.")
        return engine

    async def embedder(self) -> Any:
        """The embedding model (raises why it could not be loaded)."""
        if self._loading is not None:
            await asyncio.shield(self._loading)
        if self.embedder_error is not None:
            raise self.embedder_error
        return self._embedder

    async def store(self) -> Any:
        """The document index (opened on first use; refused when built with another embedder)."""
        from pgpt.runtime.documents.ingest import open_store

        if self._store is None:
            self._store = await asyncio.to_thread(open_store, self.settings, await self.embedder())
        return self._store

    def models(self) -> list[dict[str, Any]]:
        """``/v1/models`` entries: the chat model and the embedder, with what is loaded."""
        entries = []
        for kind, model in (("llm", self._engine), ("embedding", self._embedder)):
            if model is None:
                continue
            info = model.model.info if kind == "llm" else model.info
            entries.append({"id": info.name, "object": "model", "created": int(self.started), "owned_by": "pgpt",
                            "kind": kind, "version": version_of(model), "loaded": True,
                            "size_bytes": info.size_bytes, "expires_at": None})
        return entries

    async def close(self) -> None:
        """Release the engine's cache database."""
        if self._loading is not None:
            with contextlib.suppress(BaseException):
                await self._loading
        if self._engine is not None:
            self._engine.close()


def version_of(model: Any) -> str:
    """A model's version: the first 12 hex digits of its manifest hash."""
    return str(getattr(model, "model_id", "") or model.model.model_id)[:12]


async def stream_in_thread(make: Callable[[], Iterable[str]], cancel: threading.Event) -> AsyncIterator[str]:
    """Iterate a blocking stream in its own thread and hand its pieces to the event loop.

    Closing this generator (the client went away) sets ``cancel``: the generation stops at its
    next token, and the close waits for that so the slot is free when the caller releases it.
    """
    import anyio

    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    finished = loop.create_future()

    def deliver(kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            loop.call_soon_threadsafe(pieces.put_nowait, (kind, value))

    def work() -> None:
        try:
            for piece in make():
                deliver("piece", piece)
            deliver("end", None)
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop, raised there
            deliver("error", exc)
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))

    threading.Thread(target=work, name="pgpt-sequence", daemon=True).start()
    try:
        while True:
            kind, value = await pieces.get()
            if kind == "piece":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        cancel.set()
        with anyio.CancelScope(shield=True):
            await finished
