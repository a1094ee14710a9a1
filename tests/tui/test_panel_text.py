"""Text fitted to the panels' widths: wrapped lines under their column or indent, progress lines cut by
whole fields, a list's items and a table's rows kept apart, driven by Pilot."""

from __future__ import annotations

from textual.widgets import Static

from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from pgpt.tui.chat.widgets import ChatLog
from test_app import SIZE, wait_until


async def test_the_keys_page_wraps_a_description_under_its_column(settings: Settings) -> None:
    """t54: in a narrow pane the F1 page's wrapped descriptions restarted at column 0, under the keys."""
    from pgpt.tui.screens.keys_help import KeysHelp

    app = ChatApp(settings)
    async with app.run_test(size=(44, 40)) as pilot:
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, KeysHelp))
        await pilot.pause()
        lines = [strip.text for strip in app.screen._compositor.render_strips()]
        first = next(n for n, line in enumerate(lines) if "Ctrl+Y" in line)
        column = lines[first].index("copy the last")
        assert "(OSC 52" not in lines[first]  # it wraps at 44 columns
        assert lines[first + 1][column:].startswith("or after PgUp"), lines[first:first + 3]
        assert not lines[first + 1][:column].strip("█ ")  # nothing under the keys


async def test_a_passage_wraps_under_its_indent_and_again_when_the_pane_widens(settings: Settings) -> None:
    """t54: the closest passages' wrapped lines restarted at column 0, under their indented first line."""
    sentence = "Its keeper in 1920 was Edda Lund, who kept the light burning through the great storm of that winter."
    passage = {"source": "/docs/lighthouse.md", "page": 0, "text": sentence, "sentence": sentence,
               "also_in": ["/docs/copies/lighthouse (copy).md"]}
    app = ChatApp(settings)
    async with app.run_test(size=(50, 30)) as pilot:
        log = app.query_one(ChatLog)
        log.add_details({"quotes": [], "closest": [passage], "sources": []})
        log.add_details({"quotes": [{"source": 1, "file": "/docs/lighthouse.md", "page": 0, "sentence": sentence}],
                         "closest": [], "sources": [passage]})
        await pilot.pause()
        await pilot.pause()

        def passage_rows() -> list[str]:
            rows = [strip.text.rstrip(" ▁▎▊█") for strip in app.screen._compositor.render_strips()]
            first = next(n for n, row in enumerate(rows) if "Its keeper" in row)
            last = next(n for n, row in enumerate(rows) if "winter." in row)
            return rows[first:last + 1]

        rows = passage_rows()
        column = rows[0].index("Its keeper")
        screen = [strip.text for strip in app.screen._compositor.render_strips()]
        head = next(n for n, row in enumerate(screen) if "[1] /docs/lighthouse.md" in row)  # its file's line
        assert screen[head + 1].index("lighthouse (copy)") == screen[head].index("/docs"), screen[head:head + 2]
        quote = next(n for n, row in enumerate(screen) if "[1] /docs/lighthouse.md: " in row)  # the quote's line
        assert screen[quote + 1][:screen[quote].index("/docs")].strip(" █▊▎") == "", screen[quote:quote + 2]
        assert len(rows) > 2 and all(row[column:column + 1].strip() and not row[:column].strip(" █▊▎") for row in rows), rows
        await pilot.resize_terminal(90, 30)
        await pilot.pause()
        await pilot.pause()
        assert len(passage_rows()) < len(rows)  # wrapped again at the new width
        closest = [t for t in log.query("Turn") if t.kind == "closest"][0]
        assert "\n    Its keeper in 1920 was Edda Lund, who kept" in closest.text  # copied as before: one line


async def test_the_docs_progress_line_is_cut_with_an_ellipsis_not_a_dangling_dot(settings: Settings) -> None:
    """At 80 columns the line wrapped after the file's "·" and its second row was hidden: "… 65 chunks ·"."""
    from pgpt.runtime.documents.progress import IngestProgress
    from pgpt.tui.chat.messages import IngestTick

    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        screen = app.screen
        tick = IngestProgress(73, 401, "/tmp/corpus/a-file-with-a-rather-long-name-0073.txt", 65, 75.0)
        screen.post_message(IngestTick(tick))
        text = screen.query_one("#doc-progress-text", Static)
        await wait_until(pilot, lambda: "73/401" in str(text.render()))
        await pilot.pause()
        row = "".join(s.text for s in screen._compositor.render_strips()[text.region.y:text.region.y + 1])
        shown = row[text.region.x:text.region.right].rstrip()
        # 8 columns are left for the name: it goes whole (a name of 10 or more is cut with "…")
        assert shown == "ETA 75 s · 73/401 files · 65 chunks", shown


async def test_narrow_progress_lines_drop_whole_fields_from_their_end(settings: Settings) -> None:
    """At 60x15 F4's line ended "ETA 7 s · 62/300 files · …" and the chat's read "adding documents
    14… · ETA 5 s · 146 chunks": the file name goes first, then the chunks, then the ETA, and the
    files count stays whole."""
    from pgpt.runtime.documents.progress import IngestProgress
    from pgpt.tui.chat.messages import IngestTick
    from pgpt.tui.chat.widgets import fit_fields

    app = ChatApp(settings)
    async with app.run_test(size=(60, 15)) as pilot:
        # the model's "loaded in 3.2 s" replaced the line when it loaded after the tick (a loaded CI machine)
        await wait_until(pilot, lambda: app.engine is not None, timeout=60)
        await pilot.press("f4")
        screen = app.screen
        await pilot.pause()
        tick = IngestProgress(146, 300, "/tmp/corpus/report-with-a-fairly-long-file-name-98.txt", 146, 7.0)
        screen.post_message(IngestTick(tick))
        text = screen.query_one("#doc-progress-text", Static)
        await wait_until(pilot, lambda: "146/300" in str(text.render()))
        assert str(text.render()) == "ETA 7 s · 146/300 files"
        status = app._chat.query_one("#status", Static)
        assert str(status.render()) == "adding documents 146/300 · ETA 7 s · Ctrl+X stops"
    fields = ["ETA 5 s", "62/300 files", "146 chunks", "notes.txt"]
    assert fit_fields(fields, 47, (3, 2, 0), cut=3) == "ETA 5 s · 62/300 files · 146 chunks · notes.txt"
    assert fit_fields(fields, 12, (3, 2, 0), cut=3) == "62/300 files"  # all but the count gone
    assert fit_fields([*fields[:3], "a-fairly-long-name.txt"], 50, (3, 2, 0), cut=3) == (
        "ETA 5 s · 62/300 files · 146 chunks · a-fairly-lo…")


def test_the_sources_panel_keeps_a_lists_items_and_a_tables_rows_apart() -> None:
    """The sources under an answer flattened a list ("- life jackets counted - radio tested") and a
    table's rows onto one line; terminal controls never reach the panel."""
    from pgpt.tui.chat.library import describe_sources

    shown = describe_sources([
        {"source": "notes.txt", "text": "The checklist has these items:\n- life jackets counted\n- radio tested\x1b[31m"},
        {"source": "hours.html", "page": 2, "text": "Day | Opens\nMonday | 07:00\nFriday | 17:30"},
    ])
    assert shown.splitlines() == ["[1] notes.txt", "    The checklist has these items:", "    - life jackets counted",
                                  "    - radio tested", "[2] hours.html, page 2", "    Day | Opens",
                                  "    Monday | 07:00", "    Friday | 17:30"]
    long = describe_sources([{"source": "a.txt", "text": "word " * 100}], snippet_chars=40)
    assert long.endswith("\u2026") and len(long.splitlines()[1]) < 50
