"""How a passage is shown to the user (search hits, a "not found" answer's closest passages): its
sentence that matches the question best (``matching_sentences``), and about ``width`` characters around
it, with table rows kept on lines of their own.

Display only: the sentences the model reads and the check compares are grounding's flattened ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

import numpy as np

from pgpt.runtime.documents.grounding import Grounder, SourceSentence
from pgpt.runtime.documents.records import DEFAULT_COLLECTION
from pgpt.runtime.documents.sentences import (
    FIELD, LIST_ITEM, content_words, delimiter_counts, flatten_text, in_columns, split_sentences, unhyphenated,
)


def shown_text(text: str) -> str:
    """``text`` as ``flatten_text`` gives it, except that a line break between two table rows
    (``a | b | c``, as the readers write HTML, DOCX and Markdown tables) or before a list item or a
    Markdown table row stays a line break: the rows ran together ("Day | Opens | Closes Monday | 07:00
    | 14:00 Friday ..."), and a list read "- life jackets counted - radio tested".

    Replacing each line break of the result by a space gives ``flatten_text(text)`` exactly, so a
    position found in the flattened text is the same position here."""
    lines, after_blank, previous_kept = [], [], True  # the lines, and whether a blank line came before each
    fields = []  # whether each is a record's field or a timetable's line: one a line (t85)
    for raw in unhyphenated(text).splitlines():
        line = " ".join(raw.split())
        if line:
            after_blank.append(bool(lines) and not previous_kept)
            lines.append(line)
            fields.append(bool(FIELD.match(line)) or in_columns(raw))
        previous_kept = bool(line)
    if not lines:
        return ""
    shown = [lines[0]]
    for number, (previous, line) in enumerate(zip(lines, lines[1:]), 1):
        # a paragraph after a list, a table or a title starts its own line too: it read as the
        # last item's ("- Dovecote Pippin To prune a Pellwick tree, ...")
        leaves = after_blank[number] and (_is_row(previous) or _OWN_LINE.match(previous) or _is_title(previous))
        apart = ((_is_row(previous) and _is_row(line)) or _records(previous, line) or _OWN_LINE.match(line) or leaves
                 or (fields[number] and not line[:1].islower()) or (fields[number - 1] and line[:1].isupper()))
        shown.append(("\n" if apart else " ") + line)
    return "".join(shown)


def sentence_window(text: str, sentence: str, width: int) -> tuple[str, str, str]:
    """(before, sentence, after): about ``width`` characters of ``text`` (free of terminal controls,
    white space single spaces but for line breaks between table rows) around ``sentence``, with "…"
    where it was cut; the text's start, and "" for the sentence, when the sentence is not in it."""
    from pgpt.runtime.sanitize import strip_controls

    text, sentence = shown_text(strip_controls(text)), flatten_text(strip_controls(sentence))
    start = text.replace("\n", " ").find(sentence) if sentence else -1
    if start < 0:
        start, sentence = min(width, len(text)), ""
        first, last = 0, start
    elif len(sentence) > width:  # a run-on "sentence" (a list or table without full stops) filled screens
        sentence = text[start:start + len(sentence)]  # with its rows' line breaks
        shown = sentence[:width].rsplit(" ", 1)[0] or sentence[:width]
        return ("\u2026" if start else ""), shown, "\u2026"
    else:
        sentence = text[start:start + len(sentence)]
        room = max(width - len(sentence), 0)
        first = max(start - room // 2, 0)
        last = min(start + len(sentence) + room - (start - first), len(text))
        # not "…°C only, because ..." for "- Hollow Oak Stout is crashed to 4 °C only" (t84); the end stays,
        # as the words after the sentence may be the answer (they were for a development question)
        first = _line_start(text, first)
        first, last = _word_edge(text, first, start, forward=True), _word_edge(text, last, start + len(sentence))
    return (("\u2026" if first else "") + text[first:start], sentence,
            text[start + len(sentence):last] + ("\u2026" if last < len(text) else ""))


def _line_start(text: str, cut: int) -> int:
    """The start of the line or sentence that ``cut`` falls in, when it is at most LEAD_CHARS before
    it, else ``cut``: a window that opened mid-line lost the line's subject and number (the window
    grows by as much)."""
    for i in range(cut, max(cut - LEAD_CHARS, 0) - 1, -1):
        if i == 0 or text[i - 1] == "\n" or (i >= 2 and text[i - 1] == " " and text[i - 2] in ".!?"):
            return i
    return cut


LEAD_CHARS = 60


def _word_edge(text: str, cut: int, limit: int, forward: bool = False) -> int:
    """``cut`` moved to the nearest white space between it and ``limit`` (a snippet's edge at a whole
    word: "…ble" was the end of "timetable"), or left where it is when a cut lies at the text's end or
    no white space is near."""
    if cut in (0, len(text)) or (text[cut - 1] if forward else text[cut]).isspace():
        return cut
    if forward:
        space = next((i for i in range(cut, min(limit, cut + WORD_EDGE_CHARS)) if text[i].isspace()), None)
        return cut if space is None else space + 1
    space = next((i for i in range(cut - 1, max(limit, cut - WORD_EDGE_CHARS) - 1, -1) if text[i].isspace()), None)
    return cut if space is None else space


WORD_EDGE_CHARS = 25  # a longer "word" (a URL, a hash) is cut where it is rather than dropping a whole line of it


def copies_note(also_in: Sequence[str], named: int = 2, own: str = "") -> str:
    """`` (the same text in: a.md, b.md and 3 more)`` for a passage found in other files too (copies
    of one file, shown once), or nothing; a copy named as the passage's ``own`` file is named by its
    whole path ("recipe.txt (the same text in: recipe.txt)" read as a file copied onto itself, t70)."""
    if not also_in:
        return ""
    mine = PurePath(own).name if own else None
    names = [path if PurePath(path).name == mine else PurePath(path).name for path in also_in[:named]]
    more = f" and {len(also_in) - named} more" if len(also_in) > named else ""
    return f" (the same text in: {', '.join(names)}{more})"


def where(source: Mapping[str, Any]) -> str:
    """Where a source or hit comes from, on one line: ``file, page N``, the other files with its text,
    the collection when it is not the default one (two teams' shared/policy.md read alike, t78), and
    "(file gone)" when its file is no longer on disk. ``source`` has ``source`` (the file), and may have
    ``page``, ``also_in``, ``collection`` and ``gone``."""
    from pgpt.runtime.sanitize import one_line

    own = str(source["source"])
    collection = str(source.get("collection") or "")
    return one_line(own + (f", page {source['page']}" if source.get("page") else "")
                    + (f" (collection {collection})" if collection and collection != DEFAULT_COLLECTION else "")
                    + copies_note(source.get("also_in") or (), own=own)
                    + (" (file gone)" if source.get("gone") else ""))


def quote_line(quote: Mapping[str, Any], sources: Sequence[Mapping[str, Any]]) -> str:
    """A supporting quote as `ask` and the app show it: ``[n] file, page N: “sentence”``."""
    return f"[{quote['source']}] {where(quoted_source(quote, sources))}: \u201c{quote['sentence']}\u201d"


def quoted_source(quote: Mapping[str, Any], sources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A supporting quote's file as ``where`` reads it: its file and page, and the collection and
    "file gone" of the answer's source it quotes (``quote["source"]``, 1-based)."""
    number = quote.get("source")
    cited = sources[number - 1] if isinstance(number, int) and 0 < number <= len(sources) else {}
    return {"source": quote["file"], "page": quote.get("page"), "collection": cited.get("collection"),
            "gone": cited.get("gone")}


def indented(text: str, indent: str) -> str:
    """``text`` with every line after its first indented by ``indent`` (a passage under its source line)."""
    return text.replace("\n", "\n" + indent)


def matching_sentences(query: str, query_vector: np.ndarray, passages: Sequence[str],
                       embed: Callable[[list[str]], np.ndarray]) -> list[str]:
    """For each passage, its sentence that matches ``query`` best (what search highlights);
    "" for a passage without sentences."""
    sentences = [SourceSentence(number, "", 0, text)
                 for number, passage in enumerate(passages, 1) for text in split_sentences(passage)]
    if not sentences:
        return ["" for _ in passages]
    relevance = Grounder(query, query_vector, sentences, embed([s.text for s in sentences]), embed).relevance
    # the sentence that itself holds the query's words wins among its neighbours, which share them in the
    # check's window: "Петербурге" highlighted the sentence before the one that names the city (t50)
    asked = _words_and_parts(query)
    own = np.array([len(asked & _words_and_parts(s.text)) / len(asked) if asked else 0.0 for s in sentences])
    best = best_per_source(sentences, relevance + OWN_WORDS_WEIGHT * own, len(passages))
    return [focused(sentence, asked) for sentence in best]


OWN_WORDS_WEIGHT = 0.1  # display only: a tie-break among neighbours, never over a sentence that answers better
# A "sentence" longer than this (a JSON record, a list without full stops) is shown by its part that
# holds most of the question's words: from its start, a record was cut just before the asked bay (t67).
FOCUS_CHARS = 240


def focused(sentence: str, asked: set[str], width: int = FOCUS_CHARS) -> str:
    """``sentence``, or, when longer than ``width``, its ``width`` characters (whole words) that hold
    the most of the ``asked`` words, from a few words before the first of them."""
    if len(sentence) <= width or not asked:
        return sentence
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", sentence)]
    held = [_words_and_parts(sentence[s:e]) & asked for s, e in words]  # each word's asked words, read once

    def covered(first: int) -> int:  # the asked words in ``width`` characters from word ``first``
        reach = words[first][0] + width
        return len(set().union(*(h for (_, end), h in zip(words[first:], held[first:]) if end <= reach)))

    counts = {i: covered(i) for i, h in enumerate(held) if h}
    best = max(counts, key=lambda i: (counts[i], -i), default=0)
    # a few words before the first asked one, so that it is not the first word shown
    start = words[max(best - 3, 0)][0] if counts else 0
    end = max((e for s, e in words if e - start <= width), default=start + width)
    return sentence[start:end]


def _words_and_parts(text: str) -> set[str]:
    """``content_words`` with the parts of hyphenated words: "Санкт-Петербурге" holds "петербурге"."""
    words = content_words(text)
    return words | {part for word in words if "-" in word for part in word.split("-") if len(part) > 1}


def best_per_source(sentences: Sequence[SourceSentence], relevance: np.ndarray, sources: int) -> list[str]:
    """For sources 1..``sources``, the text of its sentence with the highest ``relevance`` ("" for
    a source without sentences)."""
    best: dict[int, int] = {}
    for index, sentence in enumerate(sentences):
        if sentence.number not in best or relevance[index] > relevance[best[sentence.number]]:
            best[sentence.number] = index
    return [sentences[best[n]].text if n in best else "" for n in range(1, sources + 1)]


# a list item ("- radio tested", "2. Copy the file"), a Markdown table row or heading starts a line of
# its own ("... in business hours. ## Compensation" read as one sentence)
_OWN_LINE = re.compile(rf"{LIST_ITEM.pattern}|#{{1,6}}\s|\|")


def _is_title(line: str) -> bool:
    """A line of a few words without a full stop, alone before a blank line: a title ("Ostrava Mill
    Safety Rules" read as the first words of the paragraph after it)."""
    return len(line.split()) <= 8 and line[-1] not in ".!?:;,"


def _is_row(line: str) -> bool:
    return " | " in line


def _records(previous: str, line: str) -> bool:
    """Whether two lines are rows of a CSV (or of ; or tab): as many delimiters, two or more, and no
    sentence's end. They ran together in the closest passages and `search` (t83)."""
    shape = delimiter_counts(line)
    return max(shape) >= 2 and shape == delimiter_counts(previous)
