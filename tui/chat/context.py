"""What the model is sent of one chat: its questions and answers in every mode but Search, the
Documents-mode questions a follow-up is searched after, and how many of its oldest turns no longer fit.

Plain functions on the app's lists, so that the chat screen, its keys and its saved chats share them.
"""

from __future__ import annotations

import re
from typing import Any

# A Documents-mode question that asks about the answer before it ("say that shorter", "tell me
# more") is searched like any question and found nowhere; Chat mode reads the conversation (t72).
REWORK_HINT = ("To rework an earlier answer (shorter, in more detail, in other words), press Ctrl+R for "
               "Chat mode: it reads this conversation; Documents mode searches each question in your documents.")
REWORK_WORDS = 8  # "Explain that in more detail, please." has 6; a question of the documents is often longer
# a citation marker, "[2]" or "[1, 3]": Chat mode shows no sources, and the model copied the
# markers of the Documents answers it read into its own replies (t76)
_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
REPEATED_NOTE = ("The model gave this same answer {count} times in a row: a long chat can trap a small model. "
                 "Ctrl+N starts a new chat.")


def messages_to_send(conversation: list[dict[str, str]], asked: list[str], mode: str,
                     left_out: int) -> list[dict[str, str]]:
    """The messages one answer reads (copies: the worker gets its own).

    Chat mode: the conversation without the ``left_out`` oldest questions and their answers, which an
    earlier answer found no longer fit (a client of pgpt-serve asked the full conversation again each
    turn, one refused request per turn left out: t72). Documents mode: its last questions, then this one.
    """
    from pgpt.runtime.llm.chat import oldest_turn

    kept = [dict(m) for m in conversation]
    if mode == "docs":
        return [{"role": "user", "content": text} for text in asked[-4:]] + kept[-1:]
    for _ in range(left_out if mode == "chat" else 0):
        turn = oldest_turn(kept)
        if turn is None:
            break
        del kept[turn]
    return kept


def close_turn(conversation: list[dict[str, str]], asked: list[str], mode: str, answer: str) -> None:
    """Keep a finished answer as context, or drop a question that got none.

    A Documents answer stays in the conversation too, as the model would read it, so that Chat mode
    (Ctrl+R) sees what is on the screen ("say that shorter" was answered blind: t72); Search results
    are passage lists, not answers, and stay out, as does a "not found".
    """
    from pgpt.runtime.documents.abstention import is_abstention

    asking = bool(conversation) and conversation[-1]["role"] == "user"
    if mode == "docs" and asking:
        asked.append(conversation[-1]["content"])
    # nor a "not found": read as context, the small model gave it back as its next answer (t75)
    found = mode == "chat" or (mode == "docs" and not is_abstention(answer))
    if answer and found:
        conversation.append({"role": "assistant", "content": uncited(answer) if mode == "docs" else answer})
    elif asking:
        conversation.pop()


def uncited(answer: str) -> str:
    """A Documents answer as Chat mode's model reads it: without pgpt's quote label (answers.unlabelled)
    and without its citation markers, which point at sources that Chat mode does not send."""
    from pgpt.runtime.documents.answers import unlabelled

    return _CITATION.sub("", unlabelled(answer)).strip()


def repeats(conversation: list[dict[str, str]]) -> int:
    """How many answers in a row, ending with the last, have the same text though their questions
    all differ (1: the last answer is new; the same question asked again may well get the same answer)."""
    pairs = [(conversation[i - 1]["content"].strip(), m["content"].strip()) for i, m in enumerate(conversation)
             if i and m["role"] == "assistant" and conversation[i - 1]["role"] == "user"]
    same = []
    for question, answer in reversed(pairs):
        if answer != pairs[-1][1] or question in same:
            break
        same.append(question)
    return max(len(same), 1) if pairs else 0


def rework_hint(conversation: list[dict[str, str]], details: dict[str, Any] | None) -> str:
    """The hint under a Documents "not found" to a short message (as "say that shorter" is) when the
    chat has an earlier answer to rework, else "" (``conversation`` ends with that message)."""
    if details is None or details.get("kind") != "not_found" or not conversation:
        return ""
    short = len(conversation[-1]["content"].split()) <= REWORK_WORDS
    return REWORK_HINT if short and any(m["role"] == "assistant" for m in conversation[:-1]) else ""
