"""Text a document's reader never sees, left out of Markdown, reStructuredText, .docx and PDF files as
the HTML reader leaves out hidden elements.

Whoever can write to a shared folder can hide a sentence that answers for everyone: a Markdown
``<!-- comment -->`` or ``<div style="display:none">``, a reST comment, a Word run marked hidden
(``w:vanish``) were indexed, answered from and quoted as if visible (t65: "The gym code is 9292",
from a hidden div). Fenced code keeps its text: a Markdown guide about HTML comments shows them.
A PDF hides text by drawing it invisibly (text render mode 3), in white where nothing dark was
filled under it, outside the page or at a size nobody can read; on a page that shows an image,
invisible text is kept: it is an OCR text layer over a scan (OCRmyPDF and scanners write it so),
the only text such a page has.
"""

from __future__ import annotations

import re
from typing import Any

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# "[//]: # (text)" and "[comment]: <> (text)": link definitions used as comments, rendered as nothing
_LINK_COMMENT = re.compile(r"^[ \t]{0,3}\[(?://|comment|#)\]:[ \t]*(?:#|<>)(?:[ \t].*)?$", re.IGNORECASE | re.MULTILINE)
# an HTML element hidden as the HTML reader reads it: the hidden attribute, display:none, visibility:hidden
_HIDDEN = re.compile(r"<(?P<tag>[a-z][a-z0-9]*)\b(?P<attrs>[^>]*)>", re.IGNORECASE)
_VOID = {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_HIDING = re.compile(r"""(?:^|\s)hidden(?:\s|=|$)|display\s*:\s*none|visibility\s*:\s*hidden""", re.IGNORECASE)


def markdown_visible(text: str) -> str:
    """``text`` (a Markdown file) without its HTML comments, comment link definitions and hidden
    HTML elements, outside fenced code; their lines stay (blank), so headings and paragraphs do too."""
    parts: list[str] = []
    prose: list[str] = []
    fenced = False
    for line in text.split("\n"):
        fence = bool(_FENCE.match(line))
        if not (fence or fenced):
            prose.append(line)
            continue
        if fence and not fenced and prose:  # a code block opens: what came before is prose
            parts.append(_visible("\n".join(prose)))
            prose = []
        parts.append(line)
        fenced ^= fence
    if prose:
        parts.append(_visible("\n".join(prose)))
    return "\n".join(parts)


def _visible(text: str) -> str:
    """One stretch of Markdown outside code, its hidden parts blanked (their line breaks kept)."""
    text = _LINK_COMMENT.sub("", _COMMENT.sub(_keep_lines, text))
    position = 0
    while (opening := _HIDDEN.search(text, position)) is not None:
        if not _HIDING.search(opening.group("attrs")):
            position = opening.end()
            continue
        tag = opening.group("tag").lower()
        end = opening.end() if tag in _VOID or opening.group("attrs").rstrip().endswith("/") else \
            _closing(text, tag, opening.end())
        text = text[:opening.start()] + _keep_lines(text[opening.start():end]) + text[end:]
        position = opening.start()
    return text


def _closing(text: str, tag: str, start: int) -> int:
    """Where the element opened before ``start`` ends: after its matching closing tag (nested ones of
    the same name counted), else at the next blank line (an HTML block's end in Markdown)."""
    depth = 1
    for match in re.finditer(rf"<(/?){tag}\b[^>]*>", text[start:], re.IGNORECASE):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return start + match.end()
    blank = text.find("\n\n", start)
    return len(text) if blank < 0 else blank


def _keep_lines(found: Any) -> str:
    """A hidden stretch (a string or a regex match) replaced by its line breaks only."""
    text = found if isinstance(found, str) else found.group(0)
    return "\n" * text.count("\n")


def docx_paragraph_text(paragraph: Any) -> str:
    """A .docx paragraph's text without its runs marked hidden (Word's "Hidden" font, ``w:vanish``);
    ``paragraph.text`` when none is (the common case, and the same text)."""
    runs = paragraph.runs
    if not any(run.font.hidden for run in runs):
        return str(paragraph.text)
    from docx.text.run import Run

    shown = []
    for item in paragraph.iter_inner_content():  # runs and hyperlinks (which hold runs), in order
        shown.extend(run.text for run in ([item] if isinstance(item, Run) else item.runs) if not run.font.hidden)
    return "".join(shown)


# A PDF's text-showing operators and the index of the operand that holds their text.
_SHOWS = {b"Tj": 0, b"'": 0, b'"': 2, b"TJ": 0}
_INVISIBLE_MODES = (3, 7)  # neither filled nor stroked (7 also adds to the clip path): drawn as nothing
_SMALLEST_PT = 1.0  # below a point, text is a hiding place, not print
_MARGIN_PT = 72.0  # text that starts this far left of the page may still run onto it
# Fill colours (gray, RGB, CMYK, or the colour space's own) and what fills: white text drawn on the white
# page was indexed and found (t69: "1 1 1 rg ... (zebrapassword) Tj"). An image or form (Do) may be
# under the text too.
_FILL_COLOURS = (b"g", b"rg", b"k", b"sc", b"scn")
_PAINTS = (b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*", b"sh", b"Do")


def pdf_visible_text(page: Any) -> tuple[str, int]:
    """A pypdf page's extracted text without the text drawn where nobody sees it, and how many
    text-showing operations were left out (0 in the common case: the same text as extract_text)."""
    from pypdf.generic import ArrayObject, TextStringObject

    box = page.mediabox
    left, bottom, right, top = float(box.left), float(box.bottom), float(box.right), float(box.top)
    scanned = _shows_image(page)
    state = {"mode": 0, "size": 12.0, "white": 0.0}
    saved: list[dict[str, float]] = []
    hidden, painted = 0, False  # painted: something not white was filled on the page (a dark box)

    def before(operator: bytes, operands: list[Any], cm: list[float], tm: list[float]) -> None:
        nonlocal hidden, painted
        if operator == b"q":
            saved.append(dict(state))
        elif operator == b"Q" and saved:
            state.update(saved.pop())
        elif operator == b"Tr" and operands:
            state["mode"] = _number(operands[0], 0)
        elif operator == b"Tf" and len(operands) >= 2:
            state["size"] = _number(operands[1], 12.0)
        elif operator in _FILL_COLOURS:
            state["white"] = float(_is_white(operands))
        elif operator in _PAINTS and not state["white"]:
            painted = True
        elif operator in _SHOWS and len(operands) > _SHOWS[operator]:
            x, y, scale = _placement(cm, tm)
            off_page = not (left - _MARGIN_PT <= x <= right and bottom <= y <= top)
            # white text on a page where nothing dark was filled before it (white on a dark box is legitimate)
            blank = state["white"] and state["mode"] in (0, 4) and not painted
            unseen = (state["mode"] in _INVISIBLE_MODES or blank) and not scanned
            if off_page or unseen or (abs(state["size"]) * scale < _SMALLEST_PT and not scanned):
                # emptied before pypdf reads it: its extraction then lays out the visible text alone
                operands[_SHOWS[operator]] = ArrayObject() if operator == b"TJ" else TextStringObject("")
                hidden += 1

    return page.extract_text(visitor_operand_before=before) or "", hidden


def _placement(cm: list[float], tm: list[float]) -> tuple[float, float, float]:
    """Where text starts on the page (x, y in points) and how much its font size is scaled there."""
    a, b = tm[0] * cm[0] + tm[1] * cm[2], tm[0] * cm[1] + tm[1] * cm[3]
    c, d = tm[2] * cm[0] + tm[3] * cm[2], tm[2] * cm[1] + tm[3] * cm[3]
    x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
    y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
    return x, y, abs(a * d - b * c) ** 0.5


def _is_white(operands: list[Any]) -> bool:
    """Whether a fill colour's operands are white: gray or RGB at 1, CMYK at 0 (a pattern's name is not)."""
    values = [_number(value, -1.0) for value in operands]
    if len(values) in (1, 3):
        return all(value >= 0.98 for value in values)
    return len(values) == 4 and all(0.0 <= value <= 0.02 for value in values)


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # a damaged operand: pypdf reads on, so do we
        return default


def _shows_image(page: Any) -> bool:
    """Whether the page's resources hold an image (a scan under an OCR layer)."""
    try:
        objects = page.get("/Resources", {}).get_object().get("/XObject", {}).get_object()
        return any(item.get_object().get("/Subtype") == "/Image" for item in objects.values())
    except Exception:  # damaged resources: treat the page as an ordinary one
        return False
