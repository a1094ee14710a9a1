"""The similar-question cache: a question whose embedding lies within ``SIMILAR_COSINE`` of an
earlier one, in the same scope, gets that one's checked answer at once.

A scope (runtime/documents/answers.py) holds the index version, embedding model, chat model,
check version and the answer's settings: any ingest, forget or model change moves to a new scope,
so old answers are never served for changed documents. Entries are JSON with a checksum (the
answer cache's format).
"""

from __future__ import annotations

import base64
import re
from typing import Any

import numpy as np

from pgpt.runtime.documents.sentences import denies
from pgpt.runtime.llm.answer_cache import DOCUMENTS, cache_key

# Measured with all-MiniLM-L6-v2 on normalized questions (lower case, no punctuation): rewordings
# score 0.99-1.0 ("of"/"for", "whats", a missing "?"), while questions that differ in one fact
# score 0.85-0.91 ("ferry on Tuesday"/"on Friday" 0.909). Numbers must also match exactly.
SIMILAR_COSINE = 0.95
MAX_SIMILAR_ENTRIES = 200
# Within that cosine, every other word must be in both questions: "above"/"below the limit" (0.985),
# "Who is"/"was the CEO" (0.972) and "last"/"this year" (0.950) scored as rewordings and were given
# each other's answers (t65). These words may come and go ("of"/"for", "what's"/"whats"/"what is").
FILLERS = frozenset({"a", "an", "the", "of", "for", "is", "s", "please"})
CONTRACTED = {"whats": "what", "whos": "who", "wheres": "where", "whens": "when", "hows": "how", "whys": "why"}


def find_similar(cache: Any, scope: str, question: str, vector: np.ndarray) -> dict[str, Any] | None:
    """The answer record kept for the scope's question closest to ``question`` (its normalized
    embedding ``vector``), when within SIMILAR_COSINE; None otherwise or when it was evicted."""
    entries = (cache.get(scope) or {}).get("entries", [])
    numbers, negated, words = _numbers(question), denies(question), asked_words(question)
    # the same numbers, and both or neither denying: "Who is not the keeper?" lies at cosine 0.97
    # from "Who is the keeper?" and got its answer
    vectors = [(e, _unpack(e.get("vector"), vector.size)) for e in entries
               if e.get("numbers") == numbers and e.get("denies", False) == negated
               and asked_words(str(e.get("question", ""))) == words]
    vectors = [(e, v) for e, v in vectors if v is not None]
    if not vectors:
        return None
    matrix = np.stack([v for _, v in vectors])
    best = int(np.argmax(matrix @ vector))
    if float(matrix[best] @ vector) < SIMILAR_COSINE:
        return None
    return cache.get(vectors[best][0].get("answer_key", ""))


def remember(cache: Any, scope: str, question: str, vector: np.ndarray, record: dict[str, Any]) -> None:
    """Store ``record`` under its own key and add the question to the scope's small index.

    The index holds only questions, numbers and packed vectors, so a lookup reads a few KB
    per entry instead of every cached answer with its passages (measured: 60 entries in JSON
    lists took 6 ms to parse, which pushed a hit past 50 ms on a slow VM).
    """
    answer_key = cache_key(kind="similar-answer", scope=scope, question=normalize_question(question))
    cache.put(answer_key, record, tag=DOCUMENTS)
    entries = [e for e in (cache.get(scope) or {}).get("entries", []) if e.get("answer_key") != answer_key]
    entries = entries[-(MAX_SIMILAR_ENTRIES - 1):] + [
        {"question": question, "numbers": _numbers(question), "denies": denies(question), "answer_key": answer_key,
         "vector": base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")}]
    cache.put(scope, {"entries": entries}, tag=DOCUMENTS)


def normalize_question(question: str) -> str:
    """Lower case, punctuation and extra spaces removed: what the similar-question cache compares."""
    return " ".join(re.sub(r"[?!.,;:'\"()]+", " ", question.lower()).split())


def asked_words(question: str) -> frozenset[str]:
    """The words of ``question`` that a rewording keeps (all but FILLERS, contractions spelled out)."""
    return frozenset(CONTRACTED.get(word, word) for word in normalize_question(question).split()) - FILLERS


def _unpack(packed: Any, size: int) -> np.ndarray | None:
    """A vector stored by ``remember`` (base64 of little-endian float32), or None if it is not one."""
    try:
        vector = np.frombuffer(base64.b64decode(packed, validate=True), dtype="<f4")
    except (TypeError, ValueError):
        return None
    return vector if vector.size == size else None


def _numbers(question: str) -> list[str]:
    return sorted(re.findall(r"\d+(?:[.,]\d+)?", question))
