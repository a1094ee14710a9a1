"""What `ask` shows on a terminal while it answers: each step as it starts (searching, reading
the passages, writing with the draft's length, checking), on stderr; the answer is read in a
worker thread that Ctrl-C stops (interrupt.py). A 1.5B model read a long prompt for half a
minute under "searching the documents and reading the passages…" (t53)."""

from __future__ import annotations

import threading
from typing import Any

from pgpt.tui.cli.interrupt import interruptible
from pgpt.tui.cli.text_bar import status_line

STEPS = {"searching": "searching the documents…", "reading": "reading the passages…",
         "checking": "checking the answer against the sources…", "waiting": "waiting for the server…"}


def read_answer(stream: Any, cancel: threading.Event, quiet: bool) -> None:
    """Read ``stream`` (a documents answer, local or a server's) to its end; ``stream.result``
    then holds the checked answer. ``quiet`` (--json, or no terminal): nothing is shown."""
    status_line(STEPS["searching"], quiet)
    if hasattr(stream, "on_state"):  # called from the worker thread; a status line is one write
        stream.on_state = lambda state: _say_step(state, quiet)
    written = 0
    for piece in interruptible(stream, cancel, quiet):
        written += len(piece)
        status_line(f"writing the answer, then checking it against the sources… {written} characters", quiet)
    status_line("", quiet)


def _say_step(state: str, quiet: bool) -> None:
    """A step on the status line ("writing" is said by the pieces, with their count)."""
    tokens = state.removeprefix("drafting ")
    if tokens.isdigit():  # a server drafts in silence: it sends the answer once checked
        status_line(f"the server is writing the answer, then checking it… {tokens} tokens", quiet)
    elif state in STEPS:
        status_line(STEPS[state], quiet)
