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

The statement's own words bind its numbers too (:func:`bound_elsewhere`): "found 17 critical
findings" passed on "found 17 findings, of which 3 were rated critical", and "within 15 seconds" on
"within 15 minutes" (a scale tester's two wrong answers shown as supported).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from pgpt.runtime.documents.sentences import NUMBER, contains_fact

_CLAUSE = re.compile(r"[,;:]\s|\s(?:and|or|but|while|whereas)\s", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)
# Units of one kind: a number the sources give in one of them and the statement in another is
# another value ("15 minutes" is not "15 seconds"); written as the word after the number.
_UNITS = {unit: kind for kind, units in {
    "time": "second seconds sec secs minute minutes min mins hour hours hr hrs day days week weeks month months "
            "year years",
    "size": "byte bytes kb kib kilobyte kilobytes mb mib megabyte megabytes gb gib gigabyte gigabytes tb tib "
            "terabyte terabytes",
    "length": "mm cm km metre metres meter meters kilometre kilometres kilometer kilometers mile miles inch "
              "inches foot feet",
    "weight": "gram grams kg kilogram kilograms tonne tonnes ton tons lb lbs pound pounds",
}.items() for unit in units.split()}
_SAME_UNIT = {"sec": "second", "secs": "second", "min": "minute", "mins": "minute", "hr": "hour", "hrs": "hour",
              "kib": "kb", "mib": "mb", "gib": "gb", "tib": "tb", "kilobyte": "kb", "megabyte": "mb",
              "gigabyte": "gb", "terabyte": "tb", "metre": "meter", "kilometre": "km", "kilometer": "km",
              "kilogram": "kg", "tonne": "ton", "lbs": "pound", "lb": "pound", "feet": "foot", "inches": "inch"}


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


def same_words_around(value: str, statement: str, sentences: Iterable[str], words: Callable[[str], set[str]]) -> bool:
    """Whether the statement gives the number ``value`` among words a sentence of ``sentences`` gives
    it among (the content words of the three words before it and of the three after it are in the
    sentence's five before and five after): "... (compatible with CPython 3.11)" copied from its
    source ties 3.11 to CPython as the source does, and was called misattached, a right answer
    dropped (t68); "status 0 if an error occurred" from "status is 0 if a line is selected", or "the
    default port is 9090" from "the admin console uses port 9090", is not."""
    before, after = _words_around(statement, value, words, 3)
    return bool(before) and any(before <= there[0] and after <= there[1]
                                for there in (_words_around(text, value, words, 5) for text in sentences))


def _words_around(text: str, value: str, words: Callable[[str], set[str]], reach: int) -> tuple[set[str], set[str]]:
    """The content words (stemmed) of the ``reach`` words before the number ``value``, and of those after it."""
    match = re.search(rf"(?<![\d.,:]){re.escape(value)}(?![\d]|[.,:]\d)", text)
    if match is None:
        return set(), set()
    return (words(" ".join(text[:match.start()].split()[-reach:])),
            words(" ".join(text[match.end():].split()[:reach])))


def bound_elsewhere(value: str, statement: str, sentences: Iterable[str], numbers: Callable[[str], list[str]],
                    words: Callable[[str], set[str]]) -> bool:
    """Whether every sentence of ``sentences`` that holds the number ``value`` gives it another unit
    than the statement does, or ties the statement's word after it to another of its numbers
    (False when none holds it)."""
    after = _word_after(statement, value, numbers)
    if not after:
        return False
    verdicts = [_unit_differs(value, after, text, numbers) or _tied_to_other(value, after, text, numbers, words)
                for text in sentences if value in numbers(text)]
    return bool(verdicts) and all(verdicts)


def _word_after(text: str, value: str, numbers: Callable[[str], list[str]]) -> str:
    """The first word after the number ``value`` in ``text`` (lower case), '' when another number
    or the clause's end comes first."""
    match = re.search(rf"(?<![\d.,:]){re.escape(value)}(?![\d]|[.,:]\d)", text)
    if match is None:
        return ""
    rest = _CLAUSE.split(text[match.end():], maxsplit=1)[0]
    token = _TOKEN.search(rest[:40])
    if token is None or numbers(rest[:token.start()]):
        return ""
    return token.group().lower()


def _unit(word: str) -> tuple[str, str] | None:
    """(kind, unit) of a unit word, its plural and short forms made one ("mins" -> minute); None for other words."""
    if word not in _UNITS:
        return None
    single = word[:-1] if word.endswith("s") and word[:-1] in _UNITS else word
    return _UNITS[word], _SAME_UNIT.get(single, single)


def _unit_differs(value: str, after: str, sentence: str, numbers: Callable[[str], list[str]]) -> bool:
    """The statement's unit after ``value`` and the sentence's are of one kind and differ."""
    mine, theirs = _unit(after), _unit(_word_after(sentence, value, numbers))
    return mine is not None and theirs is not None and mine[0] == theirs[0] and mine[1] != theirs[1]


def _tied_to_other(value: str, after: str, sentence: str, numbers: Callable[[str], list[str]],
                   words: Callable[[str], set[str]]) -> bool:
    """The word after ``value`` in the statement stands in the sentence only in a clause of another
    of its numbers ("17 critical findings" against "17 findings, of which 3 were rated critical")."""
    wanted = words(after)
    if not wanted:
        return False
    own = other = False
    for clause in _CLAUSE.split(sentence):
        held = bool(words(clause) & wanted)
        found = set(numbers(clause))
        own |= held and value in found
        other |= held and bool(found - {value})
    return other and not own


def renamed(value: str, statement: str, sentences: Iterable[str], question_words: set[str],
            words: Callable[[str], set[str]]) -> bool:
    """Whether ``statement`` gives the number ``value`` to another subject than every sentence of
    ``sentences`` that gives it: both say "SUBJECT is VALUE", the sentence's subject holds a word the
    statement lacks and the statement's holds a word of the question that the sentence lacks ("The 2026
    garden club membership is 7,400 euros." from "The 2026 garden budget is 7,400 euros.", asked what
    membership costs, t78). Only that plain shape: a sentence's other words before a number (a verb,
    "specifically targets") rename nothing."""
    said = _subject_of(statement, value, words)
    if said is None:
        return False
    verdicts = [bool(source - words(statement)) and bool((said & question_words) - words(text))
                for text in sentences if (source := _subject_of(text, value, words)) is not None]
    return bool(verdicts) and all(verdicts)


_IS_VALUE = r"\b(?:is|are|was|were)\s+(?:about\s+|around\s+|roughly\s+)?[$\u20ac\u00a3]?"


def _subject_of(text: str, value: str, words: Callable[[str], set[str]]) -> set[str] | None:
    """The content words of the subject of "SUBJECT is VALUE" in a clause of ``text`` (None when no
    clause says it so, or the value stands inside a name, a setting or an address)."""
    for clause in _CLAUSE.split(text):
        found = re.search(rf"{_IS_VALUE}{re.escape(value)}(?![\d])", clause, re.IGNORECASE)
        if found:
            return words(clause[:found.start()])
    return None


def misattached_number(values: set[str], statement: str, sentences: list[str], question_words: set[str], question: str,
                       numbers: Callable[[str], list[str]], words: Callable[[str], set[str]]) -> bool:
    """Whether a number of ``values`` (a statement's new ones) is one ``sentences`` (its window) tie to
    other words than the question's and the statement keeps none of their words around it, or give
    another unit or another number the statement's word after it, or give to another subject."""
    return any(misattached(value, sentences, question_words, question, numbers, words)
               and not same_words_around(value, statement, sentences, words)
               or bound_elsewhere(value, statement, sentences, numbers, words)
               or renamed(value, statement, sentences, question_words, words)
               for value in values)


def anothers_value(words: set[str], question_words: set[str], window: list[set[str]], headings: list[bool]) -> bool:
    """Whether a statement of content ``words`` takes what it adds from one sentence of a ``window``
    (each sentence's content words, ``headings`` marking titles) while another there names more of the
    question's words the statement repeats, and not that: "The colour badge for contractors is blue."
    passed on "Every employee gets a blue access badge ...", the sentence before "Contractors receive a
    grey badge ..." (t81). A sentence that names only the subject ("It opens at 09:40" after "The
    lighthouse stands on the cape.") is no rival: it must hold all the question's words the holder
    does, and words of its own. (All the question's words, not only those the statement repeats, also
    caught "The badge is a blue access badge." for contractors, t83, but turned a right answer of the
    held-out set into "not found" and changed no other: not kept.)"""
    new, asked = words - question_words, words & question_words
    holder = max(range(len(window)), key=lambda j: len(new & window[j]))
    value, named = new & window[holder], asked & window[holder]
    return bool(value) and any(j != holder and asked & window[j] > named and value - window[j]
                               and not headings[j] and window[j] - question_words for j in range(len(window)))


# a word of letters and digits, with dashes or underscores: a password, an id, a key ("bluewhale-42", "A7x9")
_CODE = re.compile(r"(?<![\w-])(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[\w-]*[A-Za-z0-9](?![\w-])")


def recased_code(statement: str, sources: str) -> bool:
    """Whether ``statement`` writes a code of letters and digits ("Bluewhale-42") that the ``sources``
    write only in another case ("bluewhale-42"): a password, an id or a licence key is not the same in
    another case, and an answer changed one while its quote showed the other (t81)."""
    lower = sources.lower()
    return any(code not in sources and code.lower() in lower for code in _CODE.findall(statement))


def numbers_in_sentence(numbers: set[str], words: set[str], window: list[tuple[set[str], str]]) -> bool:
    """Whether no new number of a statement (its ``numbers``, of content ``words``) was taken from beside
    the sentence it is about, of a ``window`` of sentences (content words, lower-case text), when that
    sentence holds a number of its own: "The lighthouse is open every day at 18:10" passed on the
    lighthouse's sentence ("... from 09:40"), the ferry's 18:10 in the next one. A number in the
    sentence after one without a number is its value ("[xml] package_depth" / "(integer, default 99)
    ..."), as a name is often given a sentence before ("Priya Raman ... She will ...")."""
    if not numbers:
        return True
    about = {word for word in words if not NUMBER.fullmatch(word)}
    cover = [len(about & sentence_words) for sentence_words, _ in window]
    closest = [text for (_, text), n in zip(window, cover) if n == max(cover)]
    if not any(NUMBER.search(text) for text in closest):
        return True
    return all(any(contains_fact(text, number) for text in closest) for number in numbers)


# a range of two numbers or clock times: "12:00 - 00:30", "5 to 10", "3-5"
_RANGE = re.compile(r"(?<![\w.,:])(\d+(?:[.,:]\d+)*)\s*(?:-|\u2013|\u2014|to|till|until)\s*"
                    r"(\d+(?:[.,:]\d+)*)(?![\w.,:]*\d)")
# what a question asks for: the end of a span (when it closes, until when) or its start (when it opens);
# "open" alone ("When is it open?") asks for both ends, so it counts only after "does": "When does it open?"
_ASKS_END = re.compile(r"\b(?:clos(?:e|es|ed|ing)|until|till|ends?|ending|finish(?:es|ed|ing)?|latest)\b",
                       re.IGNORECASE)
_ASKS_START = re.compile(r"\b(?:opens|opening|starts?|starting|begins?|beginning|earliest)\b"
                         r"|\b(?:do|does|did|will)\b[^?]*\bopen\b", re.IGNORECASE)


def wrong_end(question: str, numbers: set[str], text: str) -> bool:
    """Whether a number of a statement (of ``numbers``) stands in ``text`` only at the other end of its
    ranges than the question asks for, the other end unsaid: "The Harbourside taproom closes at 12:00 on
    Saturday" passed on "Friday and Saturday 12:00 - 00:30", where 12:00 is when it opens (t84)."""
    end, start = bool(_ASKS_END.search(question)), bool(_ASKS_START.search(question))
    if end == start:
        return False
    ranges = _RANGE.findall(text)
    for number in numbers:
        count = NUMBER.findall(text).count(number)
        other_end = [(last if end else first) for first, last in ranges if (first if end else last) == number]
        if count and len(other_end) == count and not numbers & set(other_end):
            return True
    return False
