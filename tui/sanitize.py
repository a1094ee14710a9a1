"""Make document and model text safe to show in a widget: no control sequences, no Textual markup.

The control stripping is the runtime's one sanitizer (:mod:`pgpt.runtime.sanitize`); this adds
what only Textual needs: its markup escaped.
"""

from __future__ import annotations

import re

from textual.markup import escape

from pgpt.runtime.sanitize import dumps_json, strip_controls

__all__ = ["clean_text", "dumps_json", "strip_controls"]

# Textual's markup parser opens a tag at any "[" without a backslash before it, while
# `escape` only covers tags that start with a-z, #, / or @; this catches the rest ("[B]", "[$x]").
_OPEN_BRACKET = re.compile(r"(?<!\\)\[")


# An emoji's variation selector 16 (U+FE0F after U+26A0, a README's warning sign) makes it two cells
# wide for Textual, while tmux 3.3 and many terminals draw it in one: the line's right border moved a
# column (t54). Without the selector the sign is drawn in its text form, one cell for both.
_EMOJI_PRESENTATION = "\ufe0f"


def clean_text(text: str) -> str:
    """Text from documents or the model, ready for a widget that parses Textual markup."""
    text = strip_controls(text).replace(_EMOJI_PRESENTATION, "")
    if text.endswith("\\"):
        # `escape` doubles a last backslash, which Textual then shows doubled, and the pair took the
        # next tag's "[" as escaped: "bonus\\" + "[/reverse]" showed the tag and reversed every
        # passage after it (t65). A zero-width space ends the text instead: nothing to escape.
        text += "\u200b"
    return _OPEN_BRACKET.sub(r"\\[", escape(text))
