"""The Docs panel (F4) as a user types in it: a path in quotes, and the list's cursor after Delete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from test_app import SIZE, wait_until


async def open_docs(app: ChatApp, pilot: Pilot, rows: int) -> DataTable:
    """F4 once the index is open, then wait until the list shows ``rows`` documents."""
    await wait_until(pilot, lambda: app.library is not None)
    await pilot.press("f4")
    table = app.screen.query_one(DataTable)
    await wait_until(pilot, lambda: table.row_count == rows)
    return table


async def test_a_path_in_quotes_is_added_without_them(settings: Settings, tmp_path: Path) -> None:
    """'/work/t40/docs/minutes', quoted as a file manager's copy-as-path gives it, was "No such file or folder"."""
    folder = tmp_path / "meeting minutes"  # a space inside the quotes
    folder.mkdir()
    (folder / "june.txt").write_text("The June meeting moved the regatta to Saturday.\n")
    (tmp_path / "office.txt").write_text("The harbour office opens at eight.\n")
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.library is not None)
        await pilot.press("f4")
        table, report = app.screen.query_one(DataTable), app.screen.query_one("#doc-report", Static)
        for added, typed in enumerate((f"'{folder}'", f' "{tmp_path / "office.txt"}" '), start=1):
            await pilot.press("ctrl+u", *typed, "enter")
            assert not str(report.render()).startswith("No such file"), typed
            await wait_until(pilot, lambda: not app._ingesting() and table.row_count == added)
            assert "1 added" in str(report.render())
        await pilot.press("ctrl+u", *f"'{tmp_path / 'nowhere'}'", "enter")  # a typo in quotes: named without them
        assert str(report.render()).startswith(f"No such file or folder: {tmp_path / 'nowhere'}. Nothing")


async def test_forgetting_a_document_keeps_the_cursor_at_its_row(settings: Settings, tmp_path: Path) -> None:
    """The cursor went back to the top row after each Delete, so forgetting neighbours meant scrolling back."""
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.llm.embeddings import default_embedder

    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(4):
        (docs / f"quay-{n}.txt").write_text(f"Quay {n} takes ships of {n + 2}00 tonnes.\n")
    ingest(settings, [docs], default_embedder(settings))
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        table = await open_docs(app, pilot, 4)
        keys = [table.coordinate_to_cell_key((row, 0)).row_key.value for row in range(4)]
        table.focus()
        await pilot.press("down", "delete", "y")  # the second row
        await wait_until(pilot, lambda: table.row_count == 3)
        assert table.cursor_row == 1  # now on the row that was below it
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == keys[2]
        await pilot.press("end", "delete", "y")  # the last row: the cursor stays on the new last one
        await wait_until(pilot, lambda: table.row_count == 2)
        assert table.cursor_row == 1
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == keys[2]


async def test_the_list_opened_while_the_model_loads_says_so_and_fills_in_aligned(settings: Settings,
                                                                                 tmp_path: Path) -> None:
    """F4 opened ~7 s after the start showed only the header, no rows and no "loading…"; on the next
    F4 the rows came, under a header left at the empty table's widths ("file" over the dates)."""
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.llm.embeddings import default_embedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "harbour.txt").write_text("The harbour office opens at eight.\n")
    ingest(settings, [docs], default_embedder(settings))
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")  # most often while the model loads; a fast machine may have loaded it
        await wait_until(pilot, lambda: bool(app.screen.query(DataTable)))
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 1 or app.library is not None)
        if app.library is None:  # a fast machine may have loaded it already
            assert str(table.get_row_at(0)[2]).startswith("loading…")
        # filled in while open, once the model (and with it the index) is loaded
        await wait_until(pilot, lambda: table.row_count == 1 and table.get_row_at(0)[2].endswith("harbour.txt"))
        await pilot.pause(0.3)
        assert [c.content_width for c in table.ordered_columns][:2] == [6, 10]  # "chunks", a date


async def test_a_file_in_two_collections_is_two_rows_and_one_of_them_can_be_forgotten(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """F4 ended the app with Textual's DuplicateKey traceback once a file was indexed in a second
    collection (`ingest --collection ops`): both rows had the file's path as their key. And the
    forgetting said nothing while it ran: 3-10 s of silence in a large index (t64)."""
    import threading

    from pgpt.runtime.documents import ingest as ingest_module
    from pgpt.runtime.documents.ingest import ingest, open_store

    release, forget = threading.Event(), ingest_module.forget_document
    monkeypatch.setattr(ingest_module, "forget_document", lambda *a, **k: (release.wait(30), forget(*a, **k))[1])
    from pgpt.runtime.llm.embeddings import default_embedder

    page = tmp_path / "security.md"
    page.write_text("# Security\n\nBadges are renewed every [two] years at the front desk.\n")
    embedder = default_embedder(settings)
    ingest(settings, [page], embedder)
    ingest(settings, [page], embedder, collection="ops")
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        table = await open_docs(app, pilot, 2)
        shown = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        rows = re.findall(r"\b1\s+\d{4}-\d\d-\d\d\s+\S*security\.md (\[\w+\])\s*$", shown, re.M)
        assert sorted(rows) == ["[default]", "[ops]"], shown
        table.focus()
        row = next(r for r in range(2) if str(table.get_row_at(r)[2]).endswith("[ops]"))
        table.move_cursor(row=row)
        await pilot.press("delete")
        assert "security.md [ops]?" in str(app.screen.query_one(Static).render())  # the question names it
        await pilot.press("y")
        await wait_until(pilot, lambda: str(app.screen.query_one("#doc-report", Static).render()).startswith(
            f"Forgetting {page} [ops]…"))
        release.set()
        await wait_until(pilot, lambda: table.row_count == 1)
        report = str(app.screen.query_one("#doc-report", Static).render())
        assert report.startswith(f"Forgot {page} [ops] (1 chunk)."), report
        assert "\\[" not in report
    left = open_store(settings, embedder).documents()
    assert [(d.path, d.collection) for d in left] == [(str(page), "default")]


async def test_the_panel_reopens_on_the_path_field_without_an_old_error(settings: Settings, tmp_path: Path) -> None:
    """Reopened after Tab to the list, typed paths went to the list; "Ingestion already running (pid
    N)" from a Delete during another process's ingest stayed under the list 20 minutes after it ended."""
    from textual.widgets import Input

    from pgpt.runtime.documents.index_folder import writer_lock
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.llm.embeddings import default_embedder

    (tmp_path / "quay.txt").write_text("Quay 4 takes ships of 600 tonnes.\n")
    ingest(settings, [tmp_path / "quay.txt"], default_embedder(settings))
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        table = await open_docs(app, pilot, 1)
        report = app.screen.query_one("#doc-report", Static)
        table.focus()
        with writer_lock(settings):  # another ingest holds the index
            await pilot.press("delete", "y")
            await wait_until(pilot, lambda: "already running" in str(report.render()))
        await pilot.press("escape", "f4")
        await wait_until(pilot, lambda: "already running" not in str(report.render()))
        assert isinstance(app.screen.focused, Input) and app.screen.focused.id == "doc-path"
        assert table.row_count == 1  # nothing was forgotten


async def test_typing_part_of_a_name_in_the_list_finds_the_file(settings: Settings, tmp_path: Path) -> None:
    """With thousands of rows there was no way to find one file but scrolling."""
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.llm.embeddings import default_embedder

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("harbour-fees.txt", "ferry-times.txt", "harbour-map.txt", "crew-list.txt"):
        (docs / name).write_text(f"The {name[:-4]} page of the port office.\n")
    ingest(settings, [docs], default_embedder(settings))
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        table = await open_docs(app, pilot, 4)
        table.focus()

        def current() -> str:
            return str(table.get_row_at(table.cursor_row)[2])

        await pilot.press(*"ferry")
        assert current().endswith("ferry-times.txt")
        await pilot.pause(1.6)  # a pause: the next letters are a new name
        await pilot.press(*"harb")
        first = current()
        assert "harbour-" in first
        await pilot.pause(1.6)
        await pilot.press(*"harb")  # again: the next row that holds it
        assert "harbour-" in current() and current() != first
        await pilot.press("delete")  # the table's own keys still work
        assert "Forget" in str(app.screen.query_one(Static).render())


def test_the_newest_add_comes_first_and_each_add_s_files_by_path() -> None:
    """One add's files were listed newest first, so a folder read from Z to A (t84)."""
    from pgpt.runtime.documents.records import DocumentRecord
    from pgpt.tui.screens.documents.table import listing_order

    def record(path: str, at: float) -> DocumentRecord:
        return DocumentRecord(path, "default", path, "", 1, at)

    first_add = [record(f"/docs/{name}", 100.0 + n / 10) for n, name in enumerate(("a.md", "m.md", "z.md"))]
    later = record("/notes/b.md", 500.0)
    gone = record("/docs/c.md", 100.2)
    order = listing_order([*first_add, later, gone], {"/docs/c.md"})
    assert [Path(r.path).name for r in order] == ["c.md", "b.md", "a.md", "m.md", "z.md"]
