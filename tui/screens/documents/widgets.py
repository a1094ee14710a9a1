"""The Docs screen's folder tree, the messages its workers post, and the reports of files found gone
(indexed, still answering, no longer on disk)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events
from textual.message import Message
from textual.widgets import DirectoryTree, Input

from pgpt.runtime.sanitize import one_line

if TYPE_CHECKING:
    from pgpt.runtime.documents.records import DocumentRecord

PATH_CHARS = 26  # the file column before the table has a size
GONE_NAMED = 5  # gone files named in a report; the list marks them all
# How the app forgets gone files, in the ingest summary (the CLI's is --prune); said so that it is
# also true in the chat's notice of the same report, where Ctrl+G does nothing.
FORGET_GONE = "Ctrl+G on the Docs screen forgets"


def unquoted(path: str) -> str:
    """The path typed, without the spaces around it and one pair of matching quotes around that: a file
    manager's copy-as-path gives '/home/me/my docs' with its quotes, which a shell would have taken away."""
    path = path.strip()
    if len(path) >= 2 and path[0] == path[-1] and path[0] in "'\"":
        return path[1:-1]
    return path


class VisibleTree(DirectoryTree):
    """The folder tree without hidden entries (.git, .venv): ingest skips them, so listing them
    offered folders that add nothing."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        """Every path whose name does not start with a dot."""
        return [path for path in paths if not path.name.startswith(".")]

    def process_label(self, label: Any) -> Any:
        """A file's name as text, without controls, bidi overrides or zero-width characters (the
        documents list beside it cleans them; here "report\u202efdp.exe" read "reportexe.pdf", t47)."""
        from rich.text import Text

        from pgpt.runtime.sanitize import strip_controls

        return super().process_label(Text(strip_controls(label.plain if isinstance(label, Text) else label)))

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
    """The documents now in the index (read by a worker), and the paths of those whose files are
    gone (always none for a server's index: its files are not on this machine)."""

    documents: list[DocumentRecord]
    gone: set[str] = field(default_factory=set)
    loading: bool = False  # the index opens with the model, which is still loading


def remote_record(document: dict[str, Any]) -> DocumentRecord:
    """A server's document (GET /v1/ingest/list) as the table lists a local one."""
    from pgpt.runtime.documents.records import DocumentRecord

    meta = document.get("doc_metadata") or {}
    return DocumentRecord(path=str(meta.get("path") or meta.get("file_name") or document.get("doc_id", "")),
                          collection=str(meta.get("collection", "")), doc_id=str(document.get("doc_id", "")),
                          content_hash="", chunks=int(meta.get("chunks") or 0),
                          ingested_at=float(meta.get("ingested_at") or 0))


def short_path(path: str, width: int = PATH_CHARS) -> str:
    """``path`` with the home folder as ~ and, when still too long, only its end after an ellipsis;
    ``width`` in terminal cells (a CJK name's characters take two: its ".md" was cut to ".m", t54)."""
    from pgpt.runtime.sanitize import cells, last_cells

    home = str(Path.home())
    if path.startswith(home + "/"):
        path = "~" + path[len(home):]
    return path if cells(path) <= width else "…" + last_cells(path, width - 1)


@dataclass
class Forgotten(Message):
    """A document was removed from the index."""

    summary: str
    documents: int


@dataclass
class GoneKept(Message, bubble=False):
    """Adding ``root`` found indexed files under it that are gone (they still answer)."""

    root: str
    paths: list[str]


def gone_lines(paths: list[str]) -> str:
    """The report's lines naming the gone files, a few of them, then how many more."""
    lines = "".join(f"\ngone {one_line(path)}" for path in paths[:GONE_NAMED])
    more = len(paths) - GONE_NAMED
    return lines + (f"\n… and {more} more gone, marked in the list" if more > 0 else "")


def forgotten_gone(forgotten: list[DocumentRecord], root: str) -> str:
    """The report after Ctrl+G: how many gone files were forgotten, a few by name."""
    if not forgotten:  # they came back (or were forgotten with Delete) since the report
        return f"No file under {one_line(root)} is gone now; nothing was forgotten."
    chunks = sum(d.chunks for d in forgotten)
    names = ", ".join(one_line(Path(d.path).name) for d in forgotten[:GONE_NAMED])
    more = f" and {len(forgotten) - GONE_NAMED} more" if len(forgotten) > GONE_NAMED else ""
    files = "file" if len(forgotten) == 1 else "files"
    return (f"Forgot {len(forgotten)} gone {files} under {one_line(root)} ({chunks} "
            f"{'chunk' if chunks == 1 else 'chunks'}): {names}{more}.")
