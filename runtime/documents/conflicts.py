"""Sources that disagree: a sentence of another file that says the same thing as an answer's quote
with other numbers ("The gym code is 1234." in one file, "The gym code is 9292." in another).

The answer cites the source the check found best, but whoever can write to a shared folder can put
a second version beside it, and an outdated copy of a policy does the same by accident: each was
cited alone, and the disagreement was never said (t65). The rule is strict so that it stays quiet
on ordinary folders: the other sentence must answer the question (relevance), share nearly all of
the quote's words, and differ in a number that neither the question nor the quote's own numbers
hold; a numbered thing ("Larkspur-7", "Larkspur-19") is a name, not a number, so two of them are
two things, not a disagreement; and where the question names a year, a sentence of another year is
about another year ("revenue in 2024": 2025's revenue is no disagreement, t79).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from pgpt.runtime.documents.question_kinds import YEAR, another_time
from pgpt.runtime.documents.sentences import NUMBER, THING, content_words, key_facts, numbered_things

# the share of each sentence's words the other must hold, and at least this many words in common
SAME_FRAME = 0.75
FRAME_WORDS = 2
MOST_SHOWN = 2  # differing sentences shown with an answer: more is a search result, not a caveat
# the titles the app and `ask` show above the two kinds of quotes
SUPPORTING = "Supporting quotes"
DIFFERING = "Another source says otherwise (check which is right)"


def quote_groups(result: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The quotes a documents answer (``result``: answer, kind, quotes) shows under it, by title
    (SUPPORTING, then DIFFERING), each title with at least one quote. A quote answer's own sentences
    are not shown again: its quote was printed twice, as the answer and under it (t84)."""
    shown = " ".join(str(result.get("answer", "")).split()) if result.get("kind") == "quote" else ""
    supporting = [q for q in result.get("quotes") or [] if not q.get("differs")
                  and not (shown and " ".join(str(q["sentence"]).split()) in shown)]
    groups = ((SUPPORTING, supporting), (DIFFERING, [q for q in result.get("quotes") or [] if q.get("differs")]))
    return [(title, group) for title, group in groups if group]


def with_differing(grounder: Any, quotes: list[Any], relevance_min: float) -> list[dict[str, Any]]:
    """The quotes' JSON, then that of each sentence that says otherwise, marked ``"differs": true``."""
    return ([q.as_quote() for q in quotes]
            + [{**s.as_quote(), "differs": True} for s in differing(grounder, quotes, relevance_min)])


def differing(grounder: Any, quotes: list[Any], relevance_min: float) -> list[Any]:
    """The sentences (SourceSentence) of other files than the quotes' that give other numbers for
    what a quote says, best answers to the question first; [] in the common case."""
    asked = _Reading(grounder.question).numbers
    years = {n for n in asked if YEAR.fullmatch(n)}
    quoted = {(q.file, q.text) for q in quotes}
    read: dict[str, _Reading] = {}  # each text read once, however many quotes it is held against
    found: dict[int, float] = {}
    for quote in quotes:
        mine = read.setdefault(quote.text, _Reading(quote.text))
        numbers = mine.numbers - asked
        if not numbers or len(mine.frame) < FRAME_WORDS:
            continue
        for index, other in enumerate(grounder.sentences):
            if other.file == quote.file or (other.file, other.text) in quoted:
                continue
            if grounder.relevance[index] < relevance_min:
                continue
            theirs = read.setdefault(other.text, _Reading(other.text))
            if not (theirs.numbers - asked - numbers and numbers - theirs.numbers):
                continue  # the same numbers (a copy of the passage), or none to disagree with
            if mine.names - theirs.names and theirs.names - mine.names:
                continue  # each names what the other does not: two things ("Larkspur-7", "Larkspur-19")
            if years and ({n for n in theirs.numbers - mine.numbers - asked if YEAR.fullmatch(n)}
                          or another_time(sorted(years), set(), other.text, other.text,
                                           f"{PurePath(other.file).name} {other.trail}")):
                continue  # the question's year is not theirs: "In 2025 ... £9.7 million", or annual_report_2025's 92%
            shared = mine.frame & theirs.frame
            if len(shared) >= FRAME_WORDS and len(shared) >= SAME_FRAME * max(len(mine.frame), len(theirs.frame)):
                found[index] = float(grounder.relevance[index])
    best = sorted(found, key=lambda i: -found[i])[:MOST_SHOWN]
    return [grounder.sentences[i] for i in best]


class _Reading:
    """What the rule reads in a text: its numbers (those of numbered things left out: they are part of
    a name), its names (key_facts without the numbers, numbered things included) and its frame (what
    it says without its numbers: content words, numbered things as names)."""

    def __init__(self, text: str) -> None:
        plain = THING.sub(" ", text)
        self.numbers = set(NUMBER.findall(plain))
        things = {f"{name}-{number}" for name, number in numbered_things(text)}
        self.names = (key_facts(plain) - self.numbers) | things
        self.frame = (content_words(plain) - self.numbers) | things
