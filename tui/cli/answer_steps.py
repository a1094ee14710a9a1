"""What `ask` shows on a terminal while it answers: each step as it starts (searching, reading
the passages, writing with the draft's length, checking), on stderr; the answer is read in a
worker thread that Ctrl-C stops (interrupt.py). A 1.5B model read a long prompt for half a
minute under "searching the documents and reading the passages…" (t53). Then the answer as text
(``describe_answer``)."""

from __future__ import annotations

import re
import threading
from typing import Any

from pgpt.runtime.sanitize import strip_controls
from pgpt.tui.cli.interrupt import interruptible
from pgpt.tui.cli.text_bar import status_line

STEPS = {"searching": "searching the documents…", "reading": "reading the passages…",
         "checking": "checking the answer against the sources…", "waiting": "waiting for the server…"}


def read_answer(stream: Any, cancel: threading.Event, quiet: bool) -> None:
    """Read ``stream`` (a documents answer, local or a server's) to its end; ``stream.result``
    then holds the checked answer. ``quiet`` (--json, or no terminal): nothing is shown."""
    status_line(STEPS["searching"], quiet)
    if hasattr(stream, "on_state"):  # called from the worker thread; a status line is one write
        stream.on_state = lambda state: say_step(state, quiet)
    written = 0
    for piece in interruptible(stream, cancel, quiet):
        written += len(piece)
        status_line(f"writing the answer, then checking it against the sources… {written} characters", quiet)
    status_line("", quiet)


def say_step(state: str, quiet: bool) -> None:
    """A step on the status line ("writing" is said by the pieces, with their count)."""
    tokens, busy = state.removeprefix("drafting "), state.removeprefix("busy ")
    if tokens.isdigit():  # a server drafts in silence: it sends the answer once checked
        status_line(f"the server is writing the answer, then checking it… {tokens} tokens", quiet)
    elif busy.isdigit():  # refused as busy: asked again after the wait the server asked for
        status_line(f"the server is busy: asking again in {busy} s… (Ctrl-C stops)", quiet)
    elif state in STEPS:
        status_line(STEPS[state], quiet)


def describe_answer(result: dict[str, Any]) -> str:
    """`ask`'s text output: the answer, its supporting quotes, the sources (or, when nothing was
    found, the closest passages), all free of terminal escapes."""
    lines = [result["answer"]]
    from pgpt.runtime.documents.conflicts import quote_groups
    from pgpt.runtime.documents.passage_view import quote_line, where

    for title, group in quote_groups(result):
        lines += ["", title + ":"] + [f"  {quote_line(q, result['sources'])}" for q in group]
    if result["sources"] and not result.get("not_found"):
        # each with its opening words: two passages of one PDF page were "[1] a.pdf, page 3" twice
        lines += ["", "Sources:"] + [f"  [{n}] {where(s)}: {_opening(s.get('text', ''))}"
                                     for n, s in enumerate(result["sources"], 1)]
    if result.get("closest"):
        lines += ["", "Closest passages (the answer may be in them; judge for yourself):"]
        from pgpt.runtime.documents.grounding import CLOSEST_CHARS
        from pgpt.runtime.documents.passage_view import indented, sentence_window

        for number, passage in enumerate(result["closest"], 1):  # around the sentence closest to the question
            snippet = "".join(sentence_window(passage["text"], passage.get("sentence", ""), CLOSEST_CHARS))
            lines += [f"  {number}. {where(passage)}", indented(f"     {snippet}", "     ")]
    if result.get("left_out"):
        from pgpt.runtime.documents.left_out import note

        lines += ["", note(result["left_out"])]
    if result["cached"]:
        lines += ["(cached: a similar question was answered before)"]
    return strip_controls("\n".join(lines))


def _opening(text: str, width: int = 60) -> str:
    """A passage's first words on one line, cut at a word within ``width`` characters, with an ellipsis,
    without Markdown's heading marks and table rules ("## Kitchen and facilities ...", "|----|", t79)."""
    lines = (re.sub(r"^\s*#{1,6}\s+", "", line) for line in text.splitlines())
    flat = " ".join(" ".join(line for line in lines if not re.fullmatch(r"\s*\|?[\s:|-]*-[\s:|-]*", line)).split())
    return flat if len(flat) <= width else flat[:width].rsplit(" ", 1)[0] + "\u2026"
