"""Whether an answer declines ("not in your documents") rather than states something.

One function for everything that must tell the two apart: the benchmark's CRAG scoring (+1 right,
0 declined, -1 wrong), the answer pipeline and the app. It reads only the answer's first sentence,
where a model puts its verdict: "The sources do not say ..." declines, while an answer that states
a fact and then adds "the documents do not mention X" does not.
"""

from __future__ import annotations

import re

# Phrases of a declined answer, as pgpt's own "not found" text and small chat models word it.
# Verbs like "does not include" count only with the sources as their subject: "the Corresponding
# Source does not include the System Libraries" is an answer, "the sources do not say" is not.
_DOCS = r"(?:sources?|documents?|context|texts?|passages?|excerpts?|information|files?)"
_DECLINES = re.compile(
    r"could(?: not|n't) find|can(?:not|'t) find|unable to (?:find|answer|locate|determine)"
    rf"|(?:the|these|those|your|provided|given) (?:provided |given |indexed )?{_DOCS} (?:provided |given |above |here )?"
    r"(?:do|does|did)(?: not|n't) (?:explicitly |directly |specifically |clearly )?"
    r"(?:contain|say|mention|provide|specify|state|include|give|cover|describe|answer|have|tell)"
    # "not explicitly stated": the 1.5B model's usual hedge, then side remarks shown as the answer
    r"|not (?:explicitly |directly |specifically |clearly )?(?:mentioned|stated|specified|provided|given|covered|included|described|found|present|available"
    rf"|addressed|discussed|listed)(?: \w+)? in (?:the |any of the |these |those |your )?(?:provided |given |indexed )?{_DOCS}"
    r"|\bno (?:information|mention|details?|answer|reference)s? (?:about|on|regarding|for|in|to|is|was)"
    r"|there is nothing|nothing about|not enough information|insufficient information"
    r"|i (?:do not|don't) know",
    re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def is_abstention(answer: str) -> bool:
    """True when ``answer`` is empty or its first sentence declines to answer.

    Args:
        answer: the text shown to the user (citations and quotes may follow).
    """
    text = " ".join(answer.split())
    if not text:
        return True
    opening = _SENTENCE_END.split(text, maxsplit=1)[0]
    return _DECLINES.search(opening.replace("\u2019", "'")) is not None
