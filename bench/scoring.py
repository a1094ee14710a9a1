"""Scores of `pgpt-tui bench-docs`: passage hits, CRAG answer scores, Wilson intervals, breakdowns.

Retrieval is scored by passage: a retrieved chunk from the right file that holds the question's
evidence span (strict) or one of its accepted answers (lenient). Texts are compared after
:func:`normalize`, so a span copied from one reader's output still matches a chunk whose line
breaks, hyphenation or quotes differ. Answers are scored as CRAG does: +1 right, 0 "not found",
-1 wrong; on an unanswerable question abstaining is right and any answer wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2013": "-", "\u2014": "-",
                         "\u00a0": " ", "\u00ad": "", "\u00b6": " "})  # pilcrow: Sphinx's heading anchors
# A hyphen between letters, with or without a line break after it: "free-\ndom", "general-purpose".
_LETTER_HYPHEN = re.compile(r"(?<=[^\W\d_])-\s*(?=[^\W\d_])")
Z95 = 1.959963984540054


def normalize(text: str) -> str:
    """Lower case, typographic quotes and dashes made plain, hyphens between letters and runs of
    white space removed: the form in which evidence spans and chunks are compared."""
    text = _LETTER_HYPHEN.sub("", text.translate(_QUOTES).lower())
    return " ".join(text.split())


def contains_span(text: str, span: str) -> bool:
    """Whether ``span`` occurs in ``text``, both normalized."""
    return normalize(span) in normalize(text)


def contains_answer(text: str, answer: str) -> bool:
    """Whether ``answer`` occurs in ``text`` as whole words ("MIT" is not in "permit"), normalized;
    also with hyphens read as spaces, so "loopcontrols" is found in "loopcontrols-extension"."""
    for form in (normalize, _spaced):
        needle = re.escape(form(answer))
        if re.search(rf"(?<![a-z0-9]){needle}(?![a-z0-9])", form(text)):
            return True
    return False


def _spaced(text: str) -> str:
    return " ".join(text.translate(_QUOTES).lower().replace("-", " ").split())


def wilson(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a rate (95 % by default); (0, 1) when there is nothing to count."""
    if not total:
        return 0.0, 1.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(successes: int, total: int) -> dict[str, Any]:
    """A rate with its count and Wilson 95 % interval, as the JSON report holds it."""
    low, high = wilson(successes, total)
    return {"rate": round(successes / total, 3) if total else None, "n": total, "hits": successes,
            "ci95": [round(low, 3), round(high, 3)]}


def mean_interval(values: list[int]) -> dict[str, Any]:
    """Mean of per-question scores (-1, 0, +1) with a normal 95 % interval (the score is no rate)."""
    if not values:
        return {"mean": None, "n": 0, "ci95": [None, None]}
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1) / len(values))
    return {"mean": round(mean, 3), "n": len(values),
            "ci95": [round(max(-1.0, mean - Z95 * spread), 3), round(min(1.0, mean + Z95 * spread), 3)]}


@dataclass(frozen=True)
class PassageHit:
    """Where the first passage holding the answer ranked (0: not among those retrieved)."""

    strict: int  # rank of the first chunk of the right file with the evidence span
    lenient: int  # ... with the span or an accepted answer
    file: int  # rank of the first chunk of the right file


def passage_rank(question: dict[str, Any], hits: list[tuple[str, str]]) -> PassageHit:
    """Ranks of the first good passage among ``hits`` ((file name, chunk text), best first)."""
    strict = lenient = file = 0
    for rank, (name, text) in enumerate(hits, start=1):
        if name != question["source"]:
            continue
        file = file or rank
        span = question.get("evidence")
        if span and not strict and contains_span(text, span):
            strict = rank
        if not lenient and ((span and contains_span(text, span))
                            or any(contains_answer(text, a) for a in accepted_answers(question))):
            lenient = rank
    return PassageHit(strict, lenient, file)


def accepted_answers(question: dict[str, Any]) -> list[str]:
    """The strings any one of which makes an answer right (the older sets list keywords that must
    all appear; they count as one string each only for the lenient passage hit)."""
    return list(question.get("answers") or question.get("answer") or [])


def answer_is_right(question: dict[str, Any], answer: str) -> bool:
    """Right: one accepted answer in the text (new sets), or every keyword (the older sets)."""
    if "answers" in question:
        return any(contains_answer(answer, a) for a in question["answers"])
    return all(contains_answer(answer, word) for word in question.get("answer", []))


def crag_score(question: dict[str, Any], answer: str, abstained: bool) -> int:
    """+1 right, 0 "not found", -1 wrong; on an unanswerable question abstaining is right."""
    if question.get("unanswerable"):
        return 1 if abstained else -1
    if abstained:
        return 0
    return 1 if answer_is_right(question, answer) else -1


def groups(questions: list[dict[str, Any]], formats: dict[str, str]) -> dict[str, list[int]]:
    """Question indices per breakdown group: "format:.pdf", "tag:paraphrase", ..."""
    found: dict[str, list[int]] = {}
    for index, question in enumerate(questions):
        keys = [f"format:{formats.get(question['source'], '?')}"]
        keys += [f"tag:{tag}" for tag in question.get("tags", [])]
        for key in keys:
            found.setdefault(key, []).append(index)
    return dict(sorted(found.items()))


def count(flags: Iterable[bool]) -> tuple[int, int]:
    """(true, total) of a run of flags."""
    values = list(flags)
    return sum(values), len(values)


_MARKUP = re.compile(r"</?\s*source\b|\bQuestion:|\bSources:|<\|[a-z_]+\|>|<\s*/?\s*(?:s|im_start|im_end)\s*>",
                     re.IGNORECASE)


def has_markup(answer: str) -> bool:
    """Whether prompt markup reached the answer: source tags, template echoes, special tokens."""
    return _MARKUP.search(answer) is not None
