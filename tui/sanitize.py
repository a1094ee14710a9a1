"""Make document and model text safe to show: no terminal control sequences, no Textual markup."""

from __future__ import annotations

import re

from textual.markup import escape

# Whole escape sequences first, so their parameters (an OSC 52 clipboard payload, say) go too:
# CSI (ESC [ or the C1 byte 0x9b) up to its final byte; OSC, DCS, SOS, PM and APC strings
# (ESC ] P X ^ _ or C1 0x9d 0x90 0x98 0x9e 0x9f) up to BEL, ST or the end of the line; then any other ESC + one char.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x7e]?"
)
# Every C0 control but tab and newline, DEL, and every C1 control.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Textual's markup parser opens a tag at any "[" without a backslash before it, while
# `escape` only covers tags that start with a-z, #, / or @; this catches the rest ("[B]", "[$x]").
_OPEN_BRACKET = re.compile(r"(?<!\\)\[")


def strip_controls(text: str) -> str:
    """Remove escape sequences and control characters, keeping newlines and tabs."""
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


def clean_text(text: str) -> str:
    """Text from documents or the model, ready for a widget that parses Textual markup."""
    return _OPEN_BRACKET.sub(r"\\[", escape(strip_controls(text)))
