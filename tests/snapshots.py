"""SVG snapshots of the app's screens (80x24, and some at 60x15), compared by the text they show.

Each snapshot is a real SVG screenshot (``tests/snapshots/NAME.svg``, viewable in a browser). The
comparison reads the characters of each terminal cell back out of the SVG and compares the words
in reading order, with what changes from run to run masked (numbers: timings, sizes, dates), so a
moved, cut or missing widget fails the test while a faster machine does not. Colours are not compared: the theme is
Textual's, and its exact SVG changes between Textual releases.

Update the files after an intended change with ``PGPT_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py``.
"""

from __future__ import annotations

import html
import os
import re
import time
from pathlib import Path

from textual.app import App
from textual.pilot import Pilot

FOLDER = Path(__file__).parent / "snapshots"
CELL_WIDTH = 12.2  # pixels per terminal column in Textual's SVG export
_TEXT = re.compile(r'<text class="[^"]*-r\d+" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" '
                   r'clip-path="url\(#[^)]*-line-(\d+)\)">(.*?)</text>', re.S)
# a model's version on the status line (name@1a2b3c) depends on the export's bytes
MASKS = [(re.compile(r"@[0-9a-f]{6}\b"), "@<version>"), (re.compile(r"\d+(\.\d+)? ?[KMGT]B\b"), "<size>"),
         (re.compile(r"\d+"), "#")]


def screen_text(svg: str, width: int = 80, height: int = 24) -> list[str]:
    """The characters shown in each row of a Textual SVG screenshot."""
    rows = [[" "] * width for _ in range(height)]
    for x, line, text in _TEXT.findall(svg):
        column, row = round(float(x) / CELL_WIDTH), int(line)
        for offset, char in enumerate(html.unescape(text).replace("\xa0", " ")):
            if row < height and column + offset < width and char != "\n":
                rows[row][column + offset] = char
    return ["".join(cells).rstrip() for cells in rows]


def words(rows: list[str], extra: list[tuple[str, str]] | None = None) -> list[str]:
    """The words on the screen in reading order, with run-dependent parts masked (numbers, sizes and
    ``extra`` patterns). Words, not rows: a free-space figure one digit longer may wrap a line."""
    text = " ".join(rows)
    for pattern, replacement in [(re.compile(p), r) for p, r in extra or []] + MASKS:
        text = pattern.sub(replacement, text)
    return text.split()


async def settle(pilot: Pilot, timeout: float = 10.0) -> None:
    """Let the app render until its screen holds still: the footer row is drawn and two frames
    0.1 s apart show the same text. A fixed pause was not enough on a slower CI machine, where a
    focus change had not yet redrawn the footer's key bindings when the screenshot was taken."""
    deadline = time.monotonic() + timeout
    before: list[str] = []
    while time.monotonic() < deadline:
        await pilot.pause(0.1)
        rows = screen_text(pilot.app.export_screenshot())
        if rows[-1].strip() and rows == before:
            return
        before = rows


def check_snapshot(app: App[object], name: str, extra_masks: list[tuple[str, str]] | None = None) -> None:
    """Compare the app's screen with ``tests/snapshots/NAME.svg`` (write it when updating)."""
    svg = app.export_screenshot(title=f"pgpt · {name}")
    path = FOLDER / f"{name}.svg"
    if os.environ.get("PGPT_UPDATE_SNAPSHOTS") == "1":
        FOLDER.mkdir(exist_ok=True)
        path.write_text(svg, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path}; create it with PGPT_UPDATE_SNAPSHOTS=1"
    expected_rows = screen_text(path.read_text(encoding="utf-8"), *app.size)
    shown_rows = screen_text(svg, *app.size)
    assert words(shown_rows, extra_masks) == words(expected_rows, extra_masks), (
        "the screen changed; shown:\n" + "\n".join(shown_rows) + "\nexpected:\n" + "\n".join(expected_rows))
