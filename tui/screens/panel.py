"""The base of the screens reached from the chat by a function key (Setup, Models, Docs, Chats)."""

from __future__ import annotations

import logging

from textual import on
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable
from textual.worker import Worker, WorkerState

from pgpt.runtime.errors import usage_titles, user_message
from pgpt.runtime.settings import Settings
from pgpt.tui.sanitize import clean_text

log = logging.getLogger(__name__)


class PanelScreen(Screen[None]):
    """A full screen over the chat; Esc goes back to the chat, F2-F5 to the other panels.

    The app installs each panel once, so a download or an ingestion started here keeps running
    (and keeps its progress) while the user goes back to the chat.
    """

    # F1 works here as in the chat, but out of the footer: the panels' own keys fill 80 columns
    BINDINGS = [Binding("escape", "app.show_screen('chat')", "Chat"),
                Binding("f1", "keys", "Keys", show=False)]
    # Whether the screen shows a failed worker's message in its own panel: then a toast on top of it
    # only repeats it (two stacked toasts hid the Models table's columns), so there is one only
    # while the user is elsewhere.
    SHOWS_FAILURES = False

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def action_keys(self) -> None:
        """F1: the keys page, as in the chat (the app's own F1 is hidden on the panels)."""
        self.app.action_show_keys()  # type: ignore[attr-defined]

    @on(Worker.StateChanged)
    def _notify_failure(self, event: Worker.StateChanged) -> None:
        """Log a failed worker and notify its one-paragraph message (Worker.StateChanged stays on
        the screen that started the worker, so the app's handler never sees it). Subclasses add
        their own handler to update their widgets."""
        error = event.worker.error
        if event.state is not WorkerState.ERROR or error is None:
            return
        message = user_message(error)
        if message.title == "Unexpected error":  # a bug: its traceback is what the log is for
            log.error("%s worker %s failed", type(self).__name__, event.worker.name, exc_info=error)
        else:  # a known cause (no network, a refused token): its message says all
            log.warning("%s worker %s failed: %s: %s", type(self).__name__, event.worker.name, message.title,
                        message.text)
        if not (self.SHOWS_FAILURES and self.is_current):
            self.notify(clean_text(message.text), title=clean_text(message.title), severity="error", timeout=10)


def app_error(error: BaseException) -> str:
    """An error as a panel shows it: one paragraph, its title left out when it is a command line's
    word for a mistake ("Usage error", "Invalid setting": the panels' own fields are the usage), and
    its next step in the app's terms."""
    message = user_message(error)
    text = in_the_app(message.text)
    return text if message.title in usage_titles() else f"{message.title}: {text}"


def in_the_app(text: str) -> str:
    """A runtime message's next step as the app's: the token is saved on the Setup screen (F2)."""
    return (text.replace("run `pgpt-tui token set`", "save it on the Setup screen (F2)")
            .replace(" in `pgpt-tui models` and in the Models list (F3)", " in the Models list (F3)"))


class RowTable(DataTable[str]):
    """A panel's list: Home and End go to the first and the last row (they did nothing in Chats)."""

    BINDINGS = [Binding("home", "first_row", "First", show=False), Binding("end", "last_row", "Last", show=False)]

    def action_first_row(self) -> None:
        """Select the first row."""
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        """Select the last row."""
        self.move_cursor(row=max(self.row_count - 1, 0))
