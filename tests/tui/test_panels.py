"""The Docs and Chats panels, saved conversations, copy, the palette and the first start, driven by Pilot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from pgpt.runtime.conversations import (delete_conversation, list_conversations, load_conversation, read_conversations,
                                        new_conversation, save_conversation)
from pgpt.runtime.errors import PgptError
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from pgpt.tui.chat.library import MODES
from pgpt.tui.chat.widgets import ChatLog
from pgpt.tui.screens.confirm import Confirm
from pgpt.tui.screens.documents.table import DocumentTable
from test_app import SIZE, ask, turns, wait_until


def test_conversations_round_trip_and_refuse_bad_files(settings: Settings) -> None:
    saved = new_conversation("chat", "m")
    saved.turns = [{"kind": "user", "text": "Q?"}, {"kind": "assistant", "text": "A."}]
    saved.context = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]
    path = save_conversation(settings, saved)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    loaded = load_conversation(settings, saved.id)
    assert (loaded.turns, loaded.context, loaded.title) == (saved.turns, saved.context, "Q?")
    broken = path.parent / "20260101-000000-abcdef.json"
    broken.write_text(json.dumps({"id": "x", "turns": "not a list"}))
    assert [c.id for c in list_conversations(settings)] == [saved.id]  # the damaged file is left out
    assert read_conversations(settings)[1] == [broken.name]  # and named (F5 says so)
    with pytest.raises(PgptError, match="cannot be read"):
        load_conversation(settings, broken.stem)
    with pytest.raises(PgptError, match="not a conversation id"):
        load_conversation(settings, "../../etc/passwd")
    delete_conversation(settings, saved.id)
    assert list_conversations(settings) == []


async def test_answers_are_saved_and_a_chat_reopens_with_its_context(settings: Settings,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TMUX", "STY"):  # a developer's tmux: the copy would say its paste buffer (test_clipboard.py)
        monkeypatch.delenv(name, raising=False)
    app = ChatApp(settings, SamplingOptions(max_new_tokens=12))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        await pilot.press("ctrl+y")  # nothing to copy yet: said, not silent
        assert [n.message for n in app._notifications] == ["Nothing to copy yet: no question has been answered in "
                                                             "this chat."]
        await ask(pilot, "What is the capital of France?")
        first_answer = turns(app)[1].text
        (saved,) = list_conversations(settings)
        assert saved.turns[0] == {"kind": "user", "text": "What is the capital of France?"}
        assert saved.context[-1] == {"role": "assistant", "content": first_answer}

        await pilot.press("ctrl+y")  # copy: the app writes it with OSC 52
        assert app.clipboard == first_answer
        assert list(app._notifications)[-1].message == (f"Copied the last answer ({len(first_answer)} characters) "
                                                        "to the terminal's clipboard (OSC 52).")

        await pilot.press("ctrl+n")
        assert turns(app) == []
        damaged = settings.home / "conversations" / "20260101-000000-abcdef.json"
        damaged.write_text('{"id": "20260101-000000-abcdef", "turns": [')  # a chat cut short vanished unsaid
        await pilot.press("f5")
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)
        hint = app.screen.query_one("#chat-hint", Static)
        await wait_until(pilot, lambda: "could not be read" in str(hint.render()))
        assert "1 saved · 1 file in conversations/ could not be read" in str(hint.render())
        assert "move it out of the folder or delete it" in str(hint.render())  # the next step (t66)
        damaged.unlink()
        await pilot.press("enter")  # reopen it
        await wait_until(pilot, lambda: len(app.screen_stack) == 1 and len(turns(app)) == 2)
        assert [t.text for t in turns(app)] == ["What is the capital of France?", first_answer]
        await ask(pilot, "And of Italy?")  # goes on in the same file, with the earlier turns as context
        (saved,) = list_conversations(settings)
        assert [m["role"] for m in saved.context] == ["user", "assistant", "user", "assistant"]

        await pilot.press("f5")
        await wait_until(pilot, lambda: table.row_count == 1)
        await pilot.press("delete")  # it asks first (it deleted at once); n keeps it
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        assert "Delete the conversation \u201cWhat is the capital of France?\u201d for good: " in str(
            app.screen.query_one(Static).render())
        await pilot.press("n")
        await wait_until(pilot, lambda: not isinstance(app.screen, Confirm))
        assert len(list_conversations(settings)) == 1
        await pilot.press("delete", "y")
        await wait_until(pilot, lambda: table.row_count == 0)
        assert list_conversations(settings) == []
        # It was the open conversation: the chat starts anew, and the next answer does not bring it back
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(app.screen_stack) == 1)
        assert turns(app) == []
        await ask(pilot, "What is the capital of Spain?")
        (fresh,) = list_conversations(settings)
        assert [t["text"] for t in fresh.turns if t["kind"] == "user"] == ["What is the capital of Spain?"]


async def test_docs_panel_lists_forgets_and_reports_skipped_files(settings: Settings, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / ".git").mkdir()  # the folder tree listed .git and .venv, which ingest skips
    monkeypatch.chdir(docs)
    (docs / "tide.txt").write_text("The tide tables of Port Vell are published each Monday.\n")
    (docs / "blob.txt").write_bytes(bytes(range(256)) * 8)  # binary behind a text suffix
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.library is not None)
        await pilot.press("f4")
        screen = app.screen
        path_input = screen.query_one("#doc-path", Input)
        assert app.focused is path_input
        tree = screen.query_one("#doc-tree")
        await wait_until(pilot, lambda: len(tree.root.children) == 2)
        assert sorted(str(node.label) for node in tree.root.children) == ["blob.txt", "tide.txt"]
        tree.focus()
        await pilot.press("x", "y")  # typed in the tree: it goes to the path field (it went nowhere)
        assert app.focused is path_input and path_input.value == "xy"
        tree.focus()
        await pilot.press("backspace")  # the folder above (nothing above the start folder could be picked)
        await wait_until(pilot, lambda: "docs" in [str(node.label) for node in tree.root.children])
        assert path_input.value == "xy" and app.focused is tree
        await pilot.press("down", "enter")  # the first entry of the folder above: picked into the path field
        await wait_until(pilot, lambda: path_input.value == str(tmp_path / "docs"))
        path_input.focus()
        await pilot.press("ctrl+u", *str(docs / "tyde.txt"), "enter")  # a typo: said at once, nothing starts
        report = str(screen.query_one("#doc-report", Static).render())
        assert report.startswith(f"No such file or folder: {docs / 'tyde.txt'}. Nothing was indexed.")
        assert not app._ingesting()
        (tmp_path / "empty").mkdir()
        await pilot.press("ctrl+u", *str(tmp_path / "empty"), "enter")  # an empty folder: said, not zeros only
        await wait_until(pilot, lambda: "No files found" in str(screen.query_one("#doc-report", Static).render()))
        await wait_until(pilot, lambda: not app._ingesting())
        await pilot.press("ctrl+u", *str(docs), "enter")
        assert path_input.value == ""  # started: the next path is not appended to this one
        await wait_until(pilot, lambda: not app._ingesting() and "added" in str(screen.query_one("#doc-report").render()))
        report = str(screen.query_one("#doc-report", Static).render())
        assert "1 added" in report and "blob.txt" in report and "binary" in report
        assert "No files found" not in report  # the previous run's report went when this one started
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)
        assert "tide.txt" in str(table.get_row_at(0)[2])
        table.focus()
        await pilot.press("delete")  # it asks first (a stray Delete forgot at once); n keeps it
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        assert "Forget" in str(app.screen.query_one(Static).render()) and "tide.txt" in str(
            app.screen.query_one(Static).render())
        await pilot.press("n")
        await wait_until(pilot, lambda: not isinstance(app.screen, Confirm))
        assert table.row_count == 1 and len(app.library.store.documents()) == 1
        await pilot.press("delete", "y")  # forget it
        await wait_until(pilot, lambda: table.row_count == 0)
        forgot = str(screen.query_one("#doc-report").render())
        assert app.library.store.documents() == [] and "Forgot" in forgot and "(1 chunk)." in forgot
        await pilot.press("escape")
        assert len(app.screen_stack) == 1 and app.library.documents == 0


async def test_docs_panel_names_the_whole_path_of_same_named_files(settings: Settings, tmp_path: Path) -> None:
    """Files of one name in several folders all read "…-a-fairly-long-file-name.txt" at 60x15, in the
    list and in the Forget dialog; the highlighted row's whole path is now on the report box's rule,
    and the dialog names it whole."""
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.llm.embeddings import default_embedder

    folders = [tmp_path / "docs" / f"folder-{n}" for n in range(2)]
    for n, folder in enumerate(folders):
        folder.mkdir(parents=True)
        (folder / "a-fairly-long-file-name-98.txt").write_text(f"Harbour {n} opens at dawn each Monday.\n")
    ingest(settings, [tmp_path / "docs"], default_embedder(settings))
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=(60, 15)) as pilot:
        await wait_until(pilot, lambda: app.library is not None)
        await pilot.press("f4")
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 2)
        table.focus()
        box = screen.query_one("#doc-report-box")
        shown = set()
        for _ in range(2):
            await pilot.pause()
            title = str(box.border_title)
            assert "/folder-" in title and title.endswith("/a-fairly-long-file-name-98.txt"), title
            shown.add(title)
            await pilot.press("down")
        assert len(shown) == 2  # the two rows' rules tell their folders apart
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        question = str(app.screen.query_one(Static).render())
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value  # the document's id
        path = next(record.path for record in screen.query_one(DocumentTable).listed if record.doc_id == key)
        assert f"Forget {path}?" in question, question
        assert app.screen.query_one("Confirm > Vertical").outer_size.width <= 60  # 64 wide, its right edge was cut
        await pilot.press("n")


async def test_quitting_while_documents_are_added_asks_and_ctrl_x_is_answered_at_once(settings: Settings,
                                                                                     tmp_path: Path) -> None:
    """Ctrl+Q ended the app mid-ingestion without a word about the partly indexed folder, and
    Ctrl+X showed nothing for 6-7 s (the stop lands between two batches of chunks)."""
    docs = tmp_path / "big"
    docs.mkdir()
    (docs / "big.txt").write_text("\n\n".join(f"Section {n} tells of harbour {n}, its quays and {n} boats. " * 9
                                               for n in range(1500)))
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.library is not None)
        await pilot.press("f4")
        await pilot.press(*str(docs), "enter")
        await wait_until(pilot, lambda: app._ingesting())
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        assert "still being added" in str(app.screen.query_one(Static).render())
        await pilot.press("n")  # keeps the app and the ingestion
        await wait_until(pilot, lambda: not isinstance(app.screen, Confirm))
        assert app.is_running and app._ingesting()
        await pilot.press("ctrl+x")
        assert any("Stopping after the current batch" in n.message for n in app._notifications)
        await wait_until(pilot, lambda: not app._ingesting(), timeout=60)
        await pilot.press("ctrl+q")  # nothing running: it quits without asking
        await wait_until(pilot, lambda: not app.is_running, timeout=10)


async def test_palette_lists_every_panel_and_action(settings: Settings) -> None:
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for expected in ("Setup (F2)", "Models (F3)", "Docs (F4)", "Chats (F5)", "New chat (Ctrl+N)",
                         "Copy answer (Ctrl+Y)", "Switch mode (Ctrl+R)", "Stop answer (Esc)", "Keys (F1)",
                         "Quit (Ctrl+Q)"):
            assert expected in titles
        assert "Quit" not in titles and "Keys" not in titles  # Textual's own, without their keys
        # F1 did nothing; Textual's "Keys" panel listed the input's editing keys and ignored Esc
        from pgpt.tui.screens.keys_help import KeysHelp

        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, KeysHelp))
        shown = " ".join(str(static.render()) for static in app.screen.query(Static))
        assert "Ctrl+R" in shown and "switch mode" in shown and "F4 Delete/Ctrl+G" in shown
        assert "F2 Ctrl+S/L/R" in shown and "F3 Ctrl+G/B/R/X" in shown  # Setup's and Models' keys were left out
        from textual.containers import VerticalScroll

        await pilot.pause()
        assert app.screen.query_one(VerticalScroll).max_scroll_y == 0  # all of it at 80x24 (F5's keys were below)
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(app.screen_stack) == 1)
        prompt = app.query_one("#prompt", Input)  # the mode stays in sight once text hides the placeholder
        assert prompt.border_title and prompt.border_title.startswith(MODES[app.mode])
        await pilot.press("ctrl+r")
        assert prompt.border_title.startswith(MODES[app.mode])


async def test_first_start_prepares_the_missing_default_with_progress(default_models: Settings,
                                                                      tmp_path: Path) -> None:
    """A cache with a chat model but no embedding model: the app exports the embedder, then documents work."""
    from pgpt.runtime.models import DEFAULT_EMBEDDER, DEFAULT_LLM

    cache = tmp_path / "models"
    cache.mkdir()
    os.symlink(default_models.model_cache / f"{DEFAULT_LLM}-int8", cache / f"{DEFAULT_LLM}-int8")
    app = ChatApp(Settings(home=tmp_path / "home", model_cache=cache))
    seen: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        def watch() -> bool:
            seen.append(str(app.query_one("#status", Static).render()))
            return app.engine is not None

        await wait_until(pilot, watch, timeout=600)
        assert any(line.startswith("First start ") for line in seen)
        assert any(t.kind == "notice" and "First start" in t.text for t in turns(app))
        assert (cache / DEFAULT_EMBEDDER / "manifest.json").is_file() and app.library is not None
        assert not app.query_one("#ingest-progress").display


def test_panels_show_a_mistake_without_the_command_lines_title() -> None:
    """F2 and F3 showed "Usage error: ..." and "Invalid setting: ...", a command line's words."""
    from pgpt.runtime.errors import ConfigError, DiskFullError, UsageError
    from pgpt.tui.screens.panel import app_error

    assert app_error(UsageError("x is an embedding model.", hint="Choose a chat model.")) == (
        "x is an embedding model. Choose a chat model.")
    assert app_error(ConfigError("Bad token.", hint="Paste it again.")) == "Bad token. Paste it again."
    assert app_error(DiskFullError("The disk is full.", hint="Free some space.")).startswith("Disk full: ")


async def test_home_and_end_go_to_the_first_and_the_last_saved_chat(settings: Settings) -> None:
    """End left the selection on the first of the saved chats."""
    for n in range(4):
        saved = new_conversation("chat", "")
        saved.turns = [{"kind": "user", "text": f"Question {n}"}]
        save_conversation(settings, saved)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 4)
        table.focus()
        await pilot.press("end")
        assert table.cursor_row == 3
        await pilot.press("home")
        assert table.cursor_row == 0


async def test_a_reopened_chat_starts_at_its_last_question(settings: Settings) -> None:
    """A chat reopened from F5 showed its end (the closest passages), its last question off screen."""
    passages = "\n\n".join(f"[{n}] notes-{n}.txt\n    A passage that says nothing of the ferry." for n in range(1, 9))
    saved = new_conversation("docs", "")
    saved.turns = [{"kind": "user", "text": "When does the ferry leave?"},
                   {"kind": "assistant", "text": "It leaves at noon."},
                   {"kind": "user", "text": "How many passengers can it carry?"},
                   {"kind": "assistant", "text": "I could not find that in your documents."},
                   {"kind": "closest", "text": f"Closest passages, none of which answers it:\n\n{passages}"}]
    save_conversation(settings, saved)
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.screen_stack) == 1 and len(turns(app)) == 5)
        log, question = app.query_one(ChatLog), turns(app)[2]
        await wait_until(pilot, lambda: 0 < log.max_scroll_y and log.scroll_y == question.virtual_region.y, timeout=10)


async def test_the_models_panel_actions_are_in_the_palette(settings: Settings) -> None:
    """F3's export is Ctrl+B, tmux's prefix: in a default tmux it never reached the app, and the palette
    had no Models action to use instead (t54)."""
    app = ChatApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ModelsScreen")
        commands = {command.title: command for command in app.get_system_commands(app.screen)}
        for title in ("Check the repo typed (Ctrl+R)", "Download the model typed (Ctrl+G)",
                      "Export the model typed (Ctrl+B)", "Next export type (Ctrl+T)", "Stop the check, download or "
                      "export (Ctrl+X)"):
            assert title in commands, sorted(commands)
        assert "tmux" in commands["Export the model typed (Ctrl+B)"].help
        before = app.screen.dtype
        ran = commands["Next export type (Ctrl+T)"].callback()
        if ran is not None:  # run_action's coroutine, as the palette awaits it
            await ran
        await pilot.pause()
        assert app.screen.dtype != before  # the command runs the screen's own action
        from pgpt.tui.screens.keys_help import KeysHelp

        await pilot.press("f1")  # F1 works on a panel too, though its footer leaves it out
        await wait_until(pilot, lambda: isinstance(app.screen, KeysHelp))
        await pilot.press("escape")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ModelsScreen")
        await pilot.press("escape")
        await wait_until(pilot, lambda: type(app.screen).__name__ != "ModelsScreen")
        assert not any("Export the model" in c.title for c in app.get_system_commands(app.screen))


async def test_a_chat_that_cannot_be_saved_is_said_in_the_log_and_at_the_quit(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """A read-only conversations folder got a toast that went by; the quit exited 0 with nothing on stderr
    and nothing in the log, so the lost chat went unnoticed (t66). Root writes any mode: the refusal is
    played as save_conversation raises it."""
    from pgpt.runtime import conversations
    from pgpt.runtime.errors import ReadOnlyError
    from pgpt.tui.chat.launch import say_quit_notes

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ReadOnlyError("Saving the chat in /home/u/pgpt/conversations failed: the folder is read-only.",
                            folder="/home/u/pgpt/conversations")

    monkeypatch.setattr(conversations, "save_conversation", refuse)
    app = ChatApp(settings, SamplingOptions(max_new_tokens=4))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        await ask(pilot, "Hi")
        assert app.not_saved.startswith("Read-only folder: Saving the chat in /home/u/pgpt/conversations failed")
    say_quit_notes(app)
    assert capsys.readouterr().err == f"pgpt-tui: the last chat was not saved. {app.not_saved}\n"
    assert "the chat was not saved: Saving the chat in" in caplog.text  # run_app sends it to logs/pgpt.log
