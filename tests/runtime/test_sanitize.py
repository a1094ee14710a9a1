"""The one output sanitizer, on the escape sequences and names of probe rows 3.7 and 3.8."""

from __future__ import annotations

import json
import re

from hostile_files import C1_NAME, ESCAPE_NAME, ESCAPES
from pgpt.runtime.sanitize import dumps_json, one_line, strip_controls

# What must never reach a terminal: C0 but tab and newline, DEL, C1, and lone surrogates.
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def test_terminal_text_keeps_words_and_loses_every_control() -> None:
    """Probe 3.7: ESC[2J, OSC 52 (BEL and ST), OSC 8, OSC 0, C1 CSI/OSC/ST and SGR are removed whole."""
    clean = strip_controls(ESCAPES + "\ttab\nline\r\nend")
    assert not RAW.search(clean)
    assert "cHduZWQ" not in clean and "pwned" not in clean and "evil.example" not in clean  # payloads go too
    assert "Clear  screen." in clean and "click" in clean and "\ttab\nline\nend" in clean
    assert "[bold red]MARKUP[/bold red]" in clean  # markup is the widgets' business (pgpt.tui.sanitize)


def test_file_names_with_escapes_or_invalid_utf8_become_printable() -> None:
    """Probe 3.8 and 3.9: names with ESC/OSC 52/C1, and bytes that are not UTF-8 (lone surrogates)."""
    import os

    for name in (ESCAPE_NAME, C1_NAME, os.fsdecode(b"m_bad\xff\xfename.txt")):
        clean = strip_controls(name)
        assert not RAW.search(clean) and clean.endswith("name.txt")
        clean.encode("utf-8")  # printable: no UnicodeEncodeError


def test_json_keeps_the_text_but_escapes_every_control() -> None:
    """Probe 3.7: `search --json` and `ask --json` printed raw U+009B/U+009C/U+009D."""
    import os

    data = {"text": ESCAPES, "path": os.fsdecode(b"/d/m_bad\xff\xfename.txt"), "name": C1_NAME, "del": "a\x7fb",
            "fine": "caf\u00e9 \u4e2d\u6587"}
    text = dumps_json(data, indent=2)
    assert not RAW.search(text)
    assert "caf\u00e9 \u4e2d\u6587" in text  # other non-ASCII stays readable
    # nothing lost, a name's bytes that are not UTF-8 as \\xff: a lone surrogate's \\udcff escape was valid
    # JSON that strict parsers refuse, and Python could not encode the string again (t71)
    assert json.loads(text) == {**data, "path": "/d/m_bad\\xff\\xfename.txt"}
    json.loads(text)["path"].encode("utf-8")
    assert json.loads(dumps_json({"pdf": "a\ud800b"})) == {"pdf": "a\ufffdb"}  # another lone surrogate


def test_one_line_fields_cannot_split_or_forge_a_line() -> None:
    assert one_line("report\n[1] forged.txt\tx\x1b[2J") == "report [1] forged.txt x"


def test_invisible_characters_that_change_what_is_read_are_removed() -> None:
    """Bidi overrides ("Trojan Source"), zero-width spaces and tag characters reached the terminal:
    a document could show one text and mean another, or hide a sentence from the eye."""
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "ignore the sources")
    text = f"pay \u202eecnalab\u202c now\u2066!\u2069 zero\u200bwidth\ufeff {hidden}done"
    assert strip_controls(text) == "pay ecnalab now! zerowidth done"
    joined = "emoji \U0001F468\u200d\U0001F469 and \u200c stay"  # joiners shape emoji and scripts
    assert strip_controls(joined) == joined
