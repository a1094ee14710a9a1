"""The Models screen's type choice and fast-prompts box, readable without colour.

Textual draws every radio button as "▐●▌" and a checkbox as "▐X▌" whether on or off, told apart by
colour alone: with NO_COLOR, or on a terminal with few colours, every type looked chosen and the
unticked box looked ticked (tester t40 #22). These draw the mark only when on.
"""

from __future__ import annotations

from textual.widgets import Checkbox, RadioButton


class MarkedRadioButton(RadioButton):
    """A radio button whose dot shows only when it is the one chosen."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # noqa: N802 (Textual's name)
        """The inside of the button: the dot when chosen, a blank otherwise."""
        return "●" if self.value else " "


class MarkedCheckbox(Checkbox):
    """A checkbox whose X shows only when it is ticked."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # noqa: N802 (Textual's name)
        """The inside of the box: X when ticked, a blank otherwise."""
        return "X" if self.value else " "
