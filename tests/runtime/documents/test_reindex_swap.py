"""`ingest --reindex` builds the new index beside the old one and switches at the end (probe rows 1.4, 2.3).

Before, the table was dropped first: a kill left 11 of 30 documents, and searches during a
re-index ranked the wrong files first. Now readers see the old, complete index until the
switch, a kill leaves it in use, and the next writer drops the unfinished table.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgpt.runtime.documents.ingest import ingest, open_store
from pgpt.runtime.documents.retrieval import search
from pgpt.runtime.documents.index_folder import ACTIVE, TABLE, index_dir
from pgpt.runtime.settings import Settings
from support import cli_env

FILES = 40


def _corpus(root: Path) -> None:
    root.mkdir()
    for i in range(FILES):
        words = " ".join(f"Document {i} paragraph {j} is about topic {i * 7 + j} in detail." for j in range(30))
        (root / f"doc{i:03d}.txt").write_text(f"{words}\n\nThe codeword of document {i} is UNIQ{i:03d}X.\n\n{words}")


def _tables(settings: Settings) -> set[str]:
    return {p.name.removesuffix(".lance") for p in index_dir(settings).glob(f"{TABLE}*.lance")}


def _whole(settings: Settings, embedder, corpus: Path, codes: tuple[int, ...] = (0, 7, FILES - 1)) -> None:  # type: ignore[no-untyped-def]
    store = open_store(settings, embedder)
    assert len(store.documents()) == FILES
    for i in codes:
        assert search(store, embedder, f"UNIQ{i:03d}X", k=1)[0].source == str(corpus / f"doc{i:03d}.txt")


def test_a_killed_reindex_leaves_the_old_index_whole_and_readers_never_see_half(
        settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Probe 1.4 (kill -9 of `ingest --reindex` left 11 of 30 documents) and 2.3 (searches during a
    re-index ranked the wrong files first)."""
    corpus = tmp_path / "corpus"
    _corpus(corpus)
    ingest(settings, [corpus], embedder)
    first_table = _tables(settings)
    process = subprocess.Popen([sys.executable, "-m", "pgpt.tui.cli.main", "ingest", "--reindex", str(corpus)],
                               env=cli_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = open_store(settings, embedder)  # a reader open all along, like the app
    searches = 0
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            hit = search(store, embedder, "UNIQ007X", k=1)[0]
            assert hit.source == str(corpus / "doc007.txt") and len(store.documents()) == FILES
            searches += 1
            building = [t for t in _tables(settings) - first_table]
            if building and any((index_dir(settings) / f"{building[0]}.lance" / "data").glob("*")) and searches >= 2:
                break  # the new table holds documents: kill the re-index in the middle
    finally:
        process.kill()
        process.wait()
    assert searches >= 2 and not (index_dir(settings) / ACTIVE).exists()  # never switched
    assert len(_tables(settings)) == 2  # the unfinished table is still there
    _whole(settings, embedder, corpus)  # the old index, complete
    again = ingest(settings, [corpus], embedder)
    assert len(again.unchanged) == FILES and _tables(settings) == first_table  # the next writer dropped it


def test_a_finished_reindex_switches_open_readers_to_the_new_index(settings: Settings, embedder,  # type: ignore[no-untyped-def]
                                                                   tmp_path: Path) -> None:
    """Probe 2.3, the other half: at the switch, a reader that stayed open (the app) follows to the
    new table, and its version (which keys cached answers) changes."""
    corpus = tmp_path / "corpus"
    _corpus(corpus)
    ingest(settings, [corpus], embedder)
    reader = open_store(settings, embedder)
    before = reader.version
    (corpus / "doc000.txt").write_text("Rewritten: the codeword of document zero is NEWWORD0X.")
    report = ingest(settings, [corpus], embedder, reindex=True)
    assert len(report.added) == FILES
    (name,) = _tables(settings)
    assert name != TABLE and name in (index_dir(settings) / ACTIVE).read_text()  # the old table is gone
    assert search(reader, embedder, "NEWWORD0X", k=1)[0].source == str(corpus / "doc000.txt")
    assert reader.name == name and reader.version != before  # answer caches keyed on it are void
    _whole(settings, embedder, corpus, codes=(7, FILES - 1))
    update = ingest(settings, [corpus], embedder)  # later ingests write the new table
    assert len(update.unchanged) == FILES


def test_a_reindex_of_one_folder_keeps_every_other_folder_and_collection(
        settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A tester's `ingest FOLDER --reindex` dropped the 20 documents of another folder and collection,
    and said "0 removed"."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "one.txt").write_text("The codeword of file one is ALPHA1X.")
    (second / "two.txt").write_text("The codeword of file two is BRAVO2X.")
    (second / "three.txt").write_text("The codeword of file three is CHARLIE3X.")
    ingest(settings, [first], embedder)
    ingest(settings, [second], embedder, collection="notes")
    (second / "three.txt").unlink()
    report = ingest(settings, [first], embedder, reindex=True)
    assert sorted(Path(p).name for p in report.added) == ["one.txt", "two.txt"]
    assert [Path(p).name for p in report.removed] == ["three.txt"]  # gone: it cannot be read again
    store = open_store(settings, embedder)
    assert {(Path(d.path).name, d.collection) for d in store.documents()} == {("one.txt", "default"),
                                                                          ("two.txt", "notes")}
    assert search(store, embedder, "BRAVO2X", k=1, collection="notes")[0].source == str(second / "two.txt")


def test_doctor_tells_a_running_reindex_from_an_unfinished_one(settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """During a live --reindex doctor said "1 unfinished re-index table(s) (the next ingest drops them)"."""
    import os

    from pgpt.runtime.documents.index_folder import index_state, writer_lock

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.txt").write_text("The codeword is ALPHA1X.")
    ingest(settings, [corpus], embedder)
    with writer_lock(settings):
        open_store(settings, embedder, rebuild=True)  # its new table, as a re-index has it mid-way
        assert f"a re-index or ingestion is running (pid {os.getpid()})" in index_state(settings)
    assert "1 unfinished re-index table(s) (the next ingest drops them)" in index_state(settings)


def test_a_cancelled_reindex_keeps_the_index_in_use(settings: Settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Probe 1.4 with a cancel (Ctrl+X in the app) instead of a kill."""
    import threading

    from pgpt.runtime.errors import Cancelled

    corpus = tmp_path / "corpus"
    _corpus(corpus)
    ingest(settings, [corpus], embedder)
    tables = _tables(settings)
    cancel = threading.Event()

    def stop_at_five(tick) -> None:  # type: ignore[no-untyped-def]
        if tick.done == 5:
            cancel.set()

    with pytest.raises(Cancelled, match="index in use is unchanged"):
        ingest(settings, [corpus], embedder, reindex=True, progress=stop_at_five, cancel=cancel)
    assert _tables(settings) == tables
    _whole(settings, embedder, corpus)


def test_a_second_writer_is_told_which_program_holds_the_index(settings: Settings,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """"Another ingestion (pid 6227)" sent a user looking for an `ingest` process: it was pgpt-serve
    indexing an upload."""
    import os

    from pgpt.runtime.documents.index_folder import writer_lock
    from pgpt.runtime.errors import IngestLockedError

    monkeypatch.setattr(sys, "argv", ["/opt/pgpt/.venv/bin/pgpt-serve", "--port", "8642"])
    with writer_lock(settings):  # flock: a second open of the file conflicts, also in one process
        with pytest.raises(IngestLockedError, match=rf"Another ingestion \(pgpt-serve, pid {os.getpid()}\)"):
            with writer_lock(settings):
                pass
