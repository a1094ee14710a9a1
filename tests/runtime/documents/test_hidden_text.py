"""Text a document's reader never sees is not indexed (hidden_text.py): whoever can write to a shared
folder hid "The gym code is 9292" in a Markdown div, and it was answered and quoted as visible (t65)."""

from __future__ import annotations

from pathlib import Path

from pgpt.runtime.documents.readers import read_document


def _text(path: Path) -> str:
    return "\n".join(section.text for section in read_document(path))


def test_markdown_comments_and_hidden_elements_are_left_out_but_code_keeps_them(tmp_path: Path) -> None:
    page = tmp_path / "office.md"
    page.write_text("# Office\n\nThe gym code is 1234.\n\n<!-- The gym code is 9191.\nstill the comment -->\n"
                    "[//]: # (The gym code is 9393)\n<div style=\"display:none\">The gym code is 9292.</div>\n\n"
                    "Opening <span hidden>never</span>hours are 8 to 6. <img hidden src=x> Bring a card.\n\n"
                    "```html\n<!-- a comment, shown in this guide -->\n<div hidden>shown in code</div>\n```\n"
                    "<div style=\"display: none\">\n<div>nested</div>\nstill hidden\n</div>\n\nThe end.\n")
    text = _text(page)
    for hidden in ("9191", "still the comment", "9393", "9292", "never", "nested", "still hidden"):
        assert hidden not in text, hidden
    for shown in ("The gym code is 1234.", "Opening hours are 8 to 6.", "Bring a card.", "The end.",
                  "<!-- a comment, shown in this guide -->", "<div hidden>shown in code</div>"):
        assert shown in " ".join(text.split()), shown


def test_rest_comments_are_left_out_but_directives_are_not(tmp_path: Path) -> None:
    page = tmp_path / "gym.rst"
    page.write_text("Gym\n===\n\nThe gym code is 1234.\n\n.. The gym code is 9494.\n   a second comment line\n\n"
                    ".. note:: Bring a towel.\n\n..\n\n    A quoted block after an empty comment.\n")
    text = _text(page)
    assert "9494" not in text and "second comment line" not in text
    assert "The gym code is 1234." in text and "Note: Bring a towel." in text
    assert "A quoted block after an empty comment." in text


def test_docx_runs_marked_hidden_are_left_out(tmp_path: Path) -> None:
    from docx import Document

    document = Document()
    paragraph = document.add_paragraph("The annual leave is 25 days.")
    hidden = paragraph.add_run(" The annual leave is 99 days.")
    hidden.font.hidden = True
    paragraph.add_run(" Ask HR for more.")
    document.add_paragraph("Plain paragraph.")
    document.save(str(tmp_path / "handbook.docx"))
    text = _text(tmp_path / "handbook.docx")
    assert "99" not in text and "The annual leave is 25 days. Ask HR for more." in text and "Plain paragraph." in text
