"""Hot swap for the model pool: a name's new active version loads beside the old one.

Kept apart from the pool's leasing and loading: this is the part that reacts to the registry
(`pgpt-tui models --use/--rollback` in another process). Requests in flight finish on the
version they started on; new requests go to the new one; a version that fails to load leaves
the old one serving, and the failure is logged and written to the pool's status file.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pgpt.runtime.errors import ModelLoadError
from pgpt.runtime.llm.serving.reports import PoolEvent
from pgpt.runtime.models import find_model
from pgpt.runtime.versions import linked_version

if TYPE_CHECKING:
    from pgpt.runtime.settings import Settings

log = logging.getLogger(__name__)


class HotSwapMixin:
    """Mixed into ModelPool, which provides the state named below and ``_load``, ``_unload``,
    ``_emit``."""

    settings: "Settings"
    _switching: Any
    _lock: Any
    _serving: dict[str, str]
    _failed: dict[str, tuple[str, int]]
    _loading: set[tuple[str, str]]
    _loaded: dict[tuple[str, str], Any]
    _counts: Any
    _status: Any
    _load: Any
    _unload: Any
    _emit: Any

    # Hot swap -------------------------------------------------------------------------------

    def check_registry(self) -> None:
        """Switch every served name whose active version changed on disk (see the module); returns
        when the switches it started, or the watcher's running one, are done."""
        with self._switching:  # one switch at a time: the watcher and a caller never load it twice
            with self._lock:
                served = dict(self._serving)
            for name, version in served.items():
                wanted = linked_version(self.settings.model_cache, name)
                if not wanted or wanted == version or self._failed.get(name) == (wanted, self._link_time(name)):
                    continue
                self._switch(name, version, wanted)

    def _link_time(self, name: str) -> int:
        """When the name's version link was last made (a new `--use` of the same version retries it)."""
        try:
            return (self.settings.model_cache / name).lstat().st_mtime_ns
        except OSError:
            return 0

    def _switch(self, name: str, current: str, wanted: str) -> None:
        """Load ``wanted`` beside ``current``, then send new requests of ``name`` to it."""
        try:
            info = find_model(self.settings, f"{name}@{wanted}")
            key = (name, info.version)
            with self._lock:
                if key in self._loading:
                    return
                loaded = self._loaded.get(key)  # e.g. a rollback while it still drains
                if loaded is None:
                    self._loading.add(key)
                else:
                    loaded.retiring = False
            loaded = loaded or self._load(info, None, serve=False)
        except Exception as exc:  # the old version keeps serving; say why everywhere
            reason = exc.reason if isinstance(exc, ModelLoadError) else failure_reason(exc)
            self._failed[name] = (wanted, self._link_time(name))
            self._status.switched(name, wanted, current, ok=False, reason=reason)
            log.error("switch of %s to %s failed, %s keeps serving: %s", name, wanted, current, reason)
            return
        with self._lock:
            old = self._loaded.get((name, current))
            self._serving[name] = info.version
            self._failed.pop(name, None)
            self._counts["switches"] += 1
            loaded.keep_alive_s = old.keep_alive_s if old is not None else loaded.keep_alive_s
            if old is not None:
                old.retiring = True
        self._status.switched(name, info.version, current, ok=True)
        self._emit(PoolEvent("switched", name, info.version, previous=current))
        if old is not None:
            self._unload(old, "replaced")  # now if idle, else with its last lease


def failure_reason(error: BaseException) -> str:
    """One line for logs and metrics labels: the error's own words, or its type."""
    if isinstance(error, MemoryError):
        return "out of memory"
    return " ".join(str(error).split())[:300] or type(error).__name__
