"""The marker of an add of documents: kept while it runs, gone however it ends in its own process, left
behind only by a process that died in it (what the app's next start says)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgpt.runtime.documents.progress import IngestProgress
from pgpt.runtime.documents.unfinished import marker_file, markers_dir, remembered, unfinished_adds
from pgpt.runtime.errors import Cancelled
from pgpt.runtime.settings import Settings


def ticks(total: int) -> list[IngestProgress]:
    """What ingest sends: each file's start (twice within a large one), then all done."""
    return [IngestProgress(done, total, f"f{done}.txt", done * 3, None, chunk, 2)
            for done in range(total) for chunk in (0, 1)] + [IngestProgress(total, total, "", total * 3, 0.0)]


def test_the_marker_follows_the_files_done_and_goes_when_the_add_ends(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "cache")
    seen: list[tuple[int, dict[str, object]]] = []
    shown: list[IngestProgress] = []
    with remembered(settings, [tmp_path / "docs"], "default", shown.append) as progress:
        for tick in ticks(3):
            progress(tick)
            [file] = markers_dir(settings).glob("*.json") if tick.done < 3 else [None]
            if file is not None:
                seen.append((tick.done, json.loads(file.read_text(encoding="utf-8"))))
    assert shown == ticks(3)  # the caller's progress gets every tick
    assert [(done, record["done"], record["total"]) for done, record in seen] == [(0, 0, 3), (0, 0, 3), (1, 1, 3),
                                                                                 (1, 1, 3), (2, 2, 3), (2, 2, 3)]
    assert seen[0][1]["paths"] == [str((tmp_path / "docs").resolve())] and seen[0][1]["pid"] == os.getpid()
    assert not list(markers_dir(settings).glob("*"))  # finished: no marker, no temporary


@pytest.mark.parametrize("error", [Cancelled("Ingestion stopped after 1 of 3 files"), KeyboardInterrupt(),
                                   OSError("disk full")])
def test_an_add_stopped_with_its_own_message_leaves_no_marker(tmp_path: Path, error: BaseException) -> None:
    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "cache")
    with pytest.raises(type(error)):
        with remembered(settings, [tmp_path / "docs"], "default") as progress:
            progress(ticks(3)[2])
            assert len(list(markers_dir(settings).glob("*.json"))) == 1
            raise error
    assert not list(markers_dir(settings).glob("*.json"))


def test_an_add_stopped_by_sigterm_keeps_its_marker(tmp_path: Path) -> None:
    """A timeout in cron or `systemctl stop` said "stopped after 1 of 5 files" to a log nobody reads,
    and then doctor and the app's next start said "none unfinished" (t53)."""
    from pgpt.runtime.signals import Terminated

    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "cache")
    with pytest.raises(Terminated):
        with remembered(settings, [tmp_path / "docs"], "default") as progress:
            progress(ticks(3)[2])
            raise Terminated()
    [add] = unfinished_adds(settings)
    assert (add.done, add.total) == (1, 3)


def test_a_process_that_dies_in_an_add_leaves_its_marker_and_the_same_folder_named_otherwise_finds_it(
        tmp_path: Path) -> None:
    """An SSH drop or a kill: the process ends in the middle; the marker says how far it got. The
    CLI's `ingest docs` (relative) and the app's absolute path are the same add."""
    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "cache")
    (tmp_path / "docs").mkdir()
    child = f"""
import os
from pathlib import Path
from pgpt.runtime.documents.progress import IngestProgress
from pgpt.runtime.documents.unfinished import remembered
from pgpt.runtime.settings import Settings
settings = Settings(home=Path({str(settings.home)!r}), model_cache=Path({str(settings.model_cache)!r}))
with remembered(settings, [Path("docs")], "default") as progress:
    for done in range(71):
        progress(IngestProgress(done, 200, f"f{{done}}.txt", done, None))
    os._exit(129)  # ended from outside: no clean-up runs
"""
    died = subprocess.run([sys.executable, "-c", child], cwd=tmp_path, env=dict(os.environ), timeout=60)
    assert died.returncode == 129
    [add] = unfinished_adds(settings)
    assert add.ended() and (add.done, add.total, add.collection) == (70, 200, "default")
    assert add.paths == [str((tmp_path / "docs").resolve())]
    assert add.stopped_at() == f"Adding {tmp_path.resolve() / 'docs'} stopped after 70 of 200 files"
    assert add.file == marker_file(settings, [tmp_path.resolve() / "docs"], "default")
    assert marker_file(settings, [tmp_path.resolve() / "docs"], "other") != add.file
    # `doctor` says it too (only the app's next start did)
    from pgpt.runtime.doctor import _adds_state

    assert _adds_state(settings) == (f"{add.stopped_at()} (its process ended); to continue, run: pgpt-tui ingest "
                                     f"{(tmp_path / 'docs').resolve()}")
    with remembered(settings, [tmp_path / "docs"], "default") as progress:  # the add again, to its end
        progress(IngestProgress(0, 200, "f0.txt", 0, None))
    assert unfinished_adds(settings) == []


def test_a_running_add_is_not_ended_and_a_damaged_marker_is_dropped(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "cache")
    with remembered(settings, [tmp_path / "docs"], "notes") as progress:
        progress(IngestProgress(1, 5, "a.txt", 1, None))
        (markers_dir(settings) / "0123456789abcdef.json").write_text("{not json", encoding="utf-8")
        [add] = unfinished_adds(settings)  # the damaged one is removed, logged
        assert not add.ended()  # this process's own add runs
        assert add.command() == f"pgpt-tui ingest {(tmp_path / 'docs').resolve()} --collection notes"
        from pgpt.runtime.doctor import _adds_state

        assert _adds_state(settings) == f"running (pid {os.getpid()}): adding {(tmp_path / 'docs').resolve()}, 1 of 5 files"
        assert sorted(p.name for p in markers_dir(settings).iterdir()) == [add.file.name]


def test_the_default_collection_is_ingests() -> None:
    from pgpt.runtime.documents import ingest, unfinished

    assert unfinished.DEFAULT_COLLECTION == ingest.DEFAULT_COLLECTION


def test_an_add_refused_before_it_started_leaves_the_running_ones_marker(tmp_path: Path) -> None:
    """The same folder added from the CLI while the app adds it: the CLI's is refused (the writer
    lock) before its first file, and must not take away the running add's marker."""
    from pgpt.runtime.errors import IngestLockedError

    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "cache")
    with remembered(settings, [tmp_path / "docs"], "default") as progress:
        progress(IngestProgress(3, 9, "c.txt", 3, None))
        with pytest.raises(IngestLockedError):
            with remembered(settings, [tmp_path / "docs"], "default"):
                raise IngestLockedError("Another ingestion is running.")
        [running] = unfinished_adds(settings)
        assert running.done == 3


def test_a_second_writer_is_told_how_far_the_first_ones_add_is(tmp_path: Path) -> None:
    """"Wait for it to finish" gave no way to know for how long (t53): the refusal names the add and
    its files done, from the running add's marker."""
    from pgpt.runtime.documents.index_folder import writer_lock
    from pgpt.runtime.errors import IngestLockedError

    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "cache")
    docs = tmp_path / "docs"
    with remembered(settings, [docs], "default", lambda tick: None) as progress, writer_lock(settings):
        progress(IngestProgress(416, 1717, "a.txt", 900, 60.0))
        holder = subprocess.run([sys.executable, "-c", "from pgpt.runtime.documents.index_folder import writer_lock\n"
                                 "from pgpt.runtime.settings import Settings\nfrom pathlib import Path\n"
                                 f"with writer_lock(Settings(home=Path({str(settings.home)!r}), "
                                 f"model_cache=Path({str(settings.model_cache)!r}))): pass"],
                                capture_output=True, text=True, timeout=120)
        assert f"pid {os.getpid()}: adding {docs.resolve()}, 416 of 1717 files) is writing" in holder.stderr, \
            holder.stderr
        with pytest.raises(IngestLockedError):  # the same process asking again: refused too (flock per open)
            with writer_lock(settings):
                pass
