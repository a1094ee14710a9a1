"""The Docs screen's list of indexed documents: those whose files are gone first, then the newest, the
file column as wide as the screen allows; typing part of a name finds it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from textual import events
from textual.binding import Binding
from textual.widget import Widget

from pgpt.runtime.sanitize import one_line
from pgpt.tui.sanitize import clean_text
from pgpt.tui.screens.documents.widgets import PATH_CHARS, short_path
from pgpt.tui.screens.panel import RowTable

if TYPE_CHECKING:
    from pgpt.runtime.documents.records import DocumentRecord

GONE = "[b]file gone[/b]"  # in the added column: the date matters less than that it answers from nothing
OTHER_COLUMNS = len("chunks") + len("2026-12-05") + 3 * 2  # chunks and date, and 1 column of padding a side


class DocumentTable(RowTable):
    """Indexed documents, those whose file is gone first, then newest first; Delete forgets the selected
    one; typing part of a file's name moves to the next row that holds it (a tester scrolled through
    2,670 rows to find one: the list had no way to look for a name)."""

    BINDINGS = [Binding("delete", "screen.forget", "Forget")]
    FIND_PAUSE_S = 1.5  # a pause this long starts a new name

    typed = ""
    _typed_at = 0.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.listed: list[DocumentRecord] = []  # listed last: refitted on a resize
        self.gone_paths: set[str] = set()  # the listed documents whose files are gone (marked in the list)
        self.waiting_for_model = False  # the list waits for the model's load, which opens the index
        # a row's key (its document's id: one file may be indexed in two collections) to its document's
        # whole path, with the collection where the list holds several (the cell has its end)
        self.paths: dict[str, str] = {}

    def show(self, records: list[DocumentRecord], gone: set[str], loading: bool) -> None:
        """List these documents (``gone``: the paths of those whose files are gone)."""
        self.listed, self.gone_paths, self.waiting_for_model = records, gone, loading
        self.refill()

    def current_key(self) -> str | None:
        """The cursor row's key (a document's id), None while the list is empty."""
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value if self.row_count else None

    def refill(self) -> None:
        """The rows again, the cursor at the same row: after a Delete the next document's, or the last
        (it went back to the top, and forgetting neighbours meant going back down each time)."""
        cursor = self.cursor_row
        self.clear()
        self.paths.clear()
        self._fill()
        if self.row_count:
            self.move_cursor(row=min(cursor, self.row_count - 1))

    def _fill(self) -> None:
        """The rows, gone files first, then newest first, the file column as wide as the table allows (it
        was 26 characters at every size: 60 empty columns at 120x40, and "…ork/t32a" for every file at 60x15)."""
        width = self._path_width()
        if self.waiting_for_model and not self.listed:  # key "": no path to show, nothing to forget
            self.add_row("", "", "loading… (the list is read once the model is loaded)", key="")
        # a file indexed in two collections (`ingest --collection`) is two rows, told apart by the collection
        several = len({record.collection for record in self.listed}) > 1
        for record in listing_order(self.listed, self.gone_paths):
            when = (GONE if record.path in self.gone_paths
                    else time.strftime("%Y-%m-%d", time.localtime(record.ingested_at)))
            where = f" [{one_line(record.collection)}]" if several else ""  # at the end: the cell keeps a path's end
            # the home as ~, all else
            self.paths[record.doc_id] = short_path(record.path, width=len(record.path) + 1) + where
            # one_line: a cell shows only its first line ("new\nline.txt" read "…/new")
            shown = one_line(short_path(record.path, max(8, width - len(where)))) + where
            self.add_row(str(record.chunks), when, clean_text(shown), key=record.doc_id)

    def _path_width(self) -> int:
        """The file column's characters: the table's width less the other columns, the padding and the
        scrollbar when the rows overflow (a guess of 3 columns cut paths that fitted, with 3 left free)."""
        if not self.size.width:
            return PATH_CHARS
        # the room it has (the row it sits in), not its own height (that of the rows it holds, the
        # header's alone once cleared); the header takes a row
        room = self.parent.size.height if isinstance(self.parent, Widget) else self.size.height
        scrollbar = self.styles.scrollbar_size_vertical if len(self.listed) > room - 1 else 0
        return max(8, self.size.width - OTHER_COLUMNS - scrollbar)

    def on_key(self, event: events.Key) -> None:
        """Letters, digits and punctuation look for a file name; the table's own keys go on."""
        char = event.character
        if not char or not char.isprintable() or (char == " " and not self.typed) or not self.row_count:
            return
        event.stop()
        event.prevent_default()
        now = time.monotonic()
        self.typed = (self.typed if now - self._typed_at < self.FIND_PAUSE_S else "") + char.lower()
        self._typed_at = now
        # the name typed so far may still fit the row it found; a new name looks from the next row
        start = self.cursor_row + (len(self.typed) == 1)
        for step in range(self.row_count):
            row = (start + step) % self.row_count
            if self.typed in str(self.get_row_at(row)[2]).replace("\\[", "[").lower():
                self.move_cursor(row=row)
                return
        self.app.bell()


def listing_order(records: list[DocumentRecord], gone: set[str]) -> list[DocumentRecord]:
    """The files found gone first (a user looks for them to forget them), then the newest add first,
    each add's files by path: one add's files came newest first, so a folder read Z to A (t84). An add
    is a run of files written less than ADD_GAP_S apart."""
    newest = sorted(records, key=lambda d: -d.ingested_at)
    add, previous = 0, None
    adds = {}
    for record in newest:
        if previous is not None and previous - record.ingested_at > ADD_GAP_S:
            add += 1
        adds[id(record)], previous = add, record.ingested_at
    return sorted(records, key=lambda d: (d.path not in gone, adds[id(d)], d.path))


ADD_GAP_S = 60.0
