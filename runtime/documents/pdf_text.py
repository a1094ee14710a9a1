"""Paragraphs out of a PDF's extracted lines: running headers and footers dropped, hyphenation
undone, lines joined into paragraphs, and a paragraph that runs over a page break kept whole.

pypdf gives one line of text per printed line and nothing else. Without this, a PDF page is one
long "paragraph" cut into word windows at arbitrary places, every window carries the page's header
and footer, and words broken at line ends ("re-\\nceive") match neither the full-text index nor
the embedder's vocabulary.
"""

from __future__ import annotations

import re
from collections import Counter

# A line this much shorter than the page's full lines ends its paragraph: in set text only the
# last line of a paragraph (or a heading, a list item, a line of code) stops early.
SHORT_LINE = 0.75
_EDGE_LINES = 2  # lines at the top and at the bottom of a page that may be a running header/footer
_BROKEN_WORD = re.compile(r"([^\W\d_]+)-$")
_WORD_START = re.compile(r"^([^\W\d_]+)")
_SENTENCE_END = re.compile(r"[.!?:]['\")\u201d\u2019]*$")


def pdf_paragraphs(pages: list[str]) -> list[list[str]]:
    """The paragraphs of each page (text as extracted, one string per page, in order).

    A paragraph that starts on one page and ends on the next belongs wholly to the first.
    """
    lines = [[" ".join(line.split()) for line in text.splitlines() if line.strip()] for text in pages]
    lines = _drop_running_lines(lines)
    words = _inline_hyphenated(lines)
    full = _full_width([line for page in lines for line in page])  # the document's measure, not a page's
    out: list[list[str]] = []
    open_at: tuple[int, int] | None = None  # (page, paragraph) of a paragraph not ended yet
    for page in lines:
        if open_at is not None and page and _continues(page[0]):
            paragraphs = _paragraphs(page, words, full)
            where, index = open_at
            out[where][index] = _join(out[where][index], paragraphs.pop(0), words)
        else:
            paragraphs = _paragraphs(page, words, full)
        out.append(paragraphs)
        if not page or _ends_paragraph(page[-1], full) or _SENTENCE_END.search(page[-1]):
            open_at = None
        elif paragraphs:
            open_at = (len(out) - 1, len(paragraphs) - 1)
    return out


def _continues(first_line: str) -> bool:
    """Whether a page's first line goes on with the previous page's last sentence."""
    return first_line[:1].islower() or first_line[:1].isdigit()


def _drop_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Remove lines that repeat at the top or the bottom of most pages, the same text but for one
    number (the page's): a templated page ("Invoice 1001 for customer 17: total 250 euros.", one
    record a page) differs in several numbers, and such lines, the documents' facts, were dropped;
    a page whose every line would go keeps them (a file was skipped as "no text in the file", t47)."""
    if len(pages) < 3:
        return pages
    needed = max(3, len(pages) // 2)
    running_top = _running([page[:_EDGE_LINES] for page in pages], needed)
    running_bottom = _running([page[-_EDGE_LINES:] for page in pages], needed)
    cleaned = []
    for page in pages:
        last = len(page) - _EDGE_LINES
        kept = [line for index, line in enumerate(page)
                if not (index < _EDGE_LINES and _shape(line) in running_top)
                and not (index >= last and _shape(line) in running_bottom)]
        cleaned.append(kept if kept or not page else page)
    return cleaned


def _running(edges: list[list[str]], needed: int) -> set[str]:
    """The shapes (digits ignored) of the edge lines on at least ``needed`` pages that are the same
    text on each, or differ only in a page number: one number that goes up with the page."""
    seen: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
    for page, lines in enumerate(edges):
        for shape, line in {_shape(line): line for line in reversed(lines)}.items():  # a page's first of a shape
            seen.setdefault(shape, []).append((page, tuple(re.findall(r"\d+", line))))
    return {shape for shape, found in seen.items() if len(found) >= needed and _same_but_page_number(found)}


def _same_but_page_number(found: list[tuple[int, tuple[str, ...]]]) -> bool:
    """Whether the numbers of a line's occurrences (page index, numbers) differ only in a page number:
    one number, at a fixed offset from the page's index on most pages ("Total: 250 euros" at the foot
    of each invoice differs too, and is the invoice's fact)."""
    varying = [column for column in zip(*(numbers for _, numbers in found)) if len(set(column)) > 1]
    if not varying:
        return True
    if len(varying) > 1:
        return False
    offsets = Counter(int(number) - page for number, (page, _) in zip(varying[0], found))
    return offsets.most_common(1)[0][1] >= 0.8 * len(found)


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.lower().split()))


def _inline_hyphenated(pages: list[list[str]]) -> set[str]:
    """Hyphenated words that occur within a line somewhere ("general-purpose"): their hyphen is real."""
    return {m.group().lower() for page in pages for line in page
            for m in re.finditer(r"[^\W\d_]+-[^\W\d_]+", line)}


def _full_width(page: list[str]) -> int:
    lengths = sorted(len(line) for line in page)
    return lengths[int(len(lengths) * 0.9)] if lengths else 0


def _ends_paragraph(line: str, full: int) -> bool:
    return len(line) < SHORT_LINE * full and not _BROKEN_WORD.search(line)


def _paragraphs(page: list[str], words: set[str], full: int) -> list[str]:
    paragraphs: list[str] = []
    current = ""
    for line in page:
        current = _join(current, line, words) if current else line
        if _ends_paragraph(line, full):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return paragraphs


def _join(left: str, right: str, words: set[str]) -> str:
    """Two lines of one paragraph: a word broken at the line end is mended, its hyphen kept only
    when the document writes that word with a hyphen elsewhere."""
    broken, start = _BROKEN_WORD.search(left), _WORD_START.match(right)
    if broken and start:
        word = f"{broken.group(1)}-{start.group(1)}".lower()
        if word not in words:
            return left[:-1] + right
        return left + right
    return f"{left} {right}"
