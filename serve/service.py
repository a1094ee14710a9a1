"""What one server instance holds: its model pool, embedder and document index.

The pool (pgpt.runtime.llm.serving) loads chat models on first use, batches their requests in one
scheduler per loaded version, refuses work beyond --parallel and --max-queue at once, unloads
idle models and swaps versions; the server only leases from it. Built by the app factory from
the settings; nothing lives in module globals, so one process may hold several services (tests
do; Ray Serve would put one in each replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from pgpt.runtime.settings import Settings
from pgpt.serve.config import ServeSettings
from pgpt.serve.limits import WorkQueue
from pgpt.serve.metrics import ServerMetrics
from pgpt.serve.upload_progress import UploadProgress

log = logging.getLogger("pgpt.serve")
RETRY_LOAD_S = 5.0  # a failed start-up load is tried again on /ready or a documents request, at most this often


class Service:
    """The model pool (chat models, their schedulers, the shared answer cache), the embedder and
    the document index behind the routes; loaded in threads when the app starts."""

    def __init__(self, settings: Settings, serve: ServeSettings, metrics: ServerMetrics) -> None:
        self.settings, self.serve, self.metrics = settings, serve, metrics
        self.started = time.time()
        self.pool: Any = None
        self._embedder: Any = None
        self._store: Any = None
        self._loading: asyncio.Task[None] | None = None
        self.start_error: BaseException | None = None  # why start() failed: pgpt-serve prints it
        self.load_error: BaseException | None = None  # the default chat model's, at start
        self.loaded_once = False  # the default chat model loaded well at least once
        self._told_context = False  # the warning that --context is above the model's own, said once
        self.embedder_error: BaseException | None = None  # documents and embeddings only
        self.ingest_lock = threading.Lock()  # one writer at a time inside this server
        self.upload_progress = UploadProgress()  # how far each upload's indexing is, for its client
        # uploads and embeddings queue apart from answers, bounded, waiting without a thread (t52, t53)
        self.uploads = WorkQueue("uploads being indexed", 1, serve.max_queue, gauges=_gauges(metrics, "uploads"),
                                 rejected=metrics.rejected)
        self.embedding_jobs = WorkQueue("embedding requests", 1, serve.max_queue,
                                        gauges=_gauges(metrics, "embeddings"), rejected=metrics.rejected)
        self.stopping = threading.Event()  # told to stop: running answers are cut at once
        self.answering: set[Any] = set()  # the Completions whose answers run

    def stop_answers(self) -> None:
        """The server was told to stop: cut every running answer now (each stream ends with a
        "Server stopping" error), so the process does not wait out uvicorn's grace period."""
        self.stopping.set()
        for completion in list(self.answering):
            completion.cancel.set()

    async def start(self) -> None:
        """Build the pool and start loading the default chat model and the embedder; /ready
        answers 200 once the chat model serves."""
        from pgpt.runtime.llm.serving.pool import ModelPool, PoolConfig
        from pgpt.runtime.llm.serving.scheduler import SchedulerConfig

        serve = self.serve
        config = PoolConfig(keep_alive_s=serve.keep_alive_s, max_loaded=serve.max_loaded,
                            scheduler=SchedulerConfig(parallel=serve.parallel, max_queue=serve.max_queue,
                                                      max_tokens_cap=serve.max_tokens_cap, context=serve.context))
        from pgpt.serve.documents import sweep_uploads

        if swept := await asyncio.to_thread(sweep_uploads, self.settings.home):
            log.info("undid %d files of uploads a stopped server left (copies removed, earlier versions put back, "
                     "documents it never indexed removed)", swept)
        self.pool = await asyncio.to_thread(ModelPool, self.settings, config)
        self.pool.subscribe(self._pool_event)
        self._attempted = time.monotonic()
        self._loading = asyncio.create_task(self._load())

    def retry_failed_load(self) -> None:
        """Start the start-up load again when it failed, at most every ``RETRY_LOAD_S``: models
        exported after the server started were found by chat requests but never by the
        embeddings and documents routes, and /ready said "loading failed" until a chat came."""
        failed = self.load_error is not None or self.embedder_error is not None
        running = self._loading is not None and not self._loading.done()
        if failed and not running and time.monotonic() - self._attempted >= RETRY_LOAD_S:
            self._attempted = time.monotonic()
            self._loading = asyncio.create_task(self._load())

    async def _load(self) -> None:
        from pgpt.runtime.llm.embeddings import default_embedder

        lease, embedder = await asyncio.gather(asyncio.to_thread(self.pool.acquire, self.serve.model or "default"),
                                               asyncio.to_thread(default_embedder, self.settings),
                                               return_exceptions=True)
        if isinstance(embedder, BaseException):  # chat still works; documents answer with this error
            if str(embedder) != str(self.embedder_error):  # a retry that fails alike is not news
                log.error("embedding model unavailable: %s", embedder)
            self.embedder_error = embedder
        else:
            self._embedder, self.embedder_error = embedder, None
        if isinstance(lease, BaseException):  # requests load on demand and say why they cannot
            if str(lease) != str(self.load_error):
                log.error("chat model loading failed: %s", lease)
            self.load_error = lease
            return
        self.load_error, self.loaded_once = None, True
        log.info("serving %s on %s", lease.ref, lease.chat.provider)
        held = lease.model.max_context
        if self.serve.context > held and not self._told_context:  # it was lowered without a word (t63)
            self._told_context = True
            log.warning("--context %d (PGPT_CONTEXT) is above %s's own %d tokens: its sequences hold %d",
                        self.serve.context, lease.name, held, held)
        lease.release()  # it stays loaded for its keep-alive

    def _pool_event(self, event: Any) -> None:
        """Model loads, unloads, failures and switches: counted, and logged with the reason."""
        counters = {"loaded": self.metrics.model_loads, "unloaded": self.metrics.model_unloads,
                    "load_failed": self.metrics.model_load_failures, "switched": self.metrics.model_switches}
        if event.kind in counters:
            counters[event.kind].labels(event.name).inc()
        if event.kind == "loaded":  # each model's other counters from 0: dashboards showed "no data" (t46)
            for counter in counters.values():
                counter.labels(event.name)
        log.info("model %s: %s@%s%s%s", event.kind, event.name, event.version,
                 f" (was {event.previous})" if event.previous else "", f": {event.reason}" if event.reason else "")

    @property
    def ready(self) -> bool:
        """Whether the default chat model serves: loaded, or unloaded after its keep-alive once it had
        loaded well (the next request loads it again). /ready said 503 "loading" for good after an
        idle unload, so a health check marked an idle, working server down (with --keep-alive 0 always)."""
        return self.pool is not None and (self.pool.ready() or (self.loaded_once and self.load_error is None))

    async def lease(self, ref: str, keep_alive: float | None = None) -> Any:
        """A lease on the model ``ref`` names ('default', a name, name@version), loading it if
        needed; release it when the answer is done (the version that started it finishes it)."""
        from pgpt.runtime.errors import ModelNotFoundError

        if self._loading is not None:
            await asyncio.shield(self._loading)  # the first requests wait for the start-up load
        try:
            return await asyncio.to_thread(self.pool.acquire, ref or "default", keep_alive)
        except ModelNotFoundError as exc:  # its hint (pgpt-export, pgpt-tui) is for the operator, not a client
            exc.hint = "GET /v1/models lists the models this server serves; 'default' is its active one."
            raise

    async def embedder(self) -> Any:
        """The embedding model (raises why it could not be loaded)."""
        self.retry_failed_load()
        if self._loading is not None:
            await asyncio.shield(self._loading)
        if self.embedder_error is not None:
            raise self.embedder_error
        return self._embedder

    async def store(self) -> Any:
        """The document index (opened on first use; refused when built with another embedder)."""
        from pgpt.runtime.documents.ingest import open_store

        if self._store is None:
            store = await asyncio.to_thread(open_store, self.settings, await self.embedder())
            await asyncio.to_thread(self._relocate, store)
            self._store = store
        return self._store

    def _relocate(self, store: Any) -> None:
        """Uploads of this home when it was elsewhere (moved_home.py), found where they are now."""
        from pgpt.serve.moved_home import relocate_uploads

        with self.ingest_lock:
            moved = relocate_uploads(self.settings, store)
        if moved:
            log.info("%d uploads indexed under another home's path (the home was moved, restored or copied) now "
                     "point to this home's uploads folder, e.g. %s", len(moved), moved[0][1])

    def refresh_gauges(self) -> None:
        """Queue depth, running sequences, loaded models and batch fill, read from the pool now."""
        if self.pool is None:
            return
        loaded = self.pool.loaded()
        self.metrics.running.set(sum(m.scheduler.running for m in loaded))
        self.metrics.waiting.set(sum(m.scheduler.queued for m in loaded))
        self.metrics.loaded.set(len(loaded))
        steps = sum(m.scheduler.decode_steps for m in loaded)
        self.metrics.busy_slots.set(sum(m.scheduler.decode_rows for m in loaded) / steps if steps else 0.0)

    def models(self) -> list[dict[str, Any]]:
        """``/v1/models``: every chat model of the registry (active version, loaded versions with
        memory and unload time) and the embedder."""
        from pgpt.runtime.models import chat_model_name, list_models

        loaded = self.pool.loaded() if self.pool is not None else []
        failed = self.pool.failed_switches() if self.pool is not None else {}
        default = chat_model_name(self.settings)
        entries = []
        for info in list_models(self.settings):
            if info.kind != "llm":
                continue
            versions = [{"version": m.version, "memory_bytes": m.memory_bytes, "active_requests": m.active_requests,
                         "serving": m.serving, "loaded_at": int(m.loaded_at),
                         "expires_at": int(m.expires_at) if m.expires_at is not None else None}
                        for m in loaded if m.name == info.name]
            entries.append({"id": info.name, "object": "model", "created": exported_at(info.manifest, self.started),
                            "owned_by": "pgpt", "kind": "llm", "version": info.version, "default": info.name == default,
                            "loaded": bool(versions), "size_bytes": info.size_bytes, "loaded_versions": versions})
            switch = failed.get(info.name)
            if switch is not None and switch["target"] == info.version:  # the active version would not load
                entries[-1]["switch_failed"] = {"version": switch["target"], "reason": switch["reason"]}
        if self._embedder is not None:
            info = self._embedder.info
            entries.append({"id": info.name, "object": "model", "created": exported_at(info.manifest, self.started),
                            "owned_by": "pgpt", "kind": "embedding", "version": info.version, "loaded": True,
                            "size_bytes": info.size_bytes})
        return entries

    async def close(self) -> None:
        """Stop the pool (its schedulers, the watcher, the answer cache)."""
        if self._loading is not None:
            with contextlib.suppress(BaseException):
                await self._loading
        if self.pool is not None:
            await asyncio.to_thread(self.pool.close)


def exported_at(manifest: dict[str, Any], fallback: float) -> int:
    """OpenAI's ``created`` of a model: when its version was exported (the manifest's time), not when
    the server started (every model had the same time, t62); ``fallback`` for a manifest without one."""
    import calendar

    try:
        return calendar.timegm(time.strptime(str(manifest["created"]), "%Y-%m-%dT%H:%M:%SZ"))
    except (KeyError, ValueError):
        return int(fallback)


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


def _gauges(metrics: ServerMetrics, kind: str) -> tuple[Any, Any]:
    """The running and waiting gauges of one kind of job."""
    return metrics.jobs_running.labels(kind), metrics.jobs_waiting.labels(kind)
