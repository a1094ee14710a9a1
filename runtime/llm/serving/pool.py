"""The model pool: models load on first use, stay for a keep-alive, switch versions under load.

A request asks for ``default`` (the registry's active chat model), ``name`` (that model's active
version) or ``name@version`` and holds a ``Lease`` while it runs. Each loaded version has its
own scheduler (continuous batching); all share one answer cache. A watcher thread unloads
models idle past their keep-alive and notices when the registry's active version of a loaded
name changes (`pgpt-tui models --use/--rollback` in another process): it loads the new version
beside the old one, sends new requests to it, and lets leases on the old one finish there; the
old one unloads with its last lease. When the new version fails to load, the old one keeps
serving and the failure is counted, logged, sent to subscribers and written to the pool's
status file, which `pgpt-tui models --use` reads for its exit code.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import (ModelDamagedError, ModelIntegrityError, ModelLoadError, ModelNotFoundError,
                                 ServerBusyError)
from pgpt.runtime.llm.answer_cache import AnswerCache
from pgpt.runtime.llm.chat import ChatEngine
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.serving.hot_swap import HotSwapMixin, failure_reason
from pgpt.runtime.llm.serving.reports import LoadedModelInfo, PoolConfig, PoolEvent, PoolStats
from pgpt.runtime.llm.serving.status_file import StatusFile
from pgpt.runtime.llm.serving.scheduler import Scheduler
from pgpt.runtime.models import ModelInfo, active_chat_model, find_model, is_plain_name, require_kind
from pgpt.runtime.settings import Settings
from pgpt.runtime.versions import parse_ref

log = logging.getLogger(__name__)
# What a client naming an embedding model for a chat answer reads after the cause.
WRONG_KIND_HINT = "Name a chat model (GET /v1/models and `pgpt-tui models` give each model's kind)."
__all__ = ["Lease", "LoadedModelInfo", "ModelPool", "PoolConfig", "PoolEvent", "PoolStats"]


class _Loaded:
    """A loaded version: model, scheduler, chat engine, and who uses it."""

    def __init__(self, info: ModelInfo, model: LanguageModel, scheduler: Scheduler, chat: ChatEngine,
                 keep_alive_s: float, load_s: float) -> None:
        self.info, self.model, self.scheduler, self.chat = info, model, scheduler, chat
        self.keep_alive_s, self.load_s = keep_alive_s, load_s
        self.loaded_at = time.time()
        self.last_used = time.monotonic()
        self.leases = 0
        self.retiring = False  # replaced by a newer version: unloads with its last lease
        self.weights_bytes = sum(int(f["size"]) for f in info.manifest["files"] if ".onnx" in f["path"])

    @property
    def key(self) -> tuple[str, str]:
        return self.info.name, self.info.version

    def expired(self, now: float) -> bool:
        return self.leases == 0 and self.keep_alive_s >= 0 and now - self.last_used >= self.keep_alive_s


class Lease:
    """A request's hold on one loaded version; release it (or leave the ``with``) when done."""

    def __init__(self, pool: "ModelPool", loaded: _Loaded) -> None:
        self._pool, self._loaded = pool, loaded
        self.name, self.version = loaded.info.name, loaded.info.version
        self.chat: ChatEngine = loaded.chat
        self.scheduler: Scheduler = loaded.scheduler
        self.model: LanguageModel = loaded.model
        self._released = False

    @property
    def ref(self) -> str:
        """``name@version`` of the version that serves this request."""
        return f"{self.name}@{self.version}"

    def release(self) -> None:
        """Give the model back (once; later calls do nothing)."""
        if not self._released:
            self._released = True
            self._pool._release(self._loaded)

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class ModelPool(HotSwapMixin):
    """Loaded chat models, their schedulers and the shared answer cache (see the module)."""

    def __init__(self, settings: Settings, config: PoolConfig | None = None, use_cache: bool = True) -> None:
        self.settings = settings
        self.config = config or PoolConfig()
        self.cache = AnswerCache(settings.answer_cache_dir, settings.cache_size_mb) if use_cache else None
        self._lock = threading.Condition()
        self._loaded: dict[tuple[str, str], _Loaded] = {}
        self._serving: dict[str, str] = {}  # name -> the version plain `name` requests get
        self._loading: set[tuple[str, str]] = set()
        # name -> (version, link time) of a switch that failed: not retried until the link is made again
        self._failed: dict[str, tuple[str, int]] = {}
        self._counts = collections.Counter[str]()
        self._listeners: list[Callable[[PoolEvent], None]] = []
        self._status = StatusFile(settings)
        self._switching = threading.Lock()
        self._default: tuple[tuple[int, ...], str] | None = None
        self._closed = False
        self._watcher = threading.Thread(target=self._watch, name="pgpt-pool-watcher", daemon=True)
        self._watcher.start()

    # Requests -------------------------------------------------------------------------------

    def acquire(self, ref: str = "default", keep_alive: float | None = None) -> Lease:
        """A lease on the version ``ref`` names, loading it first when needed (blocking).

        Args:
            ref: ``default``, ``name`` or ``name@version`` (a unique prefix of the version).
            keep_alive: Idle seconds before this model unloads, from now on (-1 never, 0 at
                once); None keeps the model's current keep-alive.

        Raises:
            ModelNotFoundError / VersionNotFoundError: nothing of that name or version.
            UsageError: ``ref`` names an embedding model.
            ModelLoadError: the version could not be loaded.
            ServerBusyError: ``max_loaded`` models are loaded and all are in use.
        """
        follow_default = ref in ("", "default")
        if ref.startswith("default@"):  # it said "no exported model called 'default' ... 'default' is its active one"
            from pgpt.runtime.errors import UsageError

            raise UsageError(f"{ref[:80]!r}: 'default' follows the active chat model and takes no version.",
                             hint="Name the model with its version (NAME@VERSION: GET /v1/models lists them), or "
                                  "ask for 'default' alone.")
        name, version = parse_ref(self._default_name() if follow_default else ref)
        while True:
            with self._lock:
                key = self._choose(name, version)
                if key in self._loading:
                    self._lock.wait()
                    continue
                if key in self._loaded:
                    return self._lease(self._loaded[key], keep_alive)
            if not is_plain_name(name):  # a client names a model of the cache, never a folder on the disk
                raise ModelNotFoundError(f"There is no model called {name!r} on this server.",
                                         hint="GET /v1/models lists the models this server serves.")
            info = find_model(self.settings, f"{name}@{version}" if version else name)  # reads the disk
            # The model exists but is of the wrong kind: the request names the wrong model (400), no 404.
            require_kind(info, "llm", hint=WRONG_KIND_HINT)
            key = (info.name, info.version)
            with self._lock:
                if key in self._loading:
                    self._lock.wait()
                    continue
                if key in self._loaded:  # loaded by an explicit name@version request, or retiring
                    loaded = self._loaded[key]
                    loaded.retiring = False
                    if not version:
                        self._serving.setdefault(info.name, info.version)
                    return self._lease(loaded, keep_alive)
                evicted = self._make_room(follow_default)
                self._loading.add(key)
            for old in evicted:
                self._close_loaded(old, "max_loaded")
            loaded = self._load(info, keep_alive, serve=not version)
            with self._lock:
                return self._lease(loaded, keep_alive)

    def _choose(self, name: str, version: str) -> tuple[str, str] | None:
        """The loaded (or loading) version a request for ``name[@version]`` gets; the caller holds the lock."""
        if not version:
            served = self._serving.get(name)
            return (name, served) if served else None
        matches = [key for key in [*self._loaded, *self._loading] if key[0] == name and key[1].startswith(version)]
        return matches[0] if len(matches) == 1 else None

    def _lease(self, loaded: _Loaded, keep_alive: float | None) -> Lease:
        """Count a new lease; the caller holds the lock."""
        loaded.leases += 1
        loaded.last_used = time.monotonic()
        if keep_alive is not None:
            loaded.keep_alive_s = keep_alive
        return Lease(self, loaded)

    def _release(self, loaded: _Loaded) -> None:
        with self._lock:
            loaded.leases -= 1
            loaded.last_used = time.monotonic()
            done = loaded.leases == 0 and (loaded.retiring or loaded.keep_alive_s == 0)
        if done:
            self._unload(loaded, "retired" if loaded.retiring else "keep_alive 0")

    def _default_name(self) -> str:
        """The registry's active chat model, for every request (clients follow a switch): read
        again whenever the config file or the model cache's entries changed."""
        stamp = tuple(_mtime(path) for path in (self.settings.config_file, self.settings.model_cache))
        cached = self._default
        if cached is None or cached[0] != stamp:
            now = active_chat_model(self.settings).name
            if cached is not None and cached[1] != now:  # `models --use` of another model: clients follow it
                log.info("default model is now %s (was %s): `pgpt-tui models --use`", now, cached[1])
            cached = self._default = (stamp, now)
        return cached[1]

    # Loading and unloading ------------------------------------------------------------------

    def _make_room(self, may_retire_busy: bool) -> list[_Loaded]:
        """Drop idle models (least recently used first) until one more fits, and return them for
        the caller to close once it released the lock (which it holds now).

        When every loaded model is busy: a request for the default model retires the least
        recently used one (it unloads after its last request; memory holds both meanwhile);
        any other request is refused.
        """
        evicted = []
        while len([m for m in self._loaded.values() if not m.retiring]) + len(self._loading) >= self.config.max_loaded:
            candidates = sorted((m for m in self._loaded.values() if not m.retiring), key=lambda m: m.last_used)
            idle = [m for m in candidates if m.leases == 0]
            if idle:
                self._drop(idle[0])
                evicted.append(idle[0])
            elif may_retire_busy and candidates:
                candidates[0].retiring = True
                self._serving.pop(candidates[0].info.name, None)
            else:
                raise ServerBusyError(
                    f"{len(self._loaded)} models are loaded and all are answering requests "
                    f"(max_loaded={self.config.max_loaded}).",
                    limit=f"max_loaded={self.config.max_loaded}", retry_after_s=self.config.scheduler.retry_after_s)
        return evicted

    def _load(self, info: ModelInfo, keep_alive: float | None, serve: bool) -> _Loaded:
        """Load ``info`` (blocking, outside the lock); the caller added its key to ``_loading``."""
        key = (info.name, info.version)
        started = time.perf_counter()
        try:
            model = LanguageModel(info, self.settings.provider, self.settings.threads)
            scheduler = Scheduler(model, self.config.scheduler, name=info.ref)
        except Exception as exc:
            with self._lock:
                self._loading.discard(key)
                self._counts["load_failures"] += 1
                self._lock.notify_all()
            reason = failure_reason(exc)
            log.error("loading %s failed: %s", info.ref, reason)
            self._emit(PoolEvent("load_failed", info.name, info.version, reason=reason))
            if isinstance(exc, ModelIntegrityError):  # the title says it could not be loaded: not twice (t49)
                raise ModelDamagedError(f"{info.ref}: {reason}", name=info.name, version=info.version, reason=reason,
                                        hint=f"Delete that version (`pgpt-tui models --delete {info.ref}`) and "
                                             "export the model again, or ask for another version (GET /v1/models "
                                             "lists them).") from exc
            raise ModelLoadError(f"{info.ref}: {reason}", name=info.name, version=info.version,
                                 reason=reason) from exc
        seconds = time.perf_counter() - started
        keep = self.config.keep_alive_s if keep_alive is None else keep_alive
        loaded = _Loaded(info, model, scheduler, ChatEngine.on_scheduler(scheduler, self.cache), keep, seconds)
        with self._lock:
            self._loading.discard(key)
            self._loaded[key] = loaded
            if serve and info.name not in self._serving:
                self._serving[info.name] = info.version
            self._counts["loads"] += 1
            self._lock.notify_all()
        log.info("loaded %s in %.1f s", info.ref, seconds)
        self._emit(PoolEvent("loaded", info.name, info.version, seconds=round(seconds, 3)))
        try:  # at once, not at the watcher's next turn: `models --use` looks for pools serving the name
            self._status.write(self.loaded())
        except OSError as exc:
            log.warning("the pool's status file could not be written: %s", exc)
        return loaded

    def _drop(self, loaded: _Loaded) -> None:
        """Forget a loaded version (no new leases); the caller holds the lock."""
        if self._loaded.get(loaded.key) is loaded:
            del self._loaded[loaded.key]
        if self._serving.get(loaded.info.name) == loaded.info.version:
            del self._serving[loaded.info.name]
        self._counts["unloads"] += 1

    def _unload(self, loaded: _Loaded, why: str) -> None:
        with self._lock:
            if self._loaded.get(loaded.key) is not loaded or loaded.leases:
                return
            self._drop(loaded)
        self._close_loaded(loaded, why)

    def _close_loaded(self, loaded: _Loaded, why: str) -> None:
        loaded.scheduler.close()
        loaded.scheduler.release_model()
        log.info("unloaded %s (%s)", loaded.info.ref, why)
        self._emit(PoolEvent("unloaded", loaded.info.name, loaded.info.version, reason=why))

    def unload(self, ref: str) -> bool:
        """Unload an idle ``name`` or ``name@version`` now; False when it is not loaded or busy."""
        name, version = parse_ref(ref)
        with self._lock:
            key = self._choose(name, version)
            loaded = self._loaded.get(key) if key else None
        if loaded is None or loaded.leases:
            return False
        self._unload(loaded, "asked")
        return True

    # The watcher ----------------------------------------------------------------------------

    def _watch(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed, self.config.watch_interval_s)
                if self._closed:
                    return
                now = time.monotonic()
                expired = [m for m in self._loaded.values() if m.expired(now)]
            for loaded in expired:
                self._unload(loaded, "keep_alive")
            try:
                self.check_registry()
                self._default_name()  # logs a `models --use` switch when it happens, not at the next request (t80)
                self._status.write(self.loaded())
            except Exception:  # the watcher must survive a bad registry read; the next turn retries
                log.exception("model pool watcher")

    # Reports --------------------------------------------------------------------------------

    def failed_switches(self) -> dict[str, dict[str, Any]]:
        """Names whose last version switch failed: the version wanted and why (the old one serves)."""
        return self._status.failed_switches()

    def loaded(self) -> list[LoadedModelInfo]:
        """The loaded versions, with memory (weights + KV written) and unload time."""
        with self._lock:
            models = list(self._loaded.values())
            serving = dict(self._serving)
        now_wall, now = time.time(), time.monotonic()
        report = []
        for m in models:
            stats = m.scheduler.stats()
            expires = (None if m.leases or m.keep_alive_s < 0
                       else now_wall + max(0.0, m.keep_alive_s - (now - m.last_used)))
            report.append(LoadedModelInfo(m.info.name, m.info.version, m.weights_bytes + stats.kv_bytes,
                                          m.loaded_at, expires, m.leases,
                                          serving.get(m.info.name) == m.info.version, stats))
        return report

    def stats(self) -> PoolStats:
        """Loads, unloads, failures and switches since start; queued and running requests now."""
        models = self.loaded()
        with self._lock:
            counts = dict(self._counts)
        return PoolStats(counts.get("loads", 0), counts.get("unloads", 0), counts.get("load_failures", 0),
                         counts.get("switches", 0), len(models), sum(m.scheduler.queued for m in models),
                         sum(m.scheduler.running for m in models))

    def ready(self) -> bool:
        """Whether the default model is loaded and serving."""
        try:
            name = self._default_name()
        except ModelNotFoundError:
            return False
        with self._lock:
            return name in self._serving

    def subscribe(self, callback: Callable[[PoolEvent], None]) -> None:
        """Call ``callback`` with every PoolEvent (on the thread that caused it; keep it quick)."""
        self._listeners.append(callback)

    def _emit(self, event: PoolEvent) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:  # a subscriber's bug must not break loading or serving
                log.exception("pool event subscriber failed")

    def close(self) -> None:
        """Stop the watcher, close every scheduler, the answer cache and the status file."""
        with self._lock:
            self._closed = True
            models = list(self._loaded.values())
            self._loaded.clear()
            self._serving.clear()
            self._lock.notify_all()
        self._watcher.join(5)
        for loaded in models:
            loaded.scheduler.close()
        if self.cache is not None:
            self.cache.close()
        self._status.remove()


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
