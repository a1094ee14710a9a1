"""Naming a saved chat in the Chats panel (F5, r): the first question was the only label (t40)."""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable, Input

from pgpt.runtime.conversations import (list_conversations, load_conversation, new_conversation, rename_conversation,
                                        save_conversation)
from pgpt.runtime.errors import PgptError
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from pgpt.tui.screens.history import RenameChat
from test_app import SIZE, ask, wait_until


def shown(table: DataTable, row: int) -> str:
    """The label column of ``row`` as the screen shows it (its markup escaped)."""
    from rich.text import Text

    return Text.from_markup(str(table.get_row_at(row)[3])).plain


def _saved(settings: Settings, question: str, updated: float) -> str:
    conversation = new_conversation("chat", "")
    conversation.turns = [{"kind": "user", "text": question}, {"kind": "assistant", "text": "An answer."}]
    conversation.context = [{"role": "user", "content": question}, {"role": "assistant", "content": "An answer."}]
    save_conversation(settings, conversation)
    conversation.updated = updated  # an older chat, as if saved yesterday
    save_conversation(settings, conversation, touch=False)
    return conversation.id


def _two_chats(settings: Settings) -> tuple[str, str]:
    """An older and a newer saved chat (their ids), as F5 lists them: the newer first."""
    return _saved(settings, "When does the ferry leave?", 1000.0), _saved(settings, "Who keeps the lighthouse?", 2000.0)


async def _open_chats(app: ChatApp, pilot) -> DataTable:  # type: ignore[no-untyped-def]
    """F5, once both chats are listed."""
    await pilot.press("f5")
    table = app.screen.query_one(DataTable)
    await wait_until(pilot, lambda: table.row_count == 2)
    return table


def test_a_name_is_kept_on_one_line_and_old_files_without_one_still_load(settings: Settings) -> None:
    key = _saved(settings, "When does the ferry leave?", 1000.0)
    conversation = load_conversation(settings, key)
    rename_conversation(settings, conversation, "  Ferry\n  plans " + "x" * 100)
    loaded = load_conversation(settings, key)
    assert loaded.name == ("Ferry plans " + "x" * 100)[:60] and loaded.updated == 1000.0  # stays where it was listed
    path = settings.home / "conversations" / f"{key}.json"
    data = json.loads(path.read_text())
    del data["name"]  # a file of an earlier release
    path.write_text(json.dumps(data))
    assert load_conversation(settings, key).title == "When does the ferry leave?"
    path.write_text(json.dumps({**data, "name": ["not", "text"]}))
    with pytest.raises(PgptError, match="cannot be read"):
        load_conversation(settings, key)


async def test_f5_renames_the_chat_under_the_cursor_and_the_open_chat_keeps_the_name(settings: Settings) -> None:
    older, newer = _two_chats(settings)
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        table = await _open_chats(app, pilot)
        table.focus()
        await pilot.press("down", "r")  # the older chat
        await wait_until(pilot, lambda: isinstance(app.screen, RenameChat))
        assert app.screen.query_one(Input).value == "When does the ferry leave?"  # edited, not typed anew
        await pilot.press("ctrl+u", *"[b]Ferry[/b] times", "enter")
        await wait_until(pilot, lambda: shown(table, 1) == "[b]Ferry[/b] times")  # markup shown, not run
        assert [c.id for c in list_conversations(settings)] == [newer, older]  # the order stays
        assert table.cursor_row == 1  # and the cursor with the chat (it went to the first row)
        await pilot.press("r", "x", "escape")  # Esc keeps the name
        await wait_until(pilot, lambda: not isinstance(app.screen, RenameChat))
        assert load_conversation(settings, older).name == "[b]Ferry[/b] times"
        await pilot.press("r", "ctrl+u", "enter")  # empty: the first question is its label again
        await wait_until(pilot, lambda: shown(table, 1) == "When does the ferry leave?")

        # The open chat saves its own copy with each answer: renamed from F5, that copy has the name too
        await pilot.press("up", "enter")
        await wait_until(pilot, lambda: len(app.screen_stack) == 1 and app.saved is not None)
        table = await _open_chats(app, pilot)
        table.focus()
        await pilot.press("home", "r", "ctrl+u", *"Lighthouse", "enter")
        await wait_until(pilot, lambda: shown(table, 0) == "Lighthouse")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.engine is not None)
        await ask(pilot, "And who built it?")
        assert load_conversation(settings, newer).name == "Lighthouse"


async def test_f5_opens_on_the_chat_in_the_app_else_the_newest(settings: Settings) -> None:
    """The cursor stayed on the chat opened last: after Ctrl+N and a new chat, F5 and Enter reopened an
    older chat, not the one just left (t68)."""
    older, newer = _two_chats(settings)
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        table = await _open_chats(app, pilot)
        assert table.cursor_row == 0  # the newest
        await pilot.press("down", "enter")  # the older chat is opened
        await wait_until(pilot, lambda: len(app.screen_stack) == 1 and app.saved is not None)
        assert app.saved.id == older
        await pilot.press("f5")
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 2 and table.cursor_row == 1)  # the chat in the app
        await pilot.press("escape", "ctrl+n", "f5")  # a new chat, not saved yet: the newest
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 2 and table.cursor_row == 0)
        assert [c.id for c in list_conversations(settings)][0] == newer
