"""Lists among a passage's sentences, as the check reads them: a lead-in ("The checklist has these
items:") and its items, marked ("- radio tested") or not ("a head torch"), in one source.

A list's items share few words with the question, their lead-in does: the check quotes a lead-in with
its items, keeps an answer's items beside a kept one, and reads the thing a question asks for ("What
items ...?") in an item's lead-in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from pgpt.runtime.documents.sentences import FIELD, LIST_ITEM, delimiter_counts

MAX_ITEMS = 8  # items a quoted lead-in brings
MAX_LIST = 30  # sentences back from an item to its lead-in


class _Sentence(Protocol):
    number: int
    text: str


def with_its_list(sentences: Sequence[_Sentence], index: int) -> list[int]:
    """``index``, and when its sentence leads in to a list ("... these items:") the items after it in
    its source (up to MAX_ITEMS, to the first full sentence): the lead-in alone was quoted as the answer."""
    lead = sentences[index]
    items = [index]
    if lead.text.rstrip().endswith(":"):
        for i in range(index + 1, min(index + MAX_ITEMS + 1, len(sentences))):
            text = sentences[i].text.rstrip()
            item = LIST_ITEM.match(text)
            # a marked list ends at its first line without a marker: the quote ran on into the next
            # lead-in and its list ("To prune a Pellwick tree, the gardener follows these steps:")
            if (sentences[i].number != lead.number or (text.endswith(".") and not item)
                    or (not item and LIST_ITEM.match(sentences[items[-1]].text))):
                break
            items.append(i)
    return items


def lead_in(sentences: Sequence[_Sentence], index: int) -> int:
    """The index of the lead-in of the list whose item sentence ``index`` is, in its source: the
    nearest sentence before it that ends with a colon, with no full sentence between; else -1."""
    j = index - 1
    while j >= 0 and sentences[j].number == sentences[index].number and index - j <= MAX_LIST:
        text = sentences[j].text.rstrip()
        if text.endswith(":"):
            return j
        if text.endswith((".", "!", "?")):  # prose: no list runs through it
            return -1
        j -= 1
    return -1


def in_a_list(text: str) -> bool:
    """Whether a sentence is a list item, a table row or a list's lead-in ("... these items:")."""
    text = text.strip()
    return bool(LIST_ITEM.match(text)) or text.startswith("|") or text.endswith(":")


def table_header(sentences: Sequence[_Sentence], index: int) -> int:
    """The index of the header row of the table whose row sentence ``index`` is, in its source (the
    first row of its run of rows); -1 when it is no row, or is the header itself. A quoted row
    without its header ("| Pro | 1,000 | Email, Slack, SMS | 90 days | £79 |") does not say which
    number is the price (t79)."""
    def row(i: int) -> bool:
        return " | " in sentences[i].text or _RULE.fullmatch(sentences[i].text.strip()) is not None

    if FIELD.match(sentences[index].text) and " | " not in sentences[index].text:
        return _record_name(sentences, index)

    if not row(index) or _RULE.fullmatch(sentences[index].text.strip()):
        return _delimited_header(sentences, index)
    first = index
    while first > 0 and sentences[first - 1].number == sentences[index].number and row(first - 1):
        first -= 1
    return first if first < index and not _RULE.fullmatch(sentences[first].text.strip()) else -1


def a_header_row(sentences: Sequence[_Sentence], index: int) -> bool:
    """Whether sentence ``index`` is the header row of a table or a CSV's header line: alone it answers
    nothing ("| Endpoint | Method | Rate limit | Timeout |" was quoted as a timeout, t83)."""
    return any(j < len(sentences) and table_header(sentences, j) == index for j in (index + 1, index + 2))


def _record_name(sentences: Sequence[_Sentence], index: int) -> int:
    """The name line of the record whose field sentence ``index`` is ("Greenbine Hop Merchants" above
    "Lead time: 7 working days"): the nearest line before its run of fields in its source, of at most
    MAX_NAME_WORDS words and no sentence end. Where none is (prose or the passage's start before the
    run), the field that starts each record, of the run's first field's key: "Vessel: MV Puffin" over
    "Crew: 5" (t85). Else -1. Alone, "Lead time: 7 working days" did not say whose (t84)."""
    j, first = index - 1, -1
    while j >= 0 and sentences[j].number == sentences[index].number and index - j <= MAX_RECORD:
        text = sentences[j].text.rstrip()
        if not FIELD.match(text):
            if len(text.split()) <= MAX_NAME_WORDS and not text.endswith((".", "!", "?")):
                return j
            break
        first, j = j, j - 1
    if first < 0:
        return -1
    key = _key(sentences[first].text)
    if _key(sentences[index].text) == key:  # a record's own name
        return -1
    return next((k for k in range(index - 1, first - 1, -1) if _key(sentences[k].text) == key), -1)


def _key(text: str) -> str:
    """The key of a field line ("Vessel" of "Vessel: MV Puffin")."""
    return text.split(":", 1)[0].strip().lower()


MAX_NAME_WORDS = 8
MAX_RECORD = 40  # lines back from a field to its record's name


def _delimited_header(sentences: Sequence[_Sentence], index: int) -> int:
    """The header line of the CSV rows sentence ``index`` is one of: the first of its run of lines with
    as many commas (or semicolons, or tabs), when that line holds no digit ("team,employee,days,type")
    and the row does; else -1. A quoted row ("Backend,Tom Okafor,2026-07-06,10,annual leave") did
    not say which number is which (t79)."""
    def shape(i: int) -> tuple[int, ...]:
        return delimiter_counts(sentences[i].text)

    own = shape(index)
    if max(own) < 2 or not any(c.isdigit() for c in sentences[index].text):
        return -1
    first = index
    while first > 0 and sentences[first - 1].number == sentences[index].number and shape(first - 1) == own:
        first -= 1
    return first if first < index and not any(c.isdigit() for c in sentences[first].text) else -1


_RULE = re.compile(r"\|?[\s:|-]*-[\s:|-]*")  # a table's rule under its header: |----|:---:|


def another_record(sentences: Sequence[_Sentence], headers: Sequence[int], words: Sequence[set[str]],
                   question_words: set[str]) -> list[bool]:
    """For each sentence: whether it is a row or field of a record (under a header, ``headers[i]`` >= 0,
    or a field whose record's name the passage cut off) that holds fewer of the question's words found
    in headers than another record does (``words``: each sentence's content words with its header's).
    "What is the lead time for hops from Greenbine?" was answered with "Clearflow Hygiene" / "Lead time:
    2 working days" (t84). Rows under one header tie."""
    named = question_words & set().union(*(words[h] for h in set(headers) if h >= 0))
    record = [h >= 0 or bool(FIELD.match(s.text)) for s, h in zip(sentences, headers)]
    held = [len(named & words[i]) if record[i] else -1 for i in range(len(headers))]
    best = max(held, default=-1)
    return [record[i] and held[i] < best for i in range(len(headers))]
