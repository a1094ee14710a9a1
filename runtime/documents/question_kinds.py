"""What a question asks for, as the check reads it: a number ("How many ...?", "What version ...?"),
a way ("How do I ...?", which wants no number) or what is not so ("Who is not ...?", answered by a denial);
and the codes it names that no source writes ("Q2", "room B30")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pgpt.runtime.documents.sentences import (
    MONTHS, WEEK, contains_fact, content_words, dates_named, days_named, key_facts, numbered_things,
)

# a question about what is not so ("Who is not ...?", "Which formats are never read?"), not "why ... not?"
# or "... without ...", whose answers affirm (a reason, a way)
_ASKS_NOT = re.compile(r"^\s*(?:who|what|which|where|when)\b[^?]*?\b(?:(?:is|are|was|were|does|do|did|can|has|have|will)"
                       r"\s+(?:not|never)|isn't|aren't|wasn't|weren't|doesn't|don't|didn't|can't|cannot|never)\b",
                       re.IGNORECASE)
_NUMBER_QUESTION = re.compile(
    r"\b(?:how (?:many|much|long|big|large|old|often|fast|far)"
    # "what version", and with one name between: "what Python version" (not "what does the version ...")
    r"|what (?:(?!(?:is|are|was|were|does|do|did|the|a|an|this|that)\b)[\w.+-]+ )?(?:year|percentage|version|number|size)"
    r"|which (?:(?!(?:is|are|was|were|does|do|did|the|a|an|this|that)\b)[\w.+-]+ )?(?:year|version))", re.IGNORECASE)
# A question after a way ("How do I ...?", "How can ...?") wants no number, whatever words follow
_ASKS_A_WAY = re.compile(r"\s*how (?:do|does|can|could|should|would|to|must)\b", re.IGNORECASE)


def wants_a_number(question: str) -> bool:
    """Whether ``question`` asks for a number ("How many ...?"), not a way ("How do I ...?")."""
    return _NUMBER_QUESTION.search(question) is not None and not _ASKS_A_WAY.match(question)


def asks_a_count(question: str) -> bool:
    """Whether ``question`` asks how many or how much, which no date answers (sentences.without_dates)."""
    return re.match(r"\s*how\s+(?:many|much)\b", question, re.IGNORECASE) is not None


def asks_what_is_not(question: str) -> bool:
    """Whether ``question`` asks what is not so ("Who is not ...?"), whose answer is a denial."""
    return _ASKS_NOT.search(question.replace("\u2019", "'")) is not None


_WHO = re.compile(r"\s*who\b", re.IGNORECASE)
_WHERE = re.compile(r"\s*where\b", re.IGNORECASE)
# what says when, not where: a clock time, a weekday, a month, a year
_WHEN = re.compile(rf"\d{{1,2}}[:.]\d{{2}}|(?:19|20)\d\d|{'|'.join(WEEK)}|{MONTHS}|may")


def answers_the_kind(question: str, text: str, question_facts: set[str]) -> bool:
    """Whether ``text`` (a quote, or a statement) can answer ``question`` by its kind: for "Who ...?" it
    names someone the question does not (a name: a capitalized word inside the sentence, or one with a
    capital inside; "Who is the CTO?" was answered "After 4 hours the CTO is informed.", t79); for
    "Where ...?" what it adds is not a time alone ("Where should we gather when the fire alarm goes
    off?" was answered "The fire alarm is tested every Wednesday at 10:00.", t79). Other questions: True."""
    if _WHO.match(question):
        return any(not fact[:1].isdigit() for fact in key_facts(text) - question_facts)
    if _WHERE.match(question):
        added = key_facts(text) - question_facts
        return not added or not all(_WHEN.fullmatch(fact) for fact in added)
    return True


# a dash between a code's letters and digits ("CN-2291")
_CODE_DASH = re.compile(r"(?<=[a-z])-(?=\d)")
# a version ("v7.3.20"): no code (_a_code)
_VERSION = re.compile(r"v\d[\d.]*")
# a year: a budget, a plan or a champion of one year is no other year's (t77: the 2026 garden budget
# was quoted for 2027's)
YEAR = re.compile(r"(?:19|20)\d\d")


def _a_code(fact: str) -> bool:
    """Whether a key fact is a code of letters and digits ("q2", "b30", "ec2") or a year, which a
    document that speaks of it writes, unlike a name (a project's own pages seldom name it) or a version."""
    return (any(c.isalpha() for c in fact) and any(c.isdigit() for c in fact)
            and not _VERSION.fullmatch(fact)) or YEAR.fullmatch(fact) is not None


def _names_of(fact: str) -> list[str]:
    """``fact`` and, for a name with a release number ("gplv3", "python3"), the name alone, which the
    documents may write without it ("the GPL", "GNU General Public License version 3")."""
    stem = re.sub(r"v?\d+$", "", fact)
    return [fact, stem] if stem != fact and len(stem) >= 3 else [fact]


def unknown_codes(facts: set[str], text: str, trails: list[str]) -> list[str]:
    """The codes among a question's key ``facts`` that the sources (``text``, lower case, and their
    passages' headings, ``trails``) never write: the documents do not speak of them, and an answer about
    what they do hold echoed the code ("the cloud budget for Q2 2027" answered with Q1's, t73)."""
    text = " ".join([text, *dict.fromkeys(trails)]).lower()
    text += " " + _CODE_DASH.sub("", text)  # "CN2291" is written "CN-2291" (t75)
    return sorted(f for f in facts if _a_code(f) and not any(contains_fact(text, name) for name in _names_of(f)))


def unknown_names(facts: set[str], text: str, trails: list[str]) -> list[str]:
    """The names of words among a question's key ``facts`` ("Manchester") that the sources never write,
    as ``unknown_codes``: "What is the nightly hotel limit in Manchester?" was answered "... in Manchester
    is £150", London's limit, from "The nightly limit is £150 in London and £110 elsewhere" (t81). Not
    a day's or a month's name (a question capitalizes "Sundays"), nor a word the sources write in part."""
    text = " ".join([text, *dict.fromkeys(trails)]).lower()
    calendar = set(WEEK) | set(MONTHS.split("|")) | {"may"}
    return sorted(f for f in facts if f.isalpha() and len(f) > 2 and f.rstrip("s") not in calendar
                  and not any(contains_fact(text, form) for form in (f, f.removesuffix("s"), f + "s")))


def asked_codes(facts: set[str]) -> list[str]:
    """The codes of letters and digits and the years among a question's key ``facts``, without dashes."""
    return sorted({f.replace("-", "") for f in facts if _a_code(f)})


def another_code(codes: list[str], sentence: str) -> bool:
    """Whether ``sentence`` names another code of the same letters as one of ``codes`` (the question's),
    or another year than a year of them, and not that code itself: room B6's chairs were quoted for room
    B30's (t73), the 2026 garden budget for 2027's (t77), room B20's chairs for B5's, and 2026's budget
    for 2027's where another file wrote 2027 (t78)."""
    for code in codes:
        letters = code.rstrip("0123456789")
        if YEAR.fullmatch(code):
            named = re.findall(rf"(?<![\d.,])({YEAR.pattern})(?![\d.,]\d)", sentence)
        elif letters.isalpha():
            named = [m.lower().replace("-", "") for m in re.findall(rf"\b{re.escape(letters)}-?\d+\b", sentence,
                                                                    re.IGNORECASE)]
        else:
            continue
        if named and code not in named:
            return True
    return False


# "What is the payload of ...?", "How much is the membership fee of ...?": payload, membership fee
def another_time(codes: list[str], dates: set[tuple[int, str]], window: str, sentence: str, place: str) -> bool:
    """Whether a sentence is of another time than the question's: its ``window`` (it and its neighbours)
    names days of the year and none of the asked ``dates`` (the 10 February minutes' header was quoted
    for the meeting of 14 April, t81); or the ``sentence`` does not name the asked year of ``codes``
    while its file's name or headings (``place``) name another year ("121 employees" of
    annual_report_2025.html answered 2024's, t81)."""
    named = dates_named(window)
    if dates and named and not named & dates:
        return True
    years = [code for code in codes if YEAR.fullmatch(code)]
    return bool(years) and not any(year in sentence for year in years) and another_code(years, place)


# "Where is the assembly point at Harbourside?": assembly point (t84: answered with the streets of two taprooms);
# "What is the minimum order from Westacre?": minimum order (t85: its lead time was quoted)
_ATTRIBUTE_OF = re.compile(r"^\s*(?:what|who|where|how\s+much|how\s+many)\s+(?:is|are|was|were)\s+the\s+"
                           r"(?P<attribute>[^\W\d_][\w-]*(?:\s+[^\W\d_][\w-]*){0,2}?)\s+(?:of|at|for|in|on|from)\b",
                           re.IGNORECASE)
# "What discount do staff get?": discount
_WHAT_A = re.compile(r"^\s*(?:what|(?P<which>which))\s+(?P<attribute>[^\W\d_][\w-]*)\s+"
                     r"(?:do|does|did|is|are|was|were|can|will|has|have)\b", re.IGNORECASE)
_NO_ATTRIBUTE = content_words("time times year years version versions number size percentage day days date kind type "
                              "way one ones thing things")


@dataclass(frozen=True)
class Attribute:
    """The thing a question asks for ("the payload of ..."), as content words, and whether one source
    sentence names all of them (then a supporting sentence must too) or only some (then it must name
    one: "Membership costs 25 euros a year." names the membership fee, the budget's sentence nothing)."""

    words: frozenset[str] = frozenset()
    whole: bool = True
    # "Which laptop do new starters receive?" asks for one of a kind, and a sentence that names one ("a
    # ThinkPad T14") answers it without the kind's word: the laptops' replacement was quoted instead (t81)
    one_of_a_kind: bool = False

    def named_by(self, words: set[str], names: set[str] | frozenset[str] = frozenset()) -> bool:
        """Whether a sentence of ``words`` (and new ``names``) names the attribute (always, when the
        question asks for none)."""
        if self.one_of_a_kind and names:
            return True
        return self.words <= words if self.whole else bool(self.words & words)


def asked_attribute(question: str, sentence_words: list[set[str]]) -> Attribute:
    """The attribute "What is the payload of the Orca Gripper X2?" asks for ("payload"), where one of
    the sources' sentences (``sentence_words``) names it, or a word of it; else none. The page's
    sentence saying what the gripper is was quoted as its payload (t73), the garden budget's as the
    membership fee (t78)."""
    match = _ATTRIBUTE_OF.match(question) or _WHAT_A.match(question)
    attribute = frozenset(content_words(match["attribute"]) - _NO_ATTRIBUTE) if match else frozenset()
    if attribute and any(attribute <= words for words in sentence_words):
        return Attribute(attribute, one_of_a_kind=match.groupdict().get("which") is not None)
    if len(attribute) > 1 and any(attribute & words for words in sentence_words):
        return Attribute(attribute, whole=False)
    return Attribute()


def other_thing(asked_things: set[tuple[str, str]], asked_days: set[str], text: str, said: bool = False) -> bool:
    """Whether ``text`` names another of the numbered things a question asks about (``asked_things``:
    "Larkspur-19" for Larkspur-7, t64: a name joined to its number, sentences.THING), and not the asked
    one too; or, for a question about days (``asked_days``), another weekday, or none in a source's
    sentence (an answer ``said`` may leave it out): Saturday's hours quoted for Sunday (t72), the ticket
    price for "Is there a ferry on Sundays?" (t81)."""
    for name, number in asked_things:
        found = {n for m, n in numbered_things(text) if m == name}
        if found and number not in found:
            return True
    days = days_named(text) if asked_days else set()
    return bool(asked_days) and (bool(days) or not said) and not days & asked_days


_LOWEST = frozenset("minimum min lowest smallest fewest shortest".split())
_HIGHEST = frozenset("maximum max highest largest biggest longest".split())


def the_other_extreme(question: str, sentence: str) -> bool:
    """Whether ``sentence`` speaks of the other end than the question asks for, and not of its own:
    "What is the minimum payment amount?" was answered "10,000 EUR" from "The maximum payment amount
    was raised from 10,000 EUR to 25,000 EUR." (t83)."""
    asked, said = set(_EXTREME.findall(question.lower())), set(_EXTREME.findall(sentence.lower()))
    for one, other in ((_LOWEST, _HIGHEST), (_HIGHEST, _LOWEST)):
        if asked & one and not asked & other and said & other and not said & one:
            return True
    return False


_EXTREME = re.compile(rf"\b({'|'.join(sorted(_LOWEST | _HIGHEST))})\b")
