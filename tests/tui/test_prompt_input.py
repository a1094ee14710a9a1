"""The chat's prompt under a burst of keys: a long paste that the terminal sends as one key event a
character (no bracketed paste) goes in together, in order with the other keys (user test t72)."""

from __future__ import annotations

import asyncio

from textual import events
from textual.app import App, ComposeResult
from textual.widgets import Input

from pgpt.tui.chat.widgets import PromptInput


class PromptApp(App[None]):
    """The prompt alone, as the chat screen has it."""

    def __init__(self) -> None:
        super().__init__()
        self.submitted: list[str] = []

    def compose(self) -> ComposeResult:
        yield PromptInput(id="prompt")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.submitted.append(event.value)


def key(character: str) -> events.Key:
    """The event a terminal's key sends (a space is named "space", as the driver names it)."""
    names = {" ": "space", "\r": "enter", "\x7f": "backspace"}
    return events.Key(names.get(character, character), character if character.isprintable() else None)


async def burst(app: PromptApp, text: str) -> None:
    """Send ``text`` as a terminal delivers a paste without bracketed paste: every key queued at once."""
    for character in text:
        app.post_message(key(character))
    for _ in range(1500):
        await asyncio.sleep(0.02)
        if app.submitted:
            return


async def test_a_burst_of_keys_goes_in_together_and_in_order(monkeypatch) -> None:
    """Each key inserted on its own cost the value's length: 8,000 pasted characters froze the app for
    about a minute (16 s here in a test, 1.8 s gathered)."""
    inserts: list[str] = []
    insert = PromptInput.insert_text_at_cursor
    monkeypatch.setattr(PromptInput, "insert_text_at_cursor", lambda self, text: (inserts.append(text),
                                                                                   insert(self, text))[1])
    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.pause()
        text = "The ferry log, pasted. " * 200
        await burst(app, text + "ab\x7fc\r")  # Backspace and Enter come after the keys before them
        await pilot.pause()
        assert app.submitted == [text + "ac"]
        assert "".join(inserts) == text + "abc" and len(inserts) < len(text) / 10


async def test_keys_typed_one_by_one_go_in_where_the_cursor_is() -> None:
    app = PromptApp()
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        prompt.focus()
        await pilot.press(*"harbor", "left", "left", "X", "home", "Y")
        assert prompt.value == "YharbXor" and prompt.cursor_position == 1
        prompt.select_all()
        await pilot.press("Z")  # a selection is replaced, as by a key
        assert prompt.value == "Z"
