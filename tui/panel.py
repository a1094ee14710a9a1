"""The base of the screens reached from the chat by a function key (Setup, Models, Docs, Chats)."""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen

from pgpt.runtime.settings import Settings


class PanelScreen(Screen[None]):
    """A full screen over the chat; Esc goes back to the chat, F2-F5 to the other panels.

    The app installs each panel once, so a download or an ingestion started here keeps running
    (and keeps its progress) while the user goes back to the chat.
    """

    BINDINGS = [Binding("escape", "app.show_screen('chat')", "Chat")]

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
