"""Split document sections into chunks that fit the embedding model, with overlap.

Chunks follow paragraphs: paragraphs are packed together up to the token limit, a chunk never
crosses a PDF page or a top-level heading (short sections under one top heading are packed
together), and a paragraph longer than the limit is packed from its
sentences, else its lines (a CSV, a log, one sentence a line), and only a run of text with neither
is cut into overlapping windows of words. Each chunk keeps its page, heading trail and character offsets in the
document's text (the sections joined by blank lines).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pgpt.runtime.documents.readers import Section

MAX_TOKENS = 200  # all-MiniLM-L6-v2 reads 256 word pieces; room for [CLS]/[SEP] and the heading
OVERLAP_TOKENS = 32
MERGE_SECTIONS = True
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# How a paragraph over the limit is split, in order: at sentence ends, then at line breaks.
_SPLITS = (re.compile(r"(?<=[.!?])\s+"), re.compile(r"\s*\n\s*"))
Piece = tuple[str, int, int]  # text, start, end (offsets in the section's text)
# The longest text the tokenizer counts whole. It keeps about 300 bytes per character of what it reads
# (ids, offsets, word pieces): a 50 MB CSV, one paragraph with no blank line, took 13.8 GB counted at
# once (t61). A longer text is over any chunk's limit (a word piece covers at most 100 characters and
# a word of more is one piece, so it takes 100,000 characters of one word to be under it: such a word is
# cut into windows of characters all the same).
COUNT_LIMIT_CHARS = 100_000


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of a document."""

    text: str
    page: int
    heading: str
    start: int  # character offsets in the document's text
    end: int


def chunk_sections(sections: list[Section], count_tokens: Callable[[str], int],
                   max_tokens: int = MAX_TOKENS, overlap_tokens: int = OVERLAP_TOKENS) -> list[Chunk]:
    """Chunks of all sections, in document order."""
    chunks: list[Chunk] = []
    offsets = []
    offset = 0
    for section in sections:
        offsets.append(offset)
        offset += len(section.text) + 2  # sections are joined with a blank line
    for group in _small_runs(sections, count_tokens, max_tokens):
        first, last = group[0], group[-1]
        if len(group) > 1:  # short sibling sections (definitions, API entries, options) share a chunk
            text = "\n\n".join(sections[i].text.strip() for i in group)
            heading = _common_trail([sections[i].heading for i in group])
            start = offsets[first] + len(sections[first].text) - len(sections[first].text.lstrip())
            end = offsets[last] + len(sections[last].text.rstrip())
            chunks.append(Chunk(text, sections[first].page, heading, start, end))
            continue
        section = sections[first]
        for text, start, end in _pack(_paragraphs(section.text), count_tokens, max_tokens, overlap_tokens):
            chunks.append(Chunk(text, section.page, section.heading, offsets[first] + start, offsets[first] + end))
    return chunks


def _small_runs(sections: list[Section], count_tokens: Callable[[str], int], max_tokens: int) -> list[list[int]]:
    """Section indices grouped: consecutive short sections on one page under one top heading, up to
    ``max_tokens`` together; every other section alone."""
    groups: list[list[int]] = []
    spent = 0
    for index, section in enumerate(sections):
        if not section.text.strip():
            continue
        tokens = count_tokens(section.text) if len(section.text) < max_tokens * 8 else max_tokens + 1
        previous = sections[groups[-1][-1]] if groups else None
        if (MERGE_SECTIONS and previous is not None and tokens <= max_tokens and spent + tokens <= max_tokens
                and previous.page == section.page and _top(previous.heading) == _top(section.heading)):
            groups[-1].append(index)
            spent += tokens
        else:
            groups.append([index])
            spent = tokens
    return groups


def _top(heading: str) -> str:
    return heading.split(" > ")[0]


def _common_trail(headings: list[str]) -> str:
    trails = [h.split(" > ") for h in headings]
    common = []
    for parts in zip(*trails):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return " > ".join(common)


def _paragraphs(text: str) -> list[Piece]:
    """(paragraph, start, end) with offsets into ``text``; blank-line separated, stripped."""
    found = []
    position = 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        stop = match.start() if match else len(text)
        piece = text[position:stop]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            found.append((piece.strip(), position + lead, position + lead + len(piece.strip())))
        position = match.end() if match else len(text)
    return found


def _pack(paragraphs: list[Piece], count_tokens: Callable[[str], int], max_tokens: int, overlap_tokens: int,
          glue: Callable[[list[Piece]], str] | None = None, level: int = 0) -> list[Piece]:
    """Greedy packing of pieces up to ``max_tokens``; the last piece carries over when it is short
    (overlap). ``glue`` makes a chunk's text of its pieces (default: paragraphs joined by a blank
    line); a piece over the limit is split further, from split ``level`` on."""
    out: list[Piece] = []
    current: list[tuple[str, int, int, int]] = []  # text, start, end, tokens
    for text, start, end in paragraphs:
        tokens = count_tokens(text) if len(text) <= COUNT_LIMIT_CHARS else max_tokens + 1
        if tokens > max_tokens:
            _emit(out, current, glue)
            current = []
            out.extend(_long_paragraph(text, start, count_tokens, max_tokens, overlap_tokens, level))
            continue
        if current and sum(p[3] for p in current) + tokens > max_tokens:
            _emit(out, current, glue)
            tail = current[-1]
            current = [tail] if tail[3] <= overlap_tokens and tail[3] + tokens <= max_tokens else []
        current.append((text, start, end, tokens))
    _emit(out, current, glue)
    return out


def _emit(out: list[Piece], current: list[tuple[str, int, int, int]],
          glue: Callable[[list[Piece]], str] | None) -> None:
    if current:
        pieces = [(p[0], p[1], p[2]) for p in current]
        text = glue(pieces) if glue else "\n\n".join(p[0] for p in pieces)
        out.append((text, current[0][1], current[-1][2]))


def _long_paragraph(text: str, start: int, count_tokens: Callable[[str], int], max_tokens: int,
                    overlap_tokens: int, level: int) -> list[Piece]:
    """A paragraph over the limit, packed from its sentences, else its lines, else windows of words.

    Each chunk is a slice of the paragraph, so a table's rows keep their line breaks.
    """
    for index in range(level, len(_SPLITS)):
        pieces = _split(text, start, _SPLITS[index])
        if len(pieces) > 1:
            def glue(run: list[Piece]) -> str:
                return text[run[0][1] - start:run[-1][2] - start]
            return _pack(pieces, count_tokens, max_tokens, overlap_tokens, glue, index + 1)
    return _windows(text, start, count_tokens, max_tokens, overlap_tokens)


def _split(text: str, start: int, pattern: re.Pattern[str]) -> list[Piece]:
    """The non-blank pieces of ``text`` between matches of ``pattern``, with absolute offsets."""
    pieces = []
    position = 0
    for match in [*pattern.finditer(text), None]:
        stop = match.start() if match else len(text)
        if text[position:stop].strip():
            pieces.append((text[position:stop], start + position, start + stop))
        position = match.end() if match else len(text)
    return pieces


def _windows(text: str, start: int, count_tokens: Callable[[str], int], max_tokens: int,
             overlap_tokens: int) -> list[Piece]:
    """Overlapping windows of whole words over one long paragraph."""
    words = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    if any(len(w[0]) > 40 for w in words):  # scripts without spaces (Chinese, Japanese): characters
        words = [(c, i, i + 1) for i, c in enumerate(text) if not c.isspace()]
    # word pieces per word, from the text's first COUNT_LIMIT_CHARS characters
    sample = sum(1 for w in words if w[2] <= COUNT_LIMIT_CHARS)
    per_word = max(count_tokens(text[:COUNT_LIMIT_CHARS]) / max(sample, 1), 1e-6)
    size = max(int(max_tokens / per_word), 1)
    step = max(size - int(overlap_tokens / per_word), 1)
    out = []
    for first in range(0, len(words), step):
        window = words[first:first + size]
        out.append((text[window[0][1]:window[-1][2]], start + window[0][1], start + window[-1][2]))
        if first + size >= len(words):
            break
    return out
