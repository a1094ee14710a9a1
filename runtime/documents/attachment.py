"""Which of a sentence's numbers the question asks for.

A statement's number was supported when it stood anywhere in the sentence: "Normally the exit
status is 0 if a line is selected, 1 if no lines were selected, and 2 if an error occurred."
supported "The exit status of grep when an error occurred is 0", and "The server listens on port
8080 by default; the admin console uses port 9090." supported "The default port is 9090" (an
answer-quality tester's M1: 6 of 29 answers). Here a sentence is cut into clauses (at commas,
semicolons, colons, "and", "or", "but", "while"), each number takes the words of its clause, and
the question's words pick the clause: a number whose clause holds fewer of them than another
number's does is not what the question asked. The words before the sentence's first number are
the subject every value shares ("the exit status is"), so they pick none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_CLAUSE = re.compile(r"[,;:]\s|\s(?:and|or|but|while|whereas)\s", re.IGNORECASE)


def misattached(value: str, sentences: Iterable[str], question_words: set[str], question: str,
                numbers: Callable[[str], list[str]], words: Callable[[str], set[str]]) -> bool:
    """Whether every sentence of ``sentences`` that holds the number ``value`` ties the
    question's words to another of its numbers (False when none holds it, or none has two).

    ``numbers`` and ``words`` are grounding's own number finder and content words (stemmed).
    """
    verdicts = [_other_number_asked(value, text, question_words, question, numbers, words)
                for text in sentences if value in numbers(text)]
    return bool(verdicts) and all(verdicts)


def _other_number_asked(value: str, sentence: str, question_words: set[str], question: str,
                        numbers: Callable[[str], list[str]], words: Callable[[str], set[str]]) -> bool:
    asked_numbers = set(numbers(question))  # "in 2020": a number the question names competes with none
    if len(set(numbers(sentence)) - asked_numbers) < 2:
        return False
    first = re.search(re.escape(numbers(sentence)[0]), sentence)
    shared = words(sentence[:first.start()]) if first else set()
    asked = question_words - shared
    if not asked:
        return False
    score: dict[str, int] = {}
    for clause in _CLAUSE.split(sentence):
        held = words(clause) & asked
        for number in set(numbers(clause)) - asked_numbers:
            score[number] = max(score.get(number, 0), len(held))
    return score.get(value, 0) < max(score.values(), default=0)
