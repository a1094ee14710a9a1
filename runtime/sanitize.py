"""The one output sanitizer: text from file names, documents and models, safe for a terminal or JSON.

A file name or a document can hold terminal escape sequences (``ESC[2J`` clears the screen, OSC 52
writes the clipboard) and C1 controls (U+009B is a one-character CSI on many terminals); a file
name with invalid UTF-8 bytes reaches Python as lone surrogates, which cannot even be printed.
Every string of that origin passes ``strip_controls`` before plain output, or ``dumps_json``
before JSON output, wherever it is shown: CLI, app, server, logs shown on screen.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

# Whole escape sequences first, so their parameters (an OSC 52 clipboard payload, say) go too:
# CSI (ESC [ or the C1 byte 0x9b) up to its final byte; OSC, DCS, SOS, PM and APC strings
# (ESC ] P X ^ _ or C1 0x9d 0x90 0x98 0x9e 0x9f) up to BEL, ST or the end of the line; then any
# other ESC + one char.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x7e]?"
)
# Every C0 control but tab and newline, DEL, every C1 control; and what shows nothing yet changes
# what is read: bidi overrides and isolates (U+202A-202E, U+2066-2069: "Trojan Source" text that
# reads backwards), zero-width space, word joiner, a stray BOM, and Unicode tag characters
# (U+E0000-E007F), which hide a whole sentence from the eye.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b\u2060\ufeff\U000e0000-\U000e007f]")
# Lone surrogates: what os.fsdecode makes of bytes that are not UTF-8 (and what a broken PDF
# text layer may give); no encoder accepts them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# In JSON text (already escaped by json.dumps for C0, quotes and backslashes): DEL, C1, surrogates.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\ud800-\udfff]")


def strip_controls(text: str) -> str:
    """Text fit for a terminal: escape sequences and controls removed, newlines and tabs kept.

    Args:
        text: Any text from a file name, a document or a model.

    Returns:
        The text without ESC sequences, C0 controls (but ``\\n`` and ``\\t``), DEL or C1
        controls; lone surrogates become U+FFFD; ``\\r\\n`` becomes ``\\n``.
    """
    text = _SURROGATE.sub("\ufffd", text.replace("\r\n", "\n"))
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


# Characters that show as nothing or turn the text around: in a file name, two names looked the same
# ("re\u200bport.txt" and "report.txt" both listed as report.txt, t50), so a name shows them as escapes.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


# Characters with no look and no meaning inside a word: a zero-width space, a word joiner, a BOM, a soft
# hyphen. "77\u200b88" showed as 7788 while the index and the answer check held it split (t65).
_NO_LOOK = re.compile("[\u200b\u2060\ufeff\u00ad]")


def without_invisible(text: str) -> str:
    """``text`` without the characters that show as nothing and mean nothing inside a word."""
    return _NO_LOOK.sub("", text) if not text.isascii() else text


def shown_name(text: str) -> str:
    """A file name for a listing: ``one_line``, with each invisible or direction-changing character
    written as its escape (``\\u200b``), so that names that differ only in them look different and
    the name shown can be typed back (``forget`` takes it)."""
    return one_line(_INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def one_line(text: str) -> str:
    """``strip_controls`` for a field shown on one line (a file name in a list): its newlines and
    tabs become spaces, so a file named with a newline cannot split or forge a line."""
    return re.sub(r"[\n\t]", " ", strip_controls(text))


def dumps_json(data: Any, **kwargs: Any) -> str:
    """``json.dumps`` that keeps the text but writes no raw control character.

    json already escapes C0 controls; this also escapes DEL, the C1 controls and lone
    surrogates as ``\\uXXXX``, so the output is safe on a terminal and still decodes to the same
    strings. Other non-ASCII text stays readable (``ensure_ascii=False``) where standard output
    writes Unicode; where it does not (a latin-1 locale, ``PYTHONIOENCODING=ascii``), it is escaped
    too, so the JSON is whole and valid instead of a failure.

    Args:
        data: A JSON-serialisable value.
        **kwargs: Passed to ``json.dumps`` (``indent``, ``sort_keys``, ...).
    """
    kwargs.setdefault("ensure_ascii", not unicode_output())  # a latin-1 or ASCII stdout gets \\uXXXX escapes
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(_whole_text(data), **kwargs))


def _whole_text(value: Any) -> Any:
    """``value`` with no lone surrogate in its strings: a file name's bytes that are not UTF-8 as
    ``\\xe9`` (what Python's backslashreplace writes), any other as U+FFFD. As ``\\udce9`` escapes
    the JSON was valid, but strict parsers (serde_json, Go) refuse them and Python's own string
    could not be encoded again (t71)."""
    if isinstance(value, str):
        if not _SURROGATE.search(value):
            return value
        if not _only_escaped_bytes(value):
            return _SURROGATE.sub("\ufffd", value)
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {_whole_text(key): _whole_text(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_whole_text(item) for item in value]
    return value


def _only_escaped_bytes(text: str) -> bool:
    """Whether every surrogate in ``text`` is one of os.fsdecode's escaped bytes (U+DC80-U+DCFF)."""
    return all("\udc80" <= char <= "\udcff" for char in _SURROGATE.findall(text))


def unicode_output(stream: Any = None) -> bool:
    """Whether ``stream`` (standard output by default) writes every character (a UTF encoding): a
    latin-1 locale's or ``PYTHONIOENCODING=ascii``'s cannot, and a Chinese result failed as "a bug
    in pgpt" (t50)."""
    return codec_name(getattr(sys.stdout if stream is None else stream, "encoding", None) or "utf-8").startswith("utf")


def codec_name(encoding: str) -> str:
    """Python's own name of an encoding ("ANSI_X3.4-1968" is "ascii", "UTF8" "utf-8"); '' for an unknown one."""
    import codecs

    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return ""


def tolerant_streams() -> None:
    """Let standard output and error write what their encoding cannot as escapes (``\\u4e0a``)
    instead of raising UnicodeEncodeError: a document's or a model's text in Cyrillic or Chinese on
    a latin-1 terminal. Called at a command's start; a UTF stream is left as it is."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if encoding and hasattr(stream, "reconfigure") and not encoding.lower().replace("-", "").startswith("utf"):
            stream.reconfigure(errors="backslashreplace")


def cells(text: str) -> int:
    """The terminal cells ``text`` takes: two for a wide (CJK) character, none for a combining one.
    A line cut by characters wrapped on a CJK name and stayed on the screen (t54)."""
    import unicodedata

    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def first_cells(text: str, width: int) -> str:
    """The longest start of ``text`` that takes at most ``width`` terminal cells."""
    if cells(text) <= width:
        return text
    used = 0
    for end, char in enumerate(text):
        used += cells(char)
        if used > width:
            return text[:end]
    return text


def last_cells(text: str, width: int) -> str:
    """The longest end of ``text`` that takes at most ``width`` terminal cells."""
    return first_cells(text[::-1], width)[::-1]


def hanging(text: str, width: int) -> str:
    """``text`` with each line longer than ``width`` cells wrapped at spaces, its next lines under its
    own indent or after its number ("  [1] ", "  2. "): a terminal wraps them to column 0 (t54).
    ``width`` 0 (a file or a pipe): ``text`` as it is."""
    if width <= 0:
        return text
    out: list[str] = []
    for line in text.split("\n"):
        indent = hang_indent(line)
        if cells(line) <= width or indent > width // 2:
            out.append(line)
            continue
        row, lead = "", line[:indent]
        for word in line[indent:].rstrip(" ").split(" "):
            if row and cells(row) + 1 + cells(word) > width - indent:
                out.append(lead + row)
                row, lead = word, " " * indent
            else:
                row = f"{row} {word}" if row else word
        out.append(lead + row)
    return "\n".join(out)


def hang_indent(line: str) -> int:
    """Where a wrapped ``line`` goes on: after its leading spaces and its number ("  [1] ", "  2. ")."""
    return _HANGS_AFTER.match(line).end()  # type: ignore[union-attr]  # (the pattern matches "")


_HANGS_AFTER = re.compile(r" *(?:\[\d+\] |\d+\. )?")

