"""A yes/no question before something that cannot be undone: y does it, n or Esc keeps things."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class Confirm(ModalScreen[bool]):
    """Asks ``question`` (markup, its parts already cleaned); dismissed with True for y."""

    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: 64; max-width: 100%; height: auto; border: thick $error; padding: 1 2;
                         background: $surface; }
    """
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "Keep")]

    def __init__(self, question: str, yes: str = "delete") -> None:
        super().__init__()
        self.question, self.yes = question, yes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"{self.question}\n\n[b]y[/b] {self.yes} · [b]n[/b] / [b]Esc[/b] keep")

    def action_answer(self, yes: bool) -> None:
        """Close the dialog with the answer."""
        self.dismiss(yes)
