"""The Models screen's info area: a headline, then the lines of a running job (its stages, a
download's files), the newest in view unless a failure's first words would scroll out."""

from __future__ import annotations

from typing import Any

from textual.containers import VerticalScroll
from textual.widgets import Static

from pgpt.tui.sanitize import clean_text

MAX_LINES = 40


class InfoAreaMixin:
    """``_lines`` shown in ``#diagnosis`` inside ``#info`` (a VerticalScroll) of the Models screen."""

    _lines: list[str]

    def _show(self: Any, text: str, markup: bool = False) -> None:
        """Replace the info area with ``text`` (outside text, cleaned unless already built with clean_text)."""
        self._lines = [text if markup else clean_text(text)]
        self._render_lines(at_end=False)  # a diagnosis is read from its headline

    def _add_line(self: Any, text: str, bold: bool = False) -> None:
        line = clean_text(text)
        self._lines = [*self._lines, f"[b]{line}[/b]" if bold else line][-MAX_LINES:]
        self._render_lines()
        self.refresh_bindings()

    def _render_lines(self: Any, at_end: bool = True) -> None:
        self.query_one("#diagnosis", Static).update("\n".join(self._lines))
        info = self.query_one("#info", VerticalScroll)
        if not at_end:
            info.scroll_home(animate=False)
            return
        # Stage lines follow the newest, but a failure's cause is read from its first words: the end,
        # never past the newest line's start (at 60x15 the area has two rows; its end said nothing).
        from textual.content import Content

        diagnosis, earlier = self.query_one("#diagnosis", Static), "\n".join(self._lines[:-1])
        width = diagnosis.content_region.width
        start = Content.from_markup(earlier).get_height(diagnosis.styles, width) if earlier else 0
        info.scroll_to(y=start, animate=False)  # after the refresh, clamped to what the new lines allow
