"""Text a document's reader never sees, left out of Markdown, reStructuredText and .docx files as the
HTML reader leaves out hidden elements.

Whoever can write to a shared folder can hide a sentence that answers for everyone: a Markdown
``<!-- comment -->`` or ``<div style="display:none">``, a reST comment, a Word run marked hidden
(``w:vanish``) were indexed, answered from and quoted as if visible (t65: "The gym code is 9292",
from a hidden div). Fenced code keeps its text: a Markdown guide about HTML comments shows them.
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
