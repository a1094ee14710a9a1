"""Adds of documents that did not finish, remembered across runs.

While an add runs, a small JSON file under ``PGPT_HOME/unfinished-adds`` names its paths and the
files done of how many. The add removes it when it ends in its own process, however it ends
(finished; stopped by Ctrl+X or Ctrl-C, or failed: each of those says so itself). One left behind is
an add whose process ended first: a dropped SSH session, a kill, the app quit during the add. The
app's next start says it once; before, the index answered from 70 of 200 files without a word.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgpt.runtime.documents.discovery import resolved
from pgpt.runtime.documents.records import DEFAULT_COLLECTION
from pgpt.runtime.settings import Settings, ensure_private_dir, write_private

if TYPE_CHECKING:
    from pgpt.runtime.documents.progress import IngestProgress

log = logging.getLogger(__name__)
Progress = Callable[["IngestProgress"], None]


def markers_dir(settings: Settings) -> Path:
    """Where the markers of running and unfinished adds are kept."""
    return settings.home / "unfinished-adds"


@dataclass(frozen=True)
class UnfinishedAdd:
    """One marker: the add's paths (absolute), its collection, files done of ``total``, its process."""

    paths: list[str]
    collection: str
    done: int
    total: int
    pid: int
    file: Path = field(compare=False)
    said: bool = field(default=False, compare=False)  # the app's start has said it once (mark_said)

    def ended(self) -> bool:
        """Whether its process is gone (a live one is still adding, or is this process)."""
        if self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's process holds the number: alive
            return False
        return False

    def stopped_at(self) -> str:
        """"Adding /docs stopped after 70 of 200 files"."""
        return f"Adding {', '.join(self.paths)} stopped after {self.done} of {self.total} files"

    def command(self) -> str:
        """The command line that goes on with it (the files done are skipped)."""
        into = "" if self.collection == DEFAULT_COLLECTION else f" --collection {shlex.quote(self.collection)}"
        return f"pgpt-tui ingest {' '.join(shlex.quote(p) for p in self.paths)}{into}"

    def forget(self) -> None:
        """Remove the marker (its add was reported)."""
        _remove(self.file)

    def mark_said(self) -> None:
        """Note in the marker that the app's start said it: it is not said again, but `doctor` still names
        it until the add is run again (the start removed it, and doctor then said "none unfinished", t69)."""
        try:
            record = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        _write(self.file, {**record, "said": True})


def marker_file(settings: Settings, paths: list[Path], collection: str) -> Path:
    """The marker of an add of ``paths`` into ``collection``: the same for the same folders however
    they were named (relative, with ~), so that adding them again from the app or the CLI clears it."""
    named = sorted(str(resolved(Path(p))) for p in paths)
    key = hashlib.sha256(json.dumps([named, collection]).encode()).hexdigest()[:16]
    return markers_dir(settings) / f"{key}.json"


@contextlib.contextmanager
def remembered(settings: Settings, paths: list[Path], collection: str, progress: Progress | None = None,
               keep: Callable[[], bool] | None = None) -> Iterator[Progress]:
    """Keep the marker of this add while the block runs: the progress callback it gives (to pass to
    ``ingest``) writes the files done to it, then calls ``progress``. The marker is removed when the
    block ends, by an error or a Ctrl-C too (they say where things stand to the user who is there); a
    process that dies in it, or is stopped by SIGTERM, leaves the marker, and so does a block ended
    while ``keep()`` is true (the app stopped the add because it quits)."""
    file = marker_file(settings, paths, collection)
    record: dict[str, Any] = {"paths": sorted(str(resolved(Path(p))) for p in paths),
                              "collection": collection, "pid": os.getpid(), "started": time.time()}
    state = {"written": (-1, -1), "open": True}

    def tick(progress_tick: IngestProgress) -> None:
        files = (progress_tick.done, progress_tick.total)
        # the last tick (all done) is not written: the add ends and the marker goes with it
        if state["open"] and files != state["written"] and progress_tick.done < progress_tick.total:
            state["written"] = files
            state["open"] = _write(file, {**record, "done": files[0], "total": files[1]})
        if progress is not None:
            progress(progress_tick)

    from pgpt.runtime.signals import Terminated

    kept = False
    try:
        yield tick
    except Terminated:
        # SIGTERM (a timeout in cron, systemctl stop): its paragraph went to a log nobody reads, and then
        # nothing said the folder was half in; the marker stays for doctor and the app's next start (t53)
        kept = True
        raise
    finally:
        state["open"] = False
        kept = kept or (keep is not None and keep())
        if state["written"] != (-1, -1) and not kept:  # not started (another add held the lock): not its marker
            _remove(file)


def _write(file: Path, record: dict[str, Any]) -> bool:
    """Write the marker atomically; False, logged, when it cannot be (the add goes on without it)."""
    tmp = file.with_suffix(f".tmp-{os.getpid()}")
    try:
        ensure_private_dir(file.parent)
        write_private(tmp, json.dumps(record))
        os.replace(tmp, file)
    except OSError as exc:
        log.warning("the add is not remembered in %s: %s", file.parent, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return False
    return True


def _remove(file: Path) -> None:
    """Remove a marker; a failure is logged (a marker left says once too much, never too little)."""
    try:
        file.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove %s: %s", file, exc)


def unfinished_adds(settings: Settings) -> list[UnfinishedAdd]:
    """Every marker, the oldest first, those of running adds among them (see ``UnfinishedAdd.ended``);
    one that cannot be read is logged and removed (it only ever held a note)."""
    folder = markers_dir(settings)
    found = []
    for file in sorted(folder.glob("*.json"), key=_age) if folder.is_dir() else []:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            add = UnfinishedAdd([str(p) for p in data["paths"]], str(data["collection"]), int(data["done"]),
                                int(data["total"]), int(data["pid"]), file, bool(data.get("said")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("removing the unreadable marker %s: %s", file, exc)
            _remove(file)
            continue
        if add.ended() and not any(os.path.lexists(path) for path in add.paths):
            # Its folders are gone: nothing to go on with, and `ingest` of them was advised all the same.
            # The vectors its stopped file kept go too (a confidential folder deleted after a stop, t60);
            # other stopped adds' stay.
            from pgpt.runtime.documents.chunk_vectors import drop_kept_under

            _remove(file)
            drop_kept_under(settings, add.paths)
            continue
        found.append(add)
    return found


def _age(file: Path) -> float:
    try:
        return file.stat().st_mtime
    except OSError:
        return 0.0


def taken_up(settings: Settings, paths: list[Path], collection: str) -> str:
    """The sentence an add says when it goes on with the same add whose process ended before it
    finished (its marker is this one's), or ''. An ingest run again after a kill said nothing (t66)."""
    mine = marker_file(settings, paths, collection)
    for add in unfinished_adds(settings):
        if add.file == mine and add.ended():
            return f"{add.stopped_at()} (its process ended); going on: the files done are skipped."
    return ""
