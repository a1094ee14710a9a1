"""Rich Text Format (.rtf) as plain text: WordPad's, TextEdit's and many old office exports' format.

Read as any text file, an RTF document was indexed as its markup, "{\\rtf1\\ansi\\deff0 {\\fonttbl ..."
(t47). This reads it the way RTF readers do: groups and control words are followed, destinations
that hold no body text (font and colour tables, style sheets, document info, pictures, fields'
instructions, anything marked ``\\*``) are left out, ``\\par`` ends a paragraph, ``\\'hh`` bytes are
decoded in the document's code page (``\\ansicpgN``) and ``\\uN`` is a Unicode character followed by
``\\ucN`` fallback characters that are skipped.
"""

from __future__ import annotations

import re

# Destinations whose text is not the document's body.
_SKIPPED = frozenset(
    "fonttbl colortbl stylesheet listtable listoverridetable revtbl rsidtbl generator info pict object "
    "fldinst datafield themedata colorschememapping latentstyles datastore xmlnstbl mmathPr header footer "
    "headerl headerr headerf footerl footerr footerf footnote annotation atnid atnauthor bkmkstart bkmkend "
    "filetbl pgdsctbl operator author title subject keywords comment doccomm company creatim revtim printim "
    "buptim nonshppict shppict blipuid".split())
_CHARACTERS = {"par": "\n\n", "sect": "\n\n", "page": "\n\n", "line": "\n", "row": "\n", "tab": "\t",
               "cell": " | ", "emdash": "\u2014", "endash": "\u2013", "bullet": "\u2022", "lquote": "\u2018",
               "rquote": "\u2019", "ldblquote": "\u201c", "rdblquote": "\u201d", "emspace": " ", "enspace": " ",
               "qmspace": " "}
_TOKEN = re.compile(r"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|[\r\n]+|([^\\{}\r\n]+)",
                    re.DOTALL)


def is_rtf(data: bytes) -> bool:
    """Whether ``data`` is an RTF document (it starts with ``{\\rtf``)."""
    return data.lstrip()[:5] == b"{\\rtf"


def rtf_text(data: bytes) -> str:
    """The body text of an RTF document, paragraphs separated by blank lines."""
    out: list[str] = []
    pending = bytearray()  # \'hh bytes in a row: a double-byte code page's character is two of them
    state = _State()
    for word, arg, hexbyte, symbol, brace, text in _TOKEN.findall(data.decode("latin-1")):
        if hexbyte:
            if state.skip_one():
                continue
            if not state.ignorable:
                pending.append(int(hexbyte, 16))
            continue
        if pending:
            out.append(bytes(pending).decode(state.codepage, errors="replace"))
            pending.clear()
        if brace:
            state.open() if brace == "{" else state.close()
        elif symbol:
            _symbol(symbol, state, out)
        elif word:
            _word(word, arg, state, out)
        elif text and not state.ignorable:
            out.append(text[state.skip_run(len(text)):])
    if pending:
        out.append(bytes(pending).decode(state.codepage, errors="replace"))
    text = "".join(out).encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # \uN pairs: one character
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+\n", "\n", text)).strip()


class _State:
    """The reader's place: the group stack (each group's fallback count and whether it is skipped),
    the code page, and the fallback characters still to skip after a ``\\uN``."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bool]] = []
        self.uc = 1  # fallback characters after each \uN (\ucN sets it for the group)
        self.ignorable = False
        self.codepage = "cp1252"
        self.to_skip = 0

    def open(self) -> None:
        self.stack.append((self.uc, self.ignorable))

    def close(self) -> None:
        if self.stack:  # an unbalanced "}" in a damaged file is left alone
            self.uc, self.ignorable = self.stack.pop()
        self.to_skip = 0

    def skip_one(self) -> bool:
        if self.to_skip:
            self.to_skip -= 1
            return True
        return False

    def skip_run(self, length: int) -> int:
        skipped = min(self.to_skip, length)
        self.to_skip -= skipped
        return skipped


def _symbol(symbol: str, state: _State, out: list[str]) -> None:
    if symbol == "*":
        state.ignorable = True
    elif state.ignorable or state.skip_one():
        return
    elif symbol in "\\{}":
        out.append(symbol)
    elif symbol == "~":
        out.append("\u00a0")
    elif symbol in "\r\n":  # "\" before a line end is \par
        out.append("\n\n")
    elif symbol == "_":
        out.append("-")  # a non-breaking hyphen; "\-" (an optional hyphen) is no character


def _word(word: str, arg: str, state: _State, out: list[str]) -> None:
    if word in _SKIPPED:
        state.ignorable = True
    elif word == "ansicpg" and arg:
        state.codepage = f"cp{arg}" if _known_codec(f"cp{arg}") else "cp1252"
    elif word == "uc" and arg:
        state.uc = max(0, int(arg))
    elif state.ignorable:
        return
    elif word == "u" and arg:
        code = int(arg)
        out.append(chr(code + 0x10000 if code < 0 else code) if -0x8000 <= code <= 0x10FFFF else "\ufffd")
        state.to_skip = state.uc
    elif word in _CHARACTERS:
        out.append(_CHARACTERS[word])


def _known_codec(name: str) -> bool:
    import codecs

    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True
