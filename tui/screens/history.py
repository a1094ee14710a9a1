"""The Chats screen (F5): conversations kept on disk; Enter reopens one, r renames it, Delete removes it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static

from pgpt.runtime.conversations import Conversation
from pgpt.tui.screens.panel import PanelScreen, RowTable
from pgpt.tui.sanitize import clean_text


@dataclass
class ConversationsListed(Message):
    """The saved conversations, newest first (read by a worker)."""

    conversations: list[Conversation]
    unreadable: list[str]  # files in the folder that are no readable conversation


class ConversationTable(RowTable):
    """One row per saved conversation; Enter opens it, r renames it, Delete removes it."""

    BINDINGS = [Binding("enter", "select_cursor", "Open", show=True),
                Binding("r", "screen.rename", "Rename"),
                Binding("delete", "screen.delete", "Delete")]


class RenameChat(ModalScreen[str | None]):
    """The name for a chat, typed over its title; Enter keeps it (empty: the first question again),
    Esc leaves the name as it was."""

    DEFAULT_CSS = """
    RenameChat { align: center middle; }
    RenameChat > Vertical { width: 70; max-width: 100%; height: auto; border: thick $primary; padding: 0 1;
                            background: $surface; }
    """
    BINDINGS = [Binding("escape", "keep", "Keep the name")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_now = title

    def compose(self) -> ComposeResult:
        from pgpt.runtime.conversations import TITLE_CHARS

        with Vertical() as frame:
            frame.border_title, frame.border_subtitle = "Rename the chat", "Enter saves · Esc keeps the name"
            yield Input(self.title_now, max_length=TITLE_CHARS, placeholder="empty: its first question",
                        id="chat-name")

    @on(Input.Submitted, "#chat-name")
    def _typed(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_keep(self) -> None:
        """Close without renaming."""
        self.dismiss(None)


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
        yield Static("Chats · saved conversations, newest first · Enter reopens one · r renames it",
                     classes="panel-title")
        yield ConversationTable(id="chat-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="chat-hint")
        yield Footer(compact=True, show_command_palette=False)  # 80 columns; Ctrl+P still opens it

    def on_mount(self) -> None:
        self.query_one(ConversationTable).add_columns("updated", "questions", "mode", "name or first question")

    def on_screen_resume(self) -> None:
        self.query_one(ConversationTable).focus()
        # shown by F5 (not back from its own dialog): the listing puts the cursor on the chat in the app
        self._opened, self._dialog = not getattr(self, "_dialog", False), False
        self.list_conversations()

    @work(thread=True, exclusive=True, exit_on_error=False, group="conversations")
    def list_conversations(self) -> None:
        """Read the saved conversations."""
        from pgpt.runtime.conversations import read_conversations

        self.post_message(ConversationsListed(*read_conversations(self.settings)))

    @on(ConversationsListed)
    def _listed(self, message: ConversationsListed) -> None:
        table = self.query_one(ConversationTable)
        chosen, row = self._selected(), table.cursor_row
        table.clear()
        self._conversations = {c.id: c for c in message.conversations}
        for conversation in message.conversations:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.updated))
            # the user's questions: quotes, sources and notices are turns too (12 questions read "turns 41")
            questions = sum(1 for turn in conversation.turns if turn.get("kind") == "user")
            table.add_row(when, str(questions), conversation.mode, clean_text(conversation.title), key=conversation.id)
        # the cursor stays with its chat (a renamed one), or at its row (the one after a deleted one); the
        # panel just opened, on the chat in the app, else the newest: it stayed on the chat opened last,
        # and Enter opened an older chat than the one just left (t68)
        keys = [c.id for c in message.conversations]
        if getattr(self, "_opened", False):
            self._opened, current = False, getattr(self.app, "saved", None)
            chosen, row = current, 0
        table.move_cursor(row=keys.index(chosen.id) if chosen is not None and chosen.id in keys else row)
        hint = (f"{len(message.conversations)} saved · Ctrl+N in the chat starts a new one" if message.conversations
                else "No saved conversations yet: every answered question is saved here.")
        if message.unreadable:  # one line: the log names each file and why
            count, them = len(message.unreadable), "them" if len(message.unreadable) > 1 else "it"
            # and what to do: it was named with no next step (t66); pgpt never changes such a file
            hint = (f"{len(message.conversations)} saved · {count} file{'s' if count > 1 else ''} in conversations/ "
                    f"could not be read (logs/pgpt.log says why; they stay as they are: move {them} out of the "
                    f"folder or delete {them}): {clean_text(', '.join(message.unreadable))}")
        self.query_one("#chat-hint", Static).update(hint)

    @on(DataTable.RowSelected, "#chat-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        conversation = self._conversations.get(str(event.row_key.value))
        if conversation is not None:
            self.app.open_conversation(conversation)  # type: ignore[attr-defined]

    def action_delete(self) -> None:
        """Delete the selected conversation's file, after asking (it deleted at once, with no way back)."""
        from pgpt.tui.screens.confirm import Confirm

        conversation = self._selected()
        if conversation is None:
            return
        key = conversation.id
        # no "?" after the title: a question's own one made it "...code?”?" (t60)
        self._dialog = True
        self.app.push_screen(Confirm(f"Delete the conversation \u201c{clean_text(conversation.title)}\u201d for good: "
                                     "it cannot be brought back."), lambda yes: self._delete(key) if yes else None)

    def action_rename(self) -> None:
        """Name the selected conversation (the first question was the only label, t40)."""
        conversation = self._selected()
        if conversation is not None:
            self._dialog = True
            self.app.push_screen(RenameChat(conversation.title.rstrip("\u2026")),
                                 lambda name: self._rename(conversation, name) if name is not None else None)

    def _rename(self, conversation: Conversation, name: str) -> None:
        from pgpt.runtime.conversations import rename_conversation
        from pgpt.runtime.errors import StorageError, app_message

        # The chat open on it saves its own copy with its next answer: that copy takes the name too.
        opened = getattr(self.app, "saved", None)
        try:
            rename_conversation(self.settings, opened if opened is not None and opened.id == conversation.id
                                else conversation, name)
        except StorageError as fault:  # a full or read-only home: the old name stays, and that is said
            message = app_message(fault)
            self.notify(clean_text(message.text), title=f"Not renamed: {message.title}", severity="error")
            return
        self.list_conversations()

    def _selected(self) -> Conversation | None:
        table = self.query_one(ConversationTable)
        if table.row_count == 0:
            return None
        return self._conversations.get(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))

    def _delete(self, key: str) -> None:
        from pgpt.runtime.conversations import delete_conversation

        delete_conversation(self.settings, key)  # one unlink: quick enough for the main thread
        # The chat open on it would save it again, whole, with its next answer: it starts anew.
        opened = getattr(self.app, "saved", None)
        if opened is not None and opened.id == key:
            self.app.action_new_chat()  # type: ignore[attr-defined]
        self.notify("Conversation deleted.", timeout=3)
        self.list_conversations()
