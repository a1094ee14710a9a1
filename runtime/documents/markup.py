"""Prompt markup out of answers: source tags, template tokens, "Question: ... Answer:" echoes, and
script-like HTML tags.

A small model often copies what it read: the ``<source id="4" file="...">`` delimiters of
`ask`'s prompt, the chat template's ``<|im_start|>`` tokens spelled as text, or a
"Question: ... Answer: ..." exchange (the prompt's own labels). None of that may reach the user.
``strip_markup`` cleans a whole text; ``MarkupFilter`` does the same while the answer streams,
holding back only the bit that may still turn into markup (an unclosed ``<``, or a line that is
still a prefix of a label).
"""

from __future__ import annotations

import re

_SCRIPT_TAG = r"</?\s*(?:script|style|iframe|object|embed)\b[^>\n]*>"
# Tags of the prompt (also in the "(source" form that `_inert` gives document text) and chat
# template tokens written out as text: <|im_start|>, <s>, [INST], <<SYS>>.
_TAGS = re.compile(
    r"[<(]\s*/?\s*source\b[^>\n]*(?:>|$)"
    # and in brackets: a 1.5B model listed "[1] [source id="1" file="pluggy-CHANGELOG.rst"]" (t68)
    r"|\[\s*/?\s*source\b[^\]\n]*(?:\]|$)"
    r"|<\|[^|<>\n]{0,40}\|>"
    r"|</?s>|\[/?INST\]|<</?SYS>>"
    # tags that run code or load content where an HTML client shows the answer: a model copied
    # "</script>" out of a page it read into an answer (the readers drop scripts from documents)
    rf"|{_SCRIPT_TAG}",
    re.IGNORECASE | re.MULTILINE,
)
# What an HTML or Markdown client would run besides those tags: an event handler in any tag
# (<img src=x onerror=...>) and a javascript: URL ([click](javascript:...)).
_ACTIVE = re.compile(rf"{_SCRIPT_TAG}|<[a-z][^<>\n]*?\son[a-z]+\s*=[^<>\n]*>|\bjavascript\s*:", re.IGNORECASE)
_OPEN_TAG = re.compile(r"(?:<|\(\s*/?\s*source\b)[^>\n]{0,200}$|\[\s*/?\s*source\b[^\]\n]{0,200}$", re.IGNORECASE)
_ROLE_LINE = re.compile(r"^\s*(?:assistant|user|system)\s*:?\s*$", re.IGNORECASE)
# "Q:" and "A:" too: a German answer ended "... [1] A: Die Brücke ... entworfen. [1]", an echo of its start
_QUESTION = re.compile(r"^\s*(?:\*\*)?(?:question|q)\s*:", re.IGNORECASE)
# also pgpt's own label of a quote, which the model copies from an earlier answer in a chat (t72): its
# words are then checked as any draft's, never shown as a verbatim quote
_ANSWER = re.compile(
    r"^\s*(?:\*\*)?(?:(?:the )?answer(?: to (?:this|the|your) question)?(?: is)?|a|quote from the documents?)\s*:\s*"
    r"(?:\*\*)?\s*(?:(?<=documents: )\u201c|(?<=document: )\u201c)?", re.IGNORECASE)
_SOURCES = re.compile(r"^\s*(?:\*\*)?sources\s*:\s*(?:\*\*)?\s*$", re.IGNORECASE)
_ANSWER_IN_LINE = re.compile(r"\banswer\s*:\s*|\bA:\s*", re.IGNORECASE)
_PARTIAL_TAGS = ("(source", "(/source", "[source", "[/source", "[inst]", "[/inst]")
LABELS = ("q:", "a:", "question:", "answer:", "the answer is:", "the answer to this question is:", "sources:",
          "assistant", "user", "system", "**question:**", "**answer:**", "**sources:**", "quote from the documents:",
          "quote from the document:")


def strip_markup(text: str, final: bool = True) -> str:
    """``text`` without prompt markup; with ``final`` also trimmed, blank lines collapsed.

    A "Question:" line at the start is the model echoing the prompt: dropped (what follows an
    "Answer:" on it is kept). One after some answer text starts an exchange the model invents:
    everything from there on is dropped.
    """
    kept: list[str] = []
    for line in _TAGS.sub("", text).split("\n"):
        if _QUESTION.match(line):
            if any(part.strip() for part in kept):
                break  # an invented follow-up exchange: the answer ended before it
            after = _ANSWER_IN_LINE.split(line, maxsplit=1)
            if len(after) < 2:
                continue
            line = after[1]
        if _ROLE_LINE.match(line) or _SOURCES.match(line):
            continue
        kept.append(_ANSWER.sub("", line, count=1))
    cleaned = "\n".join(kept)
    if not final:
        return cleaned.lstrip()
    return re.sub(r"\n{3,}", "\n\n", cleaned).strip()


def inert_answer(text: str) -> str:
    """An answer's text as any client may show it: without terminal escapes and control characters
    (newlines and tabs kept), script-like tags, tags with an event handler and javascript: URLs.

    The draft loses its script tags as it streams; a quote of a source did not: a .txt file's
    "<script>", "<img onerror=...>" and ESC sequences reached API clients verbatim (t52).
    """
    from pgpt.runtime.sanitize import strip_controls

    return _ACTIVE.sub("", strip_controls(text))


class MarkupFilter:
    """Streams an answer's text with its markup removed (see ``strip_markup``)."""

    def __init__(self) -> None:
        self._raw = ""
        self._shown = ""

    def feed(self, piece: str) -> str:
        """The new text that is safe to show after ``piece``."""
        self._raw += piece
        return self._emit(strip_markup(self._raw[:self._safe_end()], final=False))

    def flush(self) -> str:
        """What is left when the answer ends."""
        return self._emit(strip_markup(self._raw, final=False).rstrip())

    @property
    def text(self) -> str:
        """The whole answer, cleaned (what ``strip_markup`` gives)."""
        return strip_markup(self._raw)

    def _emit(self, cleaned: str) -> str:
        if not cleaned.startswith(self._shown):  # cannot happen with strip_markup; show nothing rather than garble
            return ""
        piece, self._shown = cleaned[len(self._shown):], cleaned
        return piece

    def _safe_end(self) -> int:
        """Where the text that may still become markup starts: an unclosed tag, or a last line
        that is a label's beginning or a "Question:" line not yet ended."""
        end = len(self._raw)
        tag = _OPEN_TAG.search(self._raw)
        if tag is not None:
            end = tag.start()
        for opener in ("(", "["):  # "(so" may become "(source", "[IN" may become "[INST]"
            start = self._raw.rfind(opener, max(end - 9, 0), end)
            tail = self._raw[start:end].replace(" ", "").lower()
            if start >= 0 and any(tag_start.startswith(tail) for tag_start in _PARTIAL_TAGS):
                end = start
        line_start = self._raw.rfind("\n", 0, end) + 1
        line = _TAGS.sub("", self._raw[line_start:end]).lstrip().lower()
        if line and (any(label.startswith(line) for label in LABELS) or _QUESTION.match(line)):
            return line_start
        return end
