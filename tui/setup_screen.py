"""The setup screen (work in progress)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Static

from pgpt.tui.panel import PanelScreen


class SetupScreen(PanelScreen):
    """Work in progress."""

    def compose(self) -> ComposeResult:
        yield Static("setup", classes="panel-title")
        yield Footer()
