"""Headings in plain text formats: Markdown (ATX "#" and setext underlines) and reStructuredText-
style underlined titles in .txt, .rst and other text files (changelogs, licences, READMEs).

A heading starts a section, and its trail ("Pygments changelog > Version 2.9.0") goes with every
chunk under it: a changelog entry that never names its version, or a licence clause under
"5. Termination", is then found by what its heading says. Lines inside fenced code blocks are
never headings (a "# comment" in a shell example is not a title).
"""

from __future__ import annotations

import re

from pgpt.runtime.documents.readers import Section

_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_FRONT_TITLE = re.compile(r"^title\s*[:=]\s*(.+)$")  # YAML "title: X", TOML 'title = "X"'
_FRONT_KEY = re.compile(r"^[\w-]+\s*[:=]")
_FRONT_MATTER_LINES = 200  # a closing marker further down is a rule in the text, not the end of front matter
# An underline: one punctuation character repeated (reST allows any of these; Markdown = and -).
_UNDERLINE = re.compile(r"^([=\-~^\"'`:.*+#_])\1{2,}\s*$")
# reST markup that renders as no text: hyperlink targets (".. _`Cache`: http://..."), anonymous ones
# ("__ http://..."), and image, figure and badge directives with their ":target:" option lines
_REST_TARGET = re.compile(r"^(?:\.\.\s+_[^:]*(?:`[^`]*`)?[^:]*:(?:\s+\S+)?|__\s+\S+)\s*$")  # ".. _install:" too
_REST_BADGES = re.compile(r"^\s*(?:\|[^|\s][^|]*\|\s*)+$")  # a line of substitutions alone: "|pypi| |ci|"
# an admonition's marker reads as its word: ".. note:: Needs Python 3.12" -> "Note: Needs Python 3.12"
_REST_ADMONITION = re.compile(r"^\.\.\s+(note|warning|tip|important|caution|attention|danger|error|hint|seealso)::\s*",
                              re.IGNORECASE)
_REST_IMAGE = re.compile(r"^\.\.\s+(?:\|[^|]+\|\s+)?(?:image|figure)::")
_REST_OPTION = re.compile(r"^\s+:[\w-]+:")
# a comment: ".." alone or followed by text that is no directive ("name::"), target ("_"), substitution
# ("|name|") nor footnote or citation ("[1]")
_REST_COMMENT = re.compile(r"^\.\.(?:[ \t]*$|[ \t]+(?![_|\[])(?![\w.+-]+::).*$)")


def markdown_sections(text: str) -> list[Section]:
    """Sections split at ATX headings and setext (``===``/``---`` underlined) headings."""
    lines = text.splitlines()
    titles: dict[int, tuple[int, str]] = {}  # line index -> (level, title)
    skip: set[int] = set()  # underline lines
    fenced = False
    start = _front_matter(lines, titles, skip)
    for index, line in enumerate(lines[start:], start):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        atx = _ATX.match(line)
        if atx:
            titles[index] = (len(atx.group(1)), atx.group(2))
        elif index and _setext(lines, index) and line.strip()[0] in "=-":
            titles[index - 1] = (1 if line.strip()[0] == "=" else 2, lines[index - 1].strip())
            skip.add(index)
    return _split(lines, titles, skip)


def _front_matter(lines: list[str], titles: dict[int, tuple[int, str]], skip: set[int]) -> int:
    """Leave out a static-site generator's front matter (YAML between ``---`` lines, TOML between
    ``+++``) and make its title the document's heading; the index of the first line after it.
    Indexed as text it was a passage of its own, "--- title: ... author: ... tags: [a, b] ---",
    shown as a closest passage (t47)."""
    if not lines or lines[0].strip() not in ("---", "+++"):
        return 0
    marker = lines[0].strip()
    ends = ("---", "...") if marker == "---" else ("+++",)
    end = next((i for i, line in enumerate(lines[1:_FRONT_MATTER_LINES], 1) if line.strip() in ends), None)
    keys = [line for line in lines[1:end or 1] if line.strip() and not line.lstrip().startswith("#")]
    if end is None or not keys or not _FRONT_KEY.match(keys[0]):
        return 0  # a rule at the top of the text, not front matter: it has no end, or its first line is no key
    skip.update(range(end + 1))
    for line in lines[1:end]:
        if found := _FRONT_TITLE.match(line):
            title = found.group(1).strip().strip("'\"").strip()
            if title:  # the heading of the text before the first heading of the body
                lines[end] = title
                skip.discard(end)
                titles[end] = (1, title)
            break
    return end + 1


def underlined_sections(text: str) -> list[Section]:
    """Sections split at reST-style titles: a line underlined (and maybe overlined) with one
    repeated punctuation character; levels in the order the styles first appear, as reST does."""
    lines = text.splitlines()
    titles: dict[int, tuple[int, str]] = {}
    skip: set[int] = set()
    styles: list[tuple[str, bool]] = []
    for index in range(1, len(lines)):
        if not _setext(lines, index) or lines[index - 1][:1].isspace():
            continue
        char = lines[index].strip()[0]
        overline = index >= 2 and lines[index - 2].strip() == lines[index].strip()
        style = (char, overline)
        if style not in styles:
            styles.append(style)
        titles[index - 1] = (min(styles.index(style) + 1, 6), lines[index - 1].strip())
        skip.update({index, index - 2} if overline else {index})
    if not titles:
        return [Section(text)]
    return _split(lines, titles, skip)


def without_rest_markup(text: str) -> str:
    """``text`` (a .rst file) without the lines that render as nothing: a newcomer's question about
    DiskCache's licence was answered from ".. _`DiskCache Documentation`: http://...", and a badge's
    ".. image:: ...badge.svg" was the first passage found."""
    kept: list[str] = []
    in_image = in_comment = False
    for line in text.splitlines():
        if _REST_IMAGE.match(line):
            in_image = True
            continue
        if in_image and _REST_OPTION.match(line):
            continue
        in_image = False
        # a comment and its indented lines render as nothing: one answered "the gym code" (t65)
        in_comment = bool(_REST_COMMENT.match(line)) or (in_comment and line[:1] in (" ", "\t") and bool(line.strip()))
        if in_comment:
            kept.append("")
            continue
        if not (_REST_TARGET.match(line) or _REST_BADGES.match(line)):
            kept.append(_REST_ADMONITION.sub(lambda m: f"{m.group(1).capitalize()}: ", line))
    return "\n".join(kept)


def _setext(lines: list[str], index: int) -> bool:
    """Whether ``lines[index]`` underlines the line above it (a title, not a rule after a blank)."""
    line, above = lines[index].strip(), lines[index - 1].strip()
    if not re.search(r"[^\W_]", above) or not _UNDERLINE.match(line):
        return False
    return len(line) >= max(3, int(0.6 * len(above))) and len(above) <= 120


def _split(lines: list[str], titles: dict[int, tuple[int, str]], skip: set[int]) -> list[Section]:
    sections: list[Section] = []
    trail: list[str] = []
    body: list[str] = []
    for index, line in enumerate(lines):
        if index in skip:
            continue
        if index in titles:
            sections.append(Section("\n".join(body), heading=" > ".join(trail)))
            body = []
            level, title = titles[index]
            trail = trail[: level - 1] + [title]
        body.append(line)
    sections.append(Section("\n".join(body), heading=" > ".join(trail)))
    return sections
