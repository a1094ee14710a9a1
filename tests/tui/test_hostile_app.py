"""The app with hostile folders and a question typed early (probe rows 3.3 in the app, and 6.1)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from hostile_files import hostile_folder
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from pgpt.tui.screens.documents.widgets import VisibleTree
from test_app import SIZE, turns, wait_until


async def test_the_docs_panel_adds_a_hostile_folder_and_lists_each_bad_file(settings: Settings,
                                                                           tmp_path: Path) -> None:
    """Probe 3.3 in the app: "Adding documents failed. Unexpected error: XMLSyntaxError ... a bug in
    pgpt", with only the first good file added. Now every good file is in and every bad one listed."""
    reasons = hostile_folder(tmp_path / "mixed")
    (tmp_path / "mixed" / "new\nline.txt").write_text("A file whose name holds a newline.\n")
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.library is not None)
        await pilot.press("f4")
        screen = app.screen
        await pilot.press(*str(tmp_path / "mixed"), "enter")
        await wait_until(pilot, lambda: not app._ingesting(), timeout=300)
        report = str(screen.query_one("#doc-report", Static).render())
        assert "6 added" in report and "9 skipped" in report and "failed." not in report
        for name, word in reasons.items():
            shown = name.encode("utf-8", "replace").decode() if "\udcff" not in name else "m_bad"
            assert shown in report and word in report, name
        assert "Unexpected error" not in report and "\x1b" not in report
        # the app hears of the end through its own message, just after the Docs screen does
        await wait_until(pilot, lambda: app.library is not None and app.library.documents == 6)
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 6)
        paths = [str(table.get_row_at(row)[2]) for row in range(table.row_count)]
        assert any(p.endswith("new line.txt") for p in paths), paths  # it read "…/mixed/new", cut there
        # the folder tree shows names as the list does: "report\u202efdp.exe" read "reportexe.pdf" (t47)
        tree = screen.query_one(VisibleTree)
        assert tree.process_label("report\u202efdp.exe").plain == "reportfdp.exe"
        assert tree.process_label("[b]pay\u200broll[/b]").plain == "[b]payroll[/b]"  # shown, not run


async def test_a_question_typed_while_the_model_loads_is_answered_from_the_documents(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe 6.1: the app showed Chat mode while loading and answered the early question without the
    documents (no sources), although it opened in Documents mode once loaded."""
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.llm import chat
    from pgpt.runtime.llm.embeddings import default_embedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "doc07.txt").write_text("The secret codeword of document 7 is UNIQ007X.\n")
    ingest(settings, [docs], default_embedder(settings))
    loading = threading.Event()
    release = threading.Event()

    class SlowToLoad(chat.ChatEngine):  # the real engine, held until the question is typed
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            loading.set()
            release.wait(60)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(chat, "ChatEngine", SlowToLoad)
    app = ChatApp(settings, SamplingOptions(max_new_tokens=24))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, loading.is_set)
        assert app.engine is None and app.mode == "docs"  # the mode it will answer in, shown at once
        assert "documents" in app.query_one("#prompt", Input).placeholder
        await pilot.press(*"What is the secret codeword of document 7?", "enter")
        release.set()
        # a documents answer ends with its sources (or, when not found, the closest passages)
        await wait_until(pilot, lambda: not app.answering and turns(app)[-1].kind in ("sources", "closest"),
                         timeout=180)
        question, answer, *details = turns(app)
        assert answer.kind == "assistant" and details and all(t.kind in ("quotes", "sources", "closest") for t in details)
        assert "doc07.txt" in details[-1].text
