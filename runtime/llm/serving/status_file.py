"""A running pool's status file, and how `pgpt-tui models --use` reads the outcome of a switch.

A server's model pool notices version switches by watching the model cache, so the command that
switched needs no network access to the server; it learns whether the server could load the new
version from this file: ``PGPT_HOME/run/pool-<pid>-<n>.json`` (which models are loaded and how
each name's last switch went), written by the pool's watcher and removed when the pool closes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgpt.runtime.settings import Settings, ensure_private_dir, process_alive, write_private

log = logging.getLogger(__name__)
_NUMBERS = itertools.count(1)


def run_folder(settings: Settings) -> Path:
    """Where running pools write their status files."""
    return settings.home / "run"


def cache_run_folder(settings: Settings) -> Path:
    """Where running pools also write them in the model cache, which homes share: a user of another
    PGPT_HOME deleted the model a server was answering with (t70)."""
    return settings.model_cache / ".run"


def _home_id(settings: Settings) -> str:
    return os.path.realpath(settings.home)


class StatusFile:
    """The status file of one pool (written only when its content changes)."""

    def __init__(self, settings: Settings) -> None:
        self.path = run_folder(settings) / f"pool-{os.getpid()}-{next(_NUMBERS)}.json"
        self.shared = cache_run_folder(settings) / self.path.name
        # a copied home's file named the first home's live server as its own (t70)
        self.home, self.host = _home_id(settings), socket.gethostname()
        self._lock = threading.Lock()
        self._switches: dict[str, dict[str, Any]] = {}
        self._written = ""
        # the name `default` stays on whatever --use does (pgpt-serve --model, PGPT_MODEL): `models --use`
        # said "now serving NAME" where the server's default did not follow
        self._pinned = {"name": settings.model, "by": settings.named("PGPT_MODEL")} if settings.model else {}

    def switched(self, name: str, target: str, previous: str, ok: bool, reason: str = "") -> None:
        """Record how the switch of ``name`` to ``target`` went (written with the next ``write``)."""
        with self._lock:
            self._switches[name] = {"target": target, "previous": previous, "ok": ok, "reason": reason,
                                    "at": time.time()}

    def failed_switches(self) -> dict[str, dict[str, Any]]:
        """The last switch of each name that failed (target, previous, reason, at)."""
        with self._lock:
            return {name: dict(switch) for name, switch in self._switches.items() if not switch["ok"]}

    def write(self, loaded: list[Any]) -> None:
        """Write the file if anything changed (``loaded``: the pool's LoadedModelInfo list)."""
        with self._lock:
            body = json.dumps({"pid": os.getpid(), "home": self.home, "host": self.host,
                               "serving": {m.name: m.version for m in loaded if m.serving},
                               "loaded": sorted(m.ref for m in loaded),
                               "switches": self._switches, "pinned": self._pinned}, sort_keys=True)
            if body == self._written:
                return
            _replace(self.path, body)
            try:
                _replace(self.shared, body)
            except OSError as exc:  # a read-only model cache: this home's own file still says it
                log.debug("cannot write %s: %s", self.shared, exc)
            self._written = body

    def remove(self) -> None:
        """Delete the files (the pool is closing)."""
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.shared.unlink(missing_ok=True)


def _replace(path: Path, body: str) -> None:
    ensure_private_dir(path.parent)
    temporary = path.with_suffix(".tmp")
    write_private(temporary, body)
    os.replace(temporary, path)


@dataclass(frozen=True)
class SwitchOutcome:
    """What one running pool did with a switch: ok, failed (with the reason), or still pending."""

    pid: int
    state: str  # ok, failed, pending
    reason: str = ""
    pinned: str = ""  # the model its `default` is pinned to (pgpt-serve --model, PGPT_MODEL), if any
    pinned_by: str = ""  # what pinned it: "--model", "PGPT_MODEL", "PGPT_MODEL (set in ./.env)"


def running_pools(settings: Settings) -> list[dict[str, Any]]:
    """Status of every pool of this home whose process still runs (stale files of dead processes are
    removed; a file copied with the home from another is not this home's)."""
    home = _home_id(settings)
    return [pool for pool in _live(run_folder(settings)) if pool.get("home", home) == home]


def pools_over_cache(settings: Settings) -> list[dict[str, Any]]:
    """Status of every running pool of this machine over this model cache, whatever its home."""
    host = socket.gethostname()
    pools = {int(pool["pid"]): pool for pool in running_pools(settings)}
    for pool in _live(cache_run_folder(settings), host):
        pools.setdefault(int(pool["pid"]), pool)
    return list(pools.values())


def _live(folder: Path, host: str = "") -> list[dict[str, Any]]:
    """The status files in ``folder`` whose process runs (of ``host``'s only, when given)."""
    pools = []
    for path in sorted(folder.glob("pool-*.json")) if folder.is_dir() else []:
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
            pid = int(status["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if host and status.get("host") != host:  # a model cache on a share: another machine's process
            continue
        if process_alive(pid):
            pools.append(status)
        else:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
    return pools


def wait_for_switch(settings: Settings, name: str, target: str, since: float, timeout_s: float,
                    poll_s: float = 0.25) -> list[SwitchOutcome]:
    """Wait until every running pool that serves ``name`` switched it to ``target`` or failed
    to (a failure recorded at or after ``since``, a ``time.time()``).

    Returns one outcome per such pool (pending ones when ``timeout_s`` passed); none when no
    running pool serves ``name`` (it loads the active version when first asked).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        outcomes = []
        for pool in running_pools(settings):
            switch = pool.get("switches", {}).get(name, {})
            pinned = pool.get("pinned") or {}
            pin = {"pinned": str(pinned.get("name", "")), "pinned_by": str(pinned.get("by", ""))}
            # Serving it is done, whatever an earlier switch to another version did (a failed one
            # left the old version serving, and --use of that version waited out its whole time).
            if pool.get("serving", {}).get(name) == target:
                outcomes.append(SwitchOutcome(pool["pid"], "ok", **pin))
            elif switch.get("target") == target and not switch.get("ok") and switch.get("at", 0) >= since:
                outcomes.append(SwitchOutcome(pool["pid"], "failed", str(switch.get("reason", "")), **pin))
            elif name in pool.get("serving", {}):
                outcomes.append(SwitchOutcome(pool["pid"], "pending", **pin))
        if all(o.state != "pending" for o in outcomes) or time.monotonic() >= deadline:
            return outcomes
        time.sleep(poll_s)

