"""clean_text: what the app shows of document and model text has no terminal controls and no markup."""

from __future__ import annotations

from textual.content import Content

from pgpt.tui.sanitize import clean_text


def test_clean_text_drops_osc_52_clipboard_writes() -> None:
    assert clean_text("a\x1b]52;c;cm0gLXJmIH4=\x07b") == "ab"
    assert clean_text("a\x1b]52;c;cm0gLXJmIH4=\x1b\\b") == "ab"
    assert clean_text("a\x9d52;c;cm0gLXJmIH4=\x9cb") == "ab"


def test_clean_text_drops_csi_and_c1_controls() -> None:
    assert clean_text("x\x1b[31mred\x1b[0m\x1b[2J") == "xred"
    assert clean_text("p\x9b31mq\x85") == "pq"
    assert clean_text("tab\tnew\nline\r\n\x00\x07\x08\x7f") == "tab\tnew\nline\n"


def test_clean_text_escapes_markup() -> None:
    for markup in ("[@click=app.quit]x[/]", "[B]bold[/B] [$var] [link='https://e.x']y[/link]"):
        cleaned = clean_text(markup)
        content = Content.from_markup(cleaned)
        assert content.plain == markup and not content.spans


def test_clean_text_output_has_no_control_characters() -> None:
    every_char = "".join(chr(c) for c in range(0x00, 0xA0)) + "[@click=app.quit]x[/]"
    cleaned = clean_text(every_char)
    assert not [c for c in cleaned if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0]


def test_paths_and_lines_are_cut_in_terminal_cells() -> None:
    """The Docs list kept a CJK path's end by characters: two cells each, so ".md" was cut to ".m" (t54)."""
    from rich.cells import cell_len

    from pgpt.runtime.sanitize import cells, first_cells, last_cells
    from pgpt.tui.screens.documents.widgets import short_path

    name = "/srv/docs/Café Ærøskøbing – notes é 日本の店長.md"
    shown = short_path(name, 24)
    assert shown.startswith("…") and shown.endswith("日本の店長.md") and cell_len(shown) <= 24, shown
    for text in (name, "東京の店長は誰ですか", "e\u0301t\u00e9", "한국어 😀"):
        assert cells(text) == cell_len(text)
        assert cell_len(first_cells(text, 9)) <= 9 and cell_len(last_cells(text, 9)) <= 9
    assert first_cells("東京の店長", 5) == "東京" and last_cells("東京の店長", 4) == "店長"


def test_an_emoji_s_presentation_selector_goes() -> None:
    """With U+FE0F a sign is two cells for Textual and one in tmux 3.3: the border moved a column (t54)."""
    from rich.cells import cell_len

    cleaned = clean_text("\u26a0\ufe0f Do not run as root \u2764\ufe0f")
    assert cleaned == "\u26a0 Do not run as root \u2764" and cell_len(cleaned) == len(cleaned)


def test_a_last_backslash_shows_once_and_leaves_the_next_tag_alone() -> None:
    """A passage sentence ending in "\\" showed a literal "[/reverse]" and reversed every passage after
    it, and a last backslash showed doubled (t65)."""
    from textual.markup import to_content

    from pgpt.tui.chat.library import describe_hits

    sentence = "The shared drive for bonus files is \\\\fileserver\\bonus\\"
    plain, markup = describe_hits([{"source": "share.txt", "page": 0, "text": f"Ask HR first. {sentence}"},
                                   {"source": "other.txt", "page": 0, "text": "Nothing here."}], [sentence, ""])
    content = to_content(markup)
    assert "[/reverse]" not in str(content) and "bonus\\\u200b" in str(content) and "bonus\\\\" not in str(content)
    [span] = content.spans
    assert str(content)[span.start:span.end] == sentence + "\u200b"  # the highlight ends with the sentence
    assert str(to_content(clean_text("a\\"))) == "a\\\u200b"
