"""Sources that disagree: a sentence of another file that says the same thing as an answer's quote
with other numbers ("The gym code is 1234." in one file, "The gym code is 9292." in another).

The answer cites the source the check found best, but whoever can write to a shared folder can put
a second version beside it, and an outdated copy of a policy does the same by accident: each was
cited alone, and the disagreement was never said (t65). The rule is strict so that it stays quiet
on ordinary folders: the other sentence must answer the question (relevance), share nearly all of
the quote's words, and differ in a number that neither the question nor the quote's own numbers
hold; a numbered thing ("Larkspur-7", "Larkspur-19") is a name, not a number, so two of them are
two things, not a disagreement.
"""

from __future__ import annotations

from typing import Any

from pgpt.runtime.documents.sentences import NUMBER, THING, content_words, key_facts, numbered_things

# the share of each sentence's words the other must hold, and at least this many words in common
SAME_FRAME = 0.75
FRAME_WORDS = 2
MOST_SHOWN = 2  # differing sentences shown with an answer: more is a search result, not a caveat
# the titles the app and `ask` show above the two kinds of quotes
SUPPORTING = "Supporting quotes"
DIFFERING = "Another source says otherwise (check which is right)"


def with_differing(grounder: Any, quotes: list[Any], relevance_min: float) -> list[dict[str, Any]]:
    """The quotes' JSON, then that of each sentence that says otherwise, marked ``"differs": true``."""
    return ([q.as_quote() for q in quotes]
            + [{**s.as_quote(), "differs": True} for s in differing(grounder, quotes, relevance_min)])


def differing(grounder: Any, quotes: list[Any], relevance_min: float) -> list[Any]:
    """The sentences (SourceSentence) of other files than the quotes' that give other numbers for
    what a quote says, best answers to the question first; [] in the common case."""
    asked = _numbers(grounder.question)
    quoted = {(q.file, q.text) for q in quotes}
    found: dict[int, float] = {}
    for quote in quotes:
        numbers, frame = _numbers(quote.text) - asked, _frame(quote.text)
        if not numbers or len(frame) < FRAME_WORDS:
            continue
        for index, other in enumerate(grounder.sentences):
            if other.file == quote.file or (other.file, other.text) in quoted:
                continue
            if grounder.relevance[index] < relevance_min:
                continue
            theirs = _numbers(other.text) - asked
            if not (theirs - numbers and numbers - theirs):
                continue  # the same numbers (a copy of the passage), or none to disagree with
            if _names(quote.text) - _names(other.text) and _names(other.text) - _names(quote.text):
                continue  # each names what the other does not: two things ("Larkspur-7", "Larkspur-19")
            shared = frame & _frame(other.text)
            if len(shared) >= FRAME_WORDS and len(shared) >= SAME_FRAME * max(len(frame), len(_frame(other.text))):
                found[index] = float(grounder.relevance[index])
    best = sorted(found, key=lambda i: -found[i])[:MOST_SHOWN]
    return [grounder.sentences[i] for i in best]


def _numbers(text: str) -> set[str]:
    """The numbers of ``text``, those of numbered things left out (they are part of a name)."""
    return set(NUMBER.findall(THING.sub(" ", text)))


def _names(text: str) -> set[str]:
    """The names of ``text`` (key_facts without its numbers), its numbered things included."""
    plain = THING.sub(" ", text)
    return (key_facts(plain) - set(NUMBER.findall(plain))) | {f"{n}-{d}" for n, d in numbered_things(text)}


def _frame(text: str) -> set[str]:
    """What ``text`` says without its numbers: its content words, and its numbered things as names."""
    things = {f"{name}-{number}" for name, number in numbered_things(text)}
    plain = THING.sub(" ", text)
    return (content_words(plain) - set(NUMBER.findall(plain))) | things
