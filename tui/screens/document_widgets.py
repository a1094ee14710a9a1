"""The Docs screen's widgets: the folder tree, the list of indexed documents and the messages that
fill it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DirectoryTree, Input

from pgpt.tui.screens.panel import RowTable

if TYPE_CHECKING:
    from pgpt.runtime.documents.store import DocumentRecord

PATH_CHARS = 26  # the file column before the table has a size


class VisibleTree(DirectoryTree):
    """The folder tree without hidden entries (.git, .venv): ingest skips them, so listing them
    offered folders that add nothing."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        """Every path whose name does not start with a dot."""
        return [path for path in paths if not path.name.startswith(".")]

    def on_key(self, event: events.Key) -> None:
        """Typing here types into the path field: after Enter on a folder the focus stays in the
        tree (Enter opens it), and the path a user then typed went nowhere. Backspace shows the
        folder above: the tree starts at the folder the app was started in, and nothing above it
        could be picked."""
        if event.key == "backspace":
            self.path = Path(self.path).resolve().parent
            event.stop()
        elif event.is_printable and event.character:
            field = self.screen.query_one("#doc-path", Input)
            field.focus()
            field.insert_text_at_cursor(event.character)
            event.stop()


@dataclass
class DocumentsListed(Message):
    """The documents now in the index (read by a worker)."""

    documents: list[DocumentRecord]


def remote_record(document: dict[str, Any]) -> DocumentRecord:
    """A server's document (GET /v1/ingest/list) as the table lists a local one."""
    from pgpt.runtime.documents.store import DocumentRecord

    meta = document.get("doc_metadata") or {}
    return DocumentRecord(path=str(meta.get("path") or meta.get("file_name") or document.get("doc_id", "")),
                          collection=str(meta.get("collection", "")), doc_id=str(document.get("doc_id", "")),
                          content_hash="", chunks=int(meta.get("chunks") or 0),
                          ingested_at=float(meta.get("ingested_at") or 0))


def short_path(path: str, width: int = PATH_CHARS) -> str:
    """``path`` with the home folder as ~ and, when still too long, only its end after an ellipsis."""
    home = str(Path.home())
    if path.startswith(home + "/"):
        path = "~" + path[len(home):]
    return path if len(path) <= width else "…" + path[-(width - 1):]


@dataclass
class Forgotten(Message):
    """A document was removed from the index."""

    summary: str
    documents: int


class DocumentTable(RowTable):
    """Indexed documents, newest first; Delete forgets the selected one."""

    BINDINGS = [Binding("delete", "screen.forget", "Forget")]
