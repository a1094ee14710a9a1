"""The Docs panel (F4) and indexed files that are gone from disk: named in the report, marked in the
list, forgotten with Delete or Ctrl+G. It told the user about the CLI's --prune, named none of them
and listed them like any other document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widgets import DataTable, Static

from pgpt.runtime.documents.ingest import ingest
from pgpt.runtime.llm.embeddings import default_embedder
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from pgpt.tui.screens.confirm import Confirm
from test_app import SIZE, wait_until


def _folder(tmp_path: Path, settings: Settings, gone: int) -> Path:
    """A folder of ``gone + 1`` files, indexed, then all but keep.txt deleted."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keep.txt").write_text("The lighthouse keeper rows out on Tuesdays.\n")
    for n in range(gone):
        (docs / f"moved-{n}.txt").write_text(f"Harbour {n} opens at dawn each Monday.\n")
    ingest(settings, [docs], default_embedder(settings))
    for n in range(gone):
        (docs / f"moved-{n}.txt").unlink()
    return docs


async def _panel(pilot: Any, app: ChatApp, *keys: str) -> tuple[DataTable[str], Static]:
    """F4 (then ``keys``) once the documents can be read; the Docs panel's list and report, mounted."""
    await wait_until(pilot, lambda: app.library is not None)
    await pilot.press("f4", *keys)
    await wait_until(pilot, lambda: bool(app.screen.query(DataTable)))
    return app.screen.query_one(DataTable), app.screen.query_one("#doc-report", Static)


def _rows(table: DataTable[str]) -> list[list[str]]:
    """The table's cells as they read on screen (their markup applied)."""
    return [[Text.from_markup(str(cell)).plain for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_adding_a_folder_again_names_its_gone_files_and_the_list_marks_them(settings: Settings,
                                                                                  tmp_path: Path) -> None:
    docs = _folder(tmp_path, settings, gone=7)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        table, report = await _panel(pilot, app, *str(docs), "enter")
        await wait_until(pilot, lambda: not app._ingesting() and "unchanged" in str(report.render()))
        text = str(report.render())
        assert "--prune" not in text  # the CLI's flag: the app has none
        assert ("7 indexed files under these paths are gone but still answer (Ctrl+G on the Docs screen forgets "
                "them)") in " ".join(text.split())
        named = [line.removeprefix("gone ") for line in text.splitlines() if line.startswith("gone ")]
        assert len(named) == 5 and all(Path(p).parent == docs and Path(p).name.startswith("moved-") for p in named)
        assert text.splitlines()[-1] == "… and 2 more gone, marked in the list"
        await wait_until(pilot, lambda: table.row_count == 8)
        rows = _rows(table)  # the gone files first, marked in the added column; the file that is there after them
        assert [row[1] for row in rows] == ["file gone"] * 7 + [rows[-1][1]] and rows[-1][1] != "file gone"
        assert rows[-1][2].endswith("keep.txt")


async def test_delete_forgets_a_gone_file_and_ctrl_g_the_rest_after_asking(settings: Settings,
                                                                           tmp_path: Path) -> None:
    docs = _folder(tmp_path, settings, gone=3)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        table, report = await _panel(pilot, app)
        await wait_until(pilot, lambda: table.row_count == 4)
        assert [row[1] for row in _rows(table)].count("file gone") == 3  # marked before any add
        assert not app.screen.check_action("forget_gone", ())  # but no add has found them gone yet
        await pilot.press("ctrl+g")
        assert not isinstance(app.screen, Confirm)
        await pilot.press(*str(docs), "enter")
        await wait_until(pilot, lambda: not app._ingesting() and "unchanged" in str(report.render()))
        await wait_until(pilot, lambda: "Forget gone" in _footer(app))
        table.focus()
        await pilot.press("home", "delete")  # a gone row: Delete asks, saying the file is gone
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        question = " ".join(str(app.screen.query_one(Static).render()).split())
        assert "(its file is gone)" in question and "adding the file again" not in question
        await pilot.press("y")
        await wait_until(pilot, lambda: table.row_count == 3)
        await pilot.press("ctrl+g")  # the other two, after a question that says how many
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        question = " ".join(str(app.screen.query_one(Static).render()).split())
        assert f"Forget 2 gone files under {docs}?" in question, question
        await pilot.press("n")
        await wait_until(pilot, lambda: not isinstance(app.screen, Confirm))
        assert table.row_count == 3 and len(app.library.store.documents()) == 3
        await pilot.press("ctrl+g", "y")
        await wait_until(pilot, lambda: table.row_count == 1)
        text = " ".join(str(report.render()).split())
        assert text.startswith(f"Forgot 2 gone files under {docs} (2 chunks): moved-") and text.endswith(".txt.")
        assert [Path(d.path).name for d in app.library.store.documents()] == ["keep.txt"]
        assert "Forget gone" not in _footer(app) and "file gone" not in _rows(table)[0][1]


def _footer(app: ChatApp) -> str:
    """The keys the footer shows now."""
    return " ".join(str(binding.description) for _, binding, enabled, _ in app.screen.active_bindings.values()
                    if binding.show and enabled)
