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


def clean_text(text: str) -> str:
    """Text from documents or the model, ready for a widget that parses Textual markup."""
    return _OPEN_BRACKET.sub(r"\\[", escape(strip_controls(text)))
