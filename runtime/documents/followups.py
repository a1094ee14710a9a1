"""Which question retrieval and the check read: a follow-up ("And when does it close?") is searched
after the question it follows; a question of its own is searched alone."""

from __future__ import annotations

import re

from pgpt.runtime.documents.sentences import content_words

_WORDS = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
# words that point back at what an earlier question named ("When does it close?", "his parrot")
_BACK_REFERENCES = frozenset("it its it's they them their theirs he him his she her hers".split())


def retrieval_question(question: str, earlier: list[str]) -> str:
    """What retrieval and the check read for ``question``: the question, after the previous one of
    ``earlier`` (the user's earlier questions, oldest first) when it is a follow-up: it starts with
    "and", "what about" or the like, refers back ("it", "his", "their"), or is two words at most
    with one content word ("What time?", "On Friday?"). "And when does it close?" alone found
    nothing and was "not found" before the model ran, though the model reads the earlier turns."""
    earlier = [text.strip() for text in earlier if text.strip()]
    if not earlier or not _follows_up(question):
        return question
    # a follow-up of a follow-up ("And how much are its tickets?" after "And when does it close?") is
    # searched after the question the chain started from: it lost its subject
    start = next((text for text in reversed(earlier) if not _follows_up(text)), earlier[0])
    return f"{start} {question}"


def _follows_up(question: str) -> bool:
    # By its form, not by being short: "Who is Ferris?" and "What is the budget?" (one content
    # word each) were searched after an unrelated question before them and were "not found", and
    # a Japanese question (no word read) got a quote answering the English question before it.
    words = [w.lower() for w in _WORDS.findall(question)]
    return bool(words[:1] in (["and"], ["also"], ["then"]) or words[:2] in (["what", "about"], ["how", "about"])
                or _points_back(words) or (len(words) <= 2 and len(content_words(question)) <= 1))


def _points_back(words: list[str]) -> bool:
    """Whether a pronoun ("it", "its", "their") points to an earlier question: not when the question
    names two things or more before it ("Under the Mozilla license, ... how many days do I have to fix
    it?", "How long does the client wait before it gives up?" were searched after the question before)."""
    first = next((n for n, word in enumerate(words) if word in _BACK_REFERENCES), None)
    return first is not None and len(content_words(" ".join(words[:first]))) < 2
