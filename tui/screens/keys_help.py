"""F1: pgpt's own keys on one page (Textual's "Keys" panel listed the input's editing keys first,
covered the footer and did not close with Esc)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# (key, what it does), short enough for one line of the dialog at 80 columns; all of it fits 80x24
# (the panels' last keys were below the fold there), the Setup and Models keys too (they were left out)
CHAT_KEYS = (
    ("Enter", "ask, chat or search (the mode on the input's frame)"),
    ("Ctrl+R", "switch mode: Documents, Chat, Search"),
    ("Esc/Ctrl+C", "stop the answer being written"),
    ("Ctrl+N", "new chat"),
    ("Ctrl+Y", "copy the last answer, or after PgUp the one in view (OSC 52)"),
    ("PgUp/PgDn", "scroll the conversation"),
    ("Ctrl+O/Ctrl+X", "add documents (Docs) / stop after the current batch"),
    ("F2 F3 F4 F5", "Setup (token, network), Models, Docs, Chats"),
    ("Ctrl+P", "command palette: every action by name"),
    ("Ctrl+Q/Ctrl+Z", "quit (asks first while work runs) / suspend"),
)
PANEL_KEYS = (
    ("Esc / Tab", "back to the chat (work goes on) / next field"),
    ("F2 Ctrl+S/L/R", "save / clear (asks) the token / check again"),
    ("F3 Enter/Delete", "use / delete (asks) the model under the cursor"),
    ("F3 Ctrl+G/B/R/X", "download / export / check the repo typed; stop"),
    ("F4 Enter", "add the path typed, or the one chosen below"),
    ("F4 Delete/Ctrl+G", "forget the document selected / the files gone"),
    ("F4 Backspace/abc", "folder tree: the folder above / list: find a name"),
    ("F5 Enter/r/Delete", "reopen / rename / delete (asks) the chat selected"),
)


class KeysHelp(ModalScreen[None]):
    """The keys of the chat and the panels; Esc, F1 or q closes it."""

    # a grid, so that a description wrapped in a narrow terminal goes on under its column, not
    # under the keys (t54: "OSC 52, works / over SSH" restarted at column 0)
    DEFAULT_CSS = """
    KeysHelp { align: center middle; }
    KeysHelp > VerticalScroll { width: 76; max-width: 100%; height: auto; max-height: 100%;
                                border: thick $primary; padding: 0 1; background: $surface; }
    KeysHelp Grid { grid-size: 2; grid-columns: auto 1fr; grid-rows: auto; grid-gutter: 0 2; height: auto; }
    KeysHelp .title { text-style: bold; }
    KeysHelp .gap { margin-top: 1; }
    KeysHelp .key { text-style: bold; }
    """
    BINDINGS = [Binding("escape,f1,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        frame = VerticalScroll()
        frame.border_title, frame.border_subtitle = "pgpt keys", "Esc, F1 or q closes"
        with frame:
            for title, keys in (("Chat", CHAT_KEYS), ("Panels", PANEL_KEYS)):
                yield Static(title, classes="title" if title == "Chat" else "title gap", markup=False)
                with Grid():
                    for key, what in keys:
                        yield Static(key, classes="key", markup=False)
                        yield Static(what, markup=False)

    def action_close(self) -> None:
        """Back to where F1 was pressed."""
        self.dismiss(None)
