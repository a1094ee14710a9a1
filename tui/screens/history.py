"""The Chats screen (F5): conversations kept on disk; Enter reopens one, Delete removes it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from pgpt.runtime.conversations import Conversation
from pgpt.tui.screens.panel import PanelScreen, RowTable
from pgpt.tui.sanitize import clean_text


@dataclass
class ConversationsListed(Message):
    """The saved conversations, newest first (read by a worker)."""

    conversations: list[Conversation]
    unreadable: list[str]  # files in the folder that are no readable conversation


class ConversationTable(RowTable):
    """One row per saved conversation; Enter opens it, Delete removes it."""

    BINDINGS = [Binding("enter", "select_cursor", "Open", show=True),
                Binding("delete", "screen.delete", "Delete")]


class HistoryScreen(PanelScreen):
    """Reopen an earlier conversation: its turns come back, and a chat goes on where it stopped."""

    DEFAULT_CSS = """
    HistoryScreen #chat-table { height: 1fr; }
    HistoryScreen #chat-hint { height: 1; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._conversations: dict[str, Conversation] = {}

    def compose(self) -> ComposeResult:
        yield Static("Chats · saved conversations, newest first · Enter reopens one", classes="panel-title")
        yield ConversationTable(id="chat-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="chat-hint")
        yield Footer(compact=True, show_command_palette=False)  # 80 columns; Ctrl+P still opens it

    def on_mount(self) -> None:
        self.query_one(ConversationTable).add_columns("updated", "questions", "mode", "first question")

    def on_screen_resume(self) -> None:
        self.query_one(ConversationTable).focus()
        self.list_conversations()

    @work(thread=True, exclusive=True, exit_on_error=False, group="conversations")
    def list_conversations(self) -> None:
        """Read the saved conversations."""
        from pgpt.runtime.conversations import read_conversations

        self.post_message(ConversationsListed(*read_conversations(self.settings)))

    @on(ConversationsListed)
    def _listed(self, message: ConversationsListed) -> None:
        table = self.query_one(ConversationTable)
        table.clear()
        self._conversations = {c.id: c for c in message.conversations}
        for conversation in message.conversations:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.updated))
            # the user's questions: quotes, sources and notices are turns too (12 questions read "turns 41")
            questions = sum(1 for turn in conversation.turns if turn.get("kind") == "user")
            table.add_row(when, str(questions), conversation.mode, clean_text(conversation.title), key=conversation.id)
        hint = (f"{len(message.conversations)} saved · Ctrl+N in the chat starts a new one" if message.conversations
                else "No saved conversations yet: every answered question is saved here.")
        if message.unreadable:  # one line: the log names each file and why
            count = len(message.unreadable)
            hint = (f"{len(message.conversations)} saved · {count} file{'s' if count > 1 else ''} in conversations/ "
                    f"could not be read (logs/pgpt.log says why): {clean_text(', '.join(message.unreadable))}")
        self.query_one("#chat-hint", Static).update(hint)

    @on(DataTable.RowSelected, "#chat-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        conversation = self._conversations.get(str(event.row_key.value))
        if conversation is not None:
            self.app.open_conversation(conversation)  # type: ignore[attr-defined]

    def action_delete(self) -> None:
        """Delete the selected conversation's file, after asking (it deleted at once, with no way back)."""
        from pgpt.tui.screens.confirm import Confirm

        table = self.query_one(ConversationTable)
        if table.row_count == 0:
            return
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        conversation = self._conversations.get(key)
        title = clean_text(conversation.title) if conversation else key
        self.app.push_screen(Confirm(f"Delete the conversation \u201c{title}\u201d? It cannot be brought back."),
                             lambda yes: self._delete(key) if yes else None)

    def _delete(self, key: str) -> None:
        from pgpt.runtime.conversations import delete_conversation

        delete_conversation(self.settings, key)  # one unlink: quick enough for the main thread
        # The chat open on it would save it again, whole, with its next answer: it starts anew.
        opened = getattr(self.app, "saved", None)
        if opened is not None and opened.id == key:
            self.app.action_new_chat()  # type: ignore[attr-defined]
        self.notify("Conversation deleted.", timeout=3)
        self.list_conversations()
