"""An add of documents that the app or a command ended before it finished: the next start of the app
says it once in the chat (the index answered from 70 of 200 files without a word)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from pgpt.runtime.documents.chunk_vectors import kept_path
from pgpt.runtime.documents.unfinished import marker_file, unfinished_adds
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp, Turn
from test_app import SIZE, wait_until


def left_marker(settings: Settings, folder: Path, collection: str = "default") -> None:
    """The marker an add of ``folder`` (made here: a marker of a folder since deleted is dropped) leaves
    when its process dies after 70 of 200 files."""
    folder.mkdir(parents=True, exist_ok=True)
    gone_pid = subprocess.Popen(["true"])  # a process that has ended: its number names none
    gone_pid.wait()
    file = marker_file(settings, [folder], collection)
    file.parent.mkdir(parents=True)
    file.write_text(json.dumps({"paths": [str(folder)], "collection": collection, "done": 70, "total": 200,
                                "pid": gone_pid.pid, "started": 0.0}), encoding="utf-8")


def notices(app: ChatApp) -> list[str]:
    return [" ".join(turn.text.split()) for turn in app.query(Turn) if turn.kind == "notice"]


async def test_the_next_start_says_once_that_an_add_did_not_finish(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "empty", model="no-such-model")
    folder = tmp_path / "reports"
    left_marker(settings, folder)
    said = (f"Adding {folder} stopped after 70 of 200 files (the session ended): add it again to continue (F4: "
            "its path is filled in, Enter).")
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.load_error), timeout=30)  # no model here: its notice comes second
        assert notices(app)[0] == said
        await pilot.press("f4")  # the path the notice names is typed in: it was retyped by hand (t53)
        await wait_until(pilot, lambda: app.screen.query_one("#doc-path", Input).value == str(folder))
    assert [add.said for add in unfinished_adds(settings)] == [True]  # said once, and doctor still names it (t69)
    again = ChatApp(settings)
    async with again.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(again.load_error), timeout=30)
        assert not any("stopped after" in text for text in notices(again))


async def test_an_add_into_another_collection_names_the_command_that_goes_on(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "empty", model="no-such-model")
    folder = tmp_path / "my reports"
    left_marker(settings, folder, "notes")
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.load_error), timeout=30)
        assert notices(app)[0] == (f"Adding {folder} stopped after 70 of 200 files (the session ended): "
                                   f"run pgpt-tui ingest '{folder}' --collection notes to continue.")


def test_the_quit_line_names_the_large_file_that_starts_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The app quit inside a large file: its line said the files done, not that this file (and how
    many of its chunks) were embedded and are kept, as `ingest` says (t53)."""
    from pgpt.runtime.documents.progress import IngestProgress
    from pgpt.runtime.documents.unfinished import remembered
    from pgpt.tui.chat.launch import _say_unfinished_add

    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "empty")
    folder = tmp_path / "manuals"
    inside = IngestProgress(3, 9, str(folder / "big\x1b[31m.pdf"), 120, None, 1200, 4000)
    with remembered(settings, [folder], "default") as progress:  # this process's add, as the app runs it
        progress(inside)
        _say_unfinished_add(settings, inside)  # its vectors were not saved: the add had not stopped in time
        _say_unfinished_add(settings, IngestProgress(3, 9, str(folder / "small.txt"), 120, None))  # between files
        kept_path(settings).parent.mkdir(parents=True, exist_ok=True)
        kept_path(settings).write_bytes(b"saved by the stopped add")
        _say_unfinished_add(settings, inside, time.time() - 1)
    with_file, between, saved = capsys.readouterr().err.splitlines()
    assert with_file == (f"pgpt-tui: Adding {folder} stopped after 3 of 9 files when the app quit; the files done "
                         "are in the index. big.pdf was not finished and is read again then (1,200 of its 4,000 "
                         "chunks were embedded; they are embedded again then). To continue, add it again (F4) or run: "
                         f"pgpt-tui ingest {folder}")
    assert "read again" not in between and between.startswith(f"pgpt-tui: Adding {folder} stopped after 3 of 9")
    assert "(1,200 of its 4,000 chunks were embedded; they are kept, and only the rest is embedded then)" in saved


async def test_quitting_during_a_large_file_keeps_its_embedded_chunks_and_the_marker(settings: Settings,
                                                                                      tmp_path: Path) -> None:
    """The quit line said "1,151 of its 26,454 chunks were embedded; they are kept", and none of them were
    saved: quitting ended the process before the add's own stop kept them, as Ctrl+X does (t67)."""
    import numpy as np

    from pgpt.runtime.documents.chunk_vectors import EMBED_BATCH
    from pgpt.tui.chat.launch import QUIT_ADD_WAIT_S, wait_for_add_stop

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "log.txt").write_text("".join(f"Entry {i}: the harbour crane number {i} lifted {i * 3} tonnes of grain "
                                          "before the morning tide turned.\n\n" for i in range(5000)))
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None and app.library is not None)
        embedder, calls, release = app.library.embedder, [], threading.Event()
        real_embed = embedder.embed

        def embed_one_batch_then_wait(texts, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            if len(calls) == 2:  # the second batch waits for the quit
                release.wait(120)
            return real_embed(texts, *args, **kwargs)

        embedder.embed = embed_one_batch_then_wait
        await pilot.press("ctrl+o", *str(docs), "enter")
        await wait_until(pilot, lambda: len(calls) >= 2, timeout=120)
        threading.Timer(1.0, release.set).start()  # the batch ends after the quit's stop was asked for
        app.exit()  # Ctrl+Q, y: the app closes, its screens with it (the stop asked for after that never came, t69)
    asked_at = wait_for_add_stop(app, QUIT_ADD_WAIT_S * 6)  # as run_app does once the app has quit (slow VMs: more)
    assert 0 < asked_at <= time.time() and kept_path(settings).stat().st_mtime >= asked_at
    with np.load(kept_path(settings), allow_pickle=False) as kept:
        assert len(kept["keys"]) == 2 * EMBED_BATCH  # both batches' vectors, kept for the next run
    assert [add.pid for add in unfinished_adds(settings)] == [os.getpid()]  # the add did not finish: said next time


def test_quitting_removes_the_exports_this_process_was_writing(tmp_path: Path) -> None:
    """Quitting does not wait for an F3 export's thread, so its own cleanup never ran: 631 MB were
    left while the app said "nothing of it was kept" (t62). Another process's folders stay."""
    import os

    from pgpt.tui.chat.launch import remove_own_exports

    cache = tmp_path / "models"
    mine, other = cache / f".tiny-int8.tmp-{os.getpid()}", cache / ".tiny-int8.tmp-4194304"
    for folder in (mine, other):
        (folder / "out").mkdir(parents=True)
        (folder / "out" / "model.onnx.data").write_bytes(b"0" * 1024)
    remove_own_exports(Settings(home=tmp_path / "home", model_cache=cache))
    assert not mine.exists() and (other / "out" / "model.onnx.data").is_file()


def test_an_ingest_run_again_after_its_process_died_says_it_goes_on(settings: Settings, tmp_path: Path) -> None:
    """`ingest` run again after a kill -9 of the same add said nothing of the earlier stop (t66)."""
    from support import tui_cli

    folder = tmp_path / "reports"
    left_marker(settings, folder)
    (folder / "q3.txt").write_text("Revenue in the third quarter was 4.2 million.\n")
    result = tui_cli(settings, "ingest", str(folder))
    assert result.returncode == 0, result.stderr
    assert (f"Adding {folder} stopped after 70 of 200 files (its process ended); going on: the files done are "
            "skipped.") in result.stderr
    assert unfinished_adds(settings) == []  # this add finished: its marker went with it
    again = tui_cli(settings, "ingest", str(folder))
    assert "going on" not in again.stderr
