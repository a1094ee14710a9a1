"""How a draft's statements are shaped around the check (runtime/documents/grounding.py): an
attribution taken off their front, a lead-in that leads nowhere and a restatement dropped, and how
many words of prose a sentence holds before it may be quoted."""

from __future__ import annotations

import re

from pgpt.runtime.documents.sentences import CJK_RUN, LIST_ITEM, content_words, key_facts


def prose_words(text: str) -> int:
    """How many words (two letters or more) and numbers ``text`` holds once links are taken out; an
    identifier is one word ("PREFERRED_URL_SCHEME" and "www-data" were quoted as answers: a
    definition list's term alone). Letters of any alphabet count (a Russian sentence without a
    number had none), and a CJK run counts a word for each two characters. A CSV's commas part words
    as spaces do ("Gus Nilsson,Engineering,Frontend Engineer,Glasgow" is a row of six, t83)."""
    text = _LINK.sub(" ", text)
    spaced = sum(1 for token in re.split(r"[\s,;]+", CJK_RUN.sub(" ", text)) if re.search(r"[^\W\d_]{2,}|\d", token))
    return spaced + sum(len(run) // 2 for run in CJK_RUN.findall(text))


POINTER = re.compile(r"\s*(?:this|that|it|these)\s+(?:information\s+)?(?:(?:can|could|may)\s+be|is|are)\s+"
                      r"(?:found|stated|mentioned|shown|seen|described|given)\b", re.IGNORECASE)
# "According to the documentation in the source file "a.md", ..." says where, not what: its words are
# in no source sentence, and a right answer fell below the support it needed (tester t44). A
# qualifier that names a subject ("According to the Mozilla licence, ...") stays. "According to the
# pluggy 1.6.0 CHANGELOG, Python 3.8 ..." held the name "changelog", in no sentence (t68).
_ATTRIBUTION = re.compile(r"^\s*(?:according to|as (?:stated|described|mentioned) in|based on)\b[^,:\n]{0,150}?"
                          r"\b(?:sources?|documents?|documentation|files?|text|context|information|passages?|"
                          r"readme|manual|changelog|change log|history|release notes)\b[^,:\n]{0,80}[,:]\s*",
                          re.IGNORECASE)


def without_attribution(statement: str) -> str:
    """``statement`` without its "According to the sources," (the rest capitalized)."""
    rest = _ATTRIBUTION.sub("", statement, count=1)
    return rest if rest == statement else rest[:1].upper() + rest[1:]


_LINK = re.compile(r"<?\b(?:https?|ftp)://\S+>?|<[^<>\s]+>|\bwww\.\S+")


def without_bare_lead_ins(supported: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """``supported`` without a lead-in ("... you can type the following command:") that no list item or
    table row follows: what it led in to was not supported (a wrong command), and the answer was the
    lead-in, a colon and the next sentence."""
    def leads_somewhere(n: int) -> bool:
        after = supported[n + 1][0].lstrip() if n + 1 < len(supported) else ""
        return bool(LIST_ITEM.match(after)) or after.startswith("|")

    return [(statement, index) for n, (statement, index) in enumerate(supported)
            if not statement.rstrip().endswith(":") or leads_somewhere(n)]


def without_restatements(supported: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Drop a statement whose words, names and numbers an earlier one already holds: a small model
    ends with the bare value ("... sold 4,310 bicycles. [1] 4,310 [1]")."""
    kept: list[tuple[str, int]] = []
    words: set[str] = set()
    facts: set[str] = set()
    for statement, index in supported:
        if kept and content_words(statement) <= words and key_facts(statement) <= facts:
            continue
        kept.append((statement, index))
        words |= content_words(statement)
        facts |= key_facts(statement)
    return kept


# a stray apostrophe or hyphen inside a word; not a contraction ("it's", "we're", "can't", "I'll": after
# an apostrophe, at most two letters), whose joined letters may be a word of the source ("its", t75)
_BROKEN_WORD = re.compile(r"\b([^\W\d_]+)(?:['\u2019](?=[^\W\d_]{3})|-)([^\W\d_]+)\b")


def mended(statement: str, source: str) -> str:
    """``statement`` with each word the model broke with a stray apostrophe or hyphen ("can'teen")
    joined again, where its source has the joined word and not the broken one: a quantized model's
    slip passed the check, and the answer a script stored said "can'teen" (t71)."""
    lowered = source.lower()
    words = set(re.findall(r"[^\W\d_]+", lowered))

    def join(match: re.Match[str]) -> str:
        joined = match[1] + match[2]
        return joined if joined.lower() in words and match[0].lower() not in lowered else match[0]

    return _BROKEN_WORD.sub(join, statement)


# "The payload of the Orca Gripper X2 is ...": an attribute of a subject, stated to be something
_ATTRIBUTE_IS = re.compile(r"^(?:the\s+)?(?P<attribute>[^\W\d_][\w-]*(?:\s+[^\W\d_][\w-]*)?)\s+of\s+(?:the\s+)?"
                           r"(?P<subject>.+?)\s+(?:is|are)\s+(?P<value>.+?)[.!]?$", re.IGNORECASE)
_COPULA = re.compile(r"\b(?:is|are)\b", re.IGNORECASE)


def reuses_a_definition(statement: str, sentence: str) -> bool:
    """Whether ``statement`` says an attribute of a subject is what ``sentence`` says the subject itself
    is: "The payload of the Orca Gripper X2 is a two-finger electric gripper ..." from "The Orca Gripper X2
    is a two-finger electric gripper ...", which holds no payload (the table row beside it does). Every
    word of it stood in the sentence, so it passed as supported, cited (t73)."""
    claim = _ATTRIBUTE_IS.match(statement.strip())
    copula = _COPULA.search(sentence)
    if claim is None or copula is None:
        return False
    attribute, written = content_words(claim["attribute"]), content_words(sentence)
    return (bool(attribute) and not attribute & written
            and bool(content_words(claim["subject"]) & content_words(sentence[:copula.start()]))
            and content_words(claim["value"]) <= content_words(sentence[copula.end():]))


def answer_words(text: str) -> list[str]:
    """An answer's words, lowercased, without its citations' numbers or its spacing."""
    return re.findall(r"\w+", re.sub(r"\[\d+\]", " ", text).lower())


def answer_end(draft: str, answer: str, finish_reason: str) -> str:
    """How the answer shown ends: "length" only when the token limit cut the draft and the answer ends
    where the draft did; a check that left the draft's cut tail out shows a whole answer, and "cut at
    the 256-token limit; --max-tokens allows a longer answer" under two kept sentences asked for a
    slower answer that would say no more (t79)."""
    tail = answer_words(draft)[-3:]
    if finish_reason != "length" or not tail:
        return finish_reason
    return "length" if answer_words(answer)[-len(tail):] == tail else "stop"
