"""The documents screen (work in progress)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Static

from pgpt.tui.panel import PanelScreen


class DocumentsScreen(PanelScreen):
    """Work in progress."""

    def compose(self) -> ComposeResult:
        yield Static("documents", classes="panel-title")
        yield Footer()
