"""The command line's progress bar: redrawn in place on a terminal, a log line per step otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

from pgpt.runtime.sanitize import cells, first_cells, last_cells, strip_controls

WIDTH = 30
LOG_EVERY_S = 15.0  # in a log, a line at least this often while a large file holds the bar still


class TextBar:
    """One line: ``[####....] DETAIL ETA TAIL``, for downloads and ingestion alike."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.step = -1
        self.width = 0  # of the line on the terminal now
        self.written = time.monotonic()  # when a log line was last written

    def draw(self, done: float, total: float, detail: str, eta_s: float | None, tail: str = "") -> None:
        """Redraw with ``done`` of ``total``; in a log, when the bar moves a step or every 15 s.

        ``detail`` and ``tail`` (a file name) are sanitized here: a name can hold escape sequences
        that would clear the screen or write the clipboard, or a newline that would split the line.
        """
        filled = int(WIDTH * done / max(total, 1))
        eta = f"ETA {eta_s:4.0f}s" if eta_s is not None else "ETA    ?"
        detail, tail = (" ".join(strip_controls(text).split()) for text in (detail, tail))
        line = f"[{'#' * filled}{'.' * (WIDTH - filled)}] {detail} {eta}  {tail}".rstrip()
        if self.tty:  # padded over the longer line drawn before ("z.txttxt" otherwise)
            # A line that wraps is not redrawn by \r (its end stayed): on a narrow terminal the bar
            # narrows first, then the file name loses its start, keeping its end and the count inside
            # it ("…big20.txt (768/42867 chunks of it)"); it went whole on a 100-column terminal, for a
            # 27-minute file, the one sign of how far that file was (t53). The counts and ETA stay.
            # Counted in terminal cells, not characters: a CJK name is two cells a character, and its line
            # wrapped and stayed on the screen, one line per such file (t54).
            room = self._columns() - 1
            if cells(line) > room:
                head = f"{detail} {eta}"
                width = max(10, min(WIDTH, room - cells(f"[] {head}  {tail}")))
                filled = int(width * done / max(total, 1))
                line = f"[{'#' * filled}{'.' * (width - filled)}] {head}"
                left = room - cells(line) - 2
                if tail and left >= 20:  # less shows too little of it to tell
                    line += "  " + (tail if cells(tail) <= left else "…" + last_cells(tail, left - 1))
                line = first_cells(line, room)
            # padded over the line before, within the terminal's width (it may have narrowed since)
            self.stream.write("\r" + line + " " * max(min(self.width, room) - cells(line), 0))
            self.width = cells(line)
        elif filled != self.step or time.monotonic() - self.written >= LOG_EVERY_S:
            self.stream.write(line + "\n")
            self.written = time.monotonic()
        self.step = filled
        self.stream.flush()

    def _columns(self) -> int:
        """The terminal's width (at most 121), read at each draw: it may be resized meanwhile."""
        import os

        try:
            return min(os.get_terminal_size(self.stream.fileno()).columns, 121)
        except (OSError, ValueError, AttributeError):
            return 121

    def close(self) -> None:
        """End the bar's line."""
        if self.tty and self.step >= 0:
            self.stream.write("\n")
            self.stream.flush()


def status_line(text: str, quiet: bool = False) -> None:
    """One line of what `ask` or `chat` does now, on a terminal's stderr only, replaced by the next ("" clears it):
    it showed nothing for the first 5 s (the model, the embedder and the index loading, the search)."""
    if not quiet and sys.stderr.isatty():
        # cut to the terminal's width (COLUMNS too) and padded with spaces, not ESC[K: a line that wraps
        # is not redrawn by \r, and a dumb terminal shows the escape (40 columns filled with copies, t50)
        import shutil

        room = max(shutil.get_terminal_size().columns - 1, 10)
        shown = first_cells(text, room)  # in cells: a CJK question is two a character
        sys.stderr.write("\r" + shown + " " * (room - cells(shown)) + ("" if text else "\r"))
        sys.stderr.flush()


def terminal_width() -> int:
    """The terminal's width, or 0 when the output is no terminal (a file or a pipe keeps every column)."""
    import shutil

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else 0

