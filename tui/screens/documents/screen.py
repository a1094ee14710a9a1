"""The Docs screen (F4, Ctrl+O): pick a file or folder, add it with progress, list and forget documents."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DirectoryTree, Footer, Input, ProgressBar, Static
from textual.worker import Worker, WorkerState

from pgpt.runtime.documents.progress import shown_step
from pgpt.runtime.errors import Cancelled, user_message
from pgpt.runtime.sanitize import one_line
from pgpt.tui.chat.messages import IngestDone, IngestTick
from pgpt.tui.chat.widgets import fit_fields
from pgpt.tui.screens.documents.table import DocumentTable
from pgpt.tui.screens.documents.widgets import (FORGET_GONE, DocumentsListed, Forgotten, GoneKept, VisibleTree,
                                                forgotten_gone, gone_lines, remote_record, short_path, unquoted)
from pgpt.tui.screens.panel import PanelScreen
from pgpt.tui.sanitize import clean_text

if TYPE_CHECKING:
    from pgpt.tui.chat.library import DocumentLibrary


class DocumentsScreen(PanelScreen):
    """Add documents to the index while the chat keeps working, and see what is indexed."""

    SHOWS_FAILURES = True

    # Priority: the focused path Input would take Ctrl+X (cut) for itself.
    BINDINGS = [Binding("ctrl+x", "stop_ingest", "Stop adding", priority=True),
                Binding("ctrl+g", "forget_gone", "Forget gone")]

    DEFAULT_CSS = """
    DocumentsScreen #doc-body { height: 1fr; }
    DocumentsScreen #doc-tree { width: 30%; max-width: 28; border-right: vkey $panel-lighten-2; }
    DocumentsScreen #doc-table { width: 1fr; }
    DocumentsScreen #doc-progress-line { height: 1; display: none; }
    DocumentsScreen #doc-progress { width: 34; padding: 0 1; }
    DocumentsScreen #doc-progress-text { width: 1fr; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    DocumentsScreen #doc-report-box { height: 5; max-height: 25%; border-top: hkey $panel-lighten-2; padding: 0 1; }
    """

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._cancel: threading.Event | None = None
        self._ended = threading.Event()  # the running add's worker returned (stop_for_quit waits for it)
        self._quitting = False
        self._progress: list[str] = []  # the last tick's fields, fitted again on a resize
        self._gone_kept: GoneKept | None = None  # the last add's gone files: Ctrl+G forgets them
        self._stale_error = False  # the report shows a failed forget or listing, of a moment now past

    @property
    def ingesting(self) -> bool:
        """Whether documents are being added right now."""
        return self._cancel is not None

    def compose(self) -> ComposeResult:
        client = bool(self.settings.server)  # a client adds nothing from here: no path, no tree (t73)
        yield Static("Documents on the server · Delete forgets the selected one" if client else
                     "Documents · Enter adds the path · Tab: folder tree (Backspace: up), list", classes="panel-title")
        # not selected on focus: a path typed in the tree goes on here character by character
        yield Input(placeholder="A file or folder to add (searched recursively), e.g. ~/docs", id="doc-path",
                    select_on_focus=False, disabled=client)
        with Horizontal(id="doc-body"):
            yield VisibleTree(Path.cwd(), id="doc-tree", disabled=client)
            yield DocumentTable(id="doc-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="doc-progress-line"):
            yield ProgressBar(id="doc-progress", show_eta=False)  # its ETA counts files: ours counts bytes
            yield Static(id="doc-progress-text")
        with VerticalScroll(id="doc-report-box"):
            yield Static("Nothing added in this session yet.", id="doc-report")
        yield Footer(compact=True, show_command_palette=False)  # 80 columns; Ctrl+P still opens it

    def on_mount(self) -> None:
        table = self.query_one(DocumentTable)
        table.add_columns("chunks", "added", "file")
        self.query_one("#doc-path", Input).focus()
        if self.settings.server:  # said before the user tries to add, not after
            self.query_one("#doc-path").display = self.query_one("#doc-tree").display = False
            table.focus()
            self.query_one("#doc-report", Static).update(clean_text(self._on_server()))
        self.list_documents()

    def _on_server(self) -> str:
        server = self.settings.server
        return (f"The documents live on the server ({server}): the list is its index, Delete forgets the selected "
                f"document there; add files with `pgpt-tui --server {server} ingest PATH`.")

    def on_screen_resume(self) -> None:
        self.list_documents()  # another process (pgpt-tui ingest) may have changed the index

    def opened(self) -> None:
        """F4 (not a closed dialog) showed the panel again: the path field has the focus, as Ctrl+O
        gives it (typed paths went to the list), and an error of a moment past is gone ("Ingestion
        already running (pid N)" stayed 20 minutes after pid N ended)."""
        if self._stale_error:
            self._stale_error = False
            self.query_one("#doc-report", Static).update(clean_text(self._on_server()) if self.settings.server else "")
        if not self.ingesting:
            self.query_one("#doc-path", Input).focus()

    def _library(self) -> DocumentLibrary | None:
        library = getattr(self.app, "library", None)
        if library is None:
            self.notify("Documents need the embedding model (pgpt-export --default); it is not loaded yet.",
                        severity="warning")
        elif library.remote is not None:
            self.notify(self._on_server(), severity="warning")
            return None
        return library

    # Actions.

    @on(Input.Submitted, "#doc-path")
    def _add(self, event: Input.Submitted) -> None:
        path = unquoted(event.value)
        library = self._library() if path else None
        if library is None:
            return
        if self.ingesting:
            self.notify("Documents are being added; Ctrl+X stops it.", severity="warning")
            return
        from pgpt.runtime.documents.discovery import missing_paths

        report = self.query_one("#doc-report", Static)
        if missing_paths([Path(path)]):  # a typo: said at once, not as "1 skipped" under a line of zeros
            report.update(clean_text(f"No such file or folder: {path}. Nothing was indexed. Check the path, "
                                     "or pick a file or folder in the tree."))
            return
        report.update("")  # the previous run's report is not this run's
        self._gone_kept = None  # and Ctrl+G forgets what this run finds gone
        self._cancel = threading.Event()
        self._ended = threading.Event()
        self._show_progress(0, None, f"looking at {clean_text(path)}…")
        self.add_documents(library, path, self._cancel)
        event.input.clear()  # the next path typed was appended to this one (a typo stays, to be mended)
        self.refresh_bindings()

    @on(DirectoryTree.FileSelected)
    @on(DirectoryTree.DirectorySelected)
    def _pick(self, event: DirectoryTree.FileSelected | DirectoryTree.DirectorySelected) -> None:
        """A path chosen in the tree goes into the input; Enter there adds it."""
        field = self.query_one("#doc-path", Input)
        field.value = str(event.path)
        field.cursor_position = len(field.value)  # typing goes on after the path; Ctrl+U clears it
        if isinstance(event, DirectoryTree.FileSelected):
            field.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Stop adding is shown only while documents are being added; Forget gone only while files
        that the last add found gone are still listed."""
        if action == "forget_gone":
            return bool(self._gone_to_forget())
        return self.ingesting if action == "stop_ingest" else True

    def _gone_to_forget(self) -> list[str]:
        """The last add's gone files that the list still marks gone (Delete may have forgotten some)."""
        return [path for path in self._gone_kept.paths if path in self.query_one(DocumentTable).gone_paths] if self._gone_kept else []

    def action_forget_gone(self) -> None:
        """Forget the files under the path just added that are gone (asks first, saying how many)."""
        library, gone = self._library(), self._gone_to_forget()
        if library is None or self._gone_kept is None or not gone:
            return
        from pgpt.tui.screens.confirm import Confirm

        root = self._gone_kept.root
        files = f"the gone file {gone[0]}? Its" if len(gone) == 1 else f"{len(gone)} gone files under {root}? Their"
        self.app.push_screen(Confirm(f"Forget {clean_text(one_line(files))} passages leave the index.", yes="forget"),
                             lambda yes: self._forget_gone(library, root, len(gone)) if yes else None)

    def _forget_gone(self, library: DocumentLibrary, root: str, count: int) -> None:
        self.query_one("#doc-report", Static).update(clean_text(one_line(f"Forgetting {count} gone files under "
                                                                         f"{root}…")))
        self.forget_gone(library, root)

    def action_stop_ingest(self) -> None:
        """Stop adding after the current file."""
        self.cancel_ingest()

    def stop_for_quit(self) -> threading.Event:
        """The app quits during an add: stop it at its next batch of chunks, so that a large file's vectors
        embedded so far are kept as Ctrl+X keeps them (chunk_vectors.py; they were said to be kept, and were
        not, t67). Its marker stays: the add did not finish. The event is set once the add has ended."""
        if self._cancel is not None:
            self._quitting = True
            self._cancel.set()
        return self._ended

    def cancel_ingest(self) -> None:
        """Stop adding after the current file (the files done so far stay indexed)."""
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            # said at once: the stop lands between two batches of chunks, a second or two later, and
            # a silent Ctrl+X looked ignored
            self.app.notify("Stopping after the current batch of chunks; the files done stay indexed.", timeout=4)

    def action_forget(self) -> None:
        """Remove the selected document from the index (adding it again brings it back); in
        client mode from the server's (the row's key is then the document's id)."""
        table = self.query_one(DocumentTable)
        shared = getattr(self.app, "library", None)
        library = shared if shared is not None and shared.remote is not None else self._library()
        if library is None or table.row_count == 0:
            return
        key = table.current_key()
        if not key:
            return
        from pgpt.tui.screens.confirm import Confirm

        # the whole path, not the cell's end: files of one name in 5 folders read alike there
        name = one_line(table.paths.get(key) or str(key))  # made safe where shown (clean_text twice showed "\\[")
        where = " on the server" if library.remote is not None else ""
        # a gone file cannot be added again: only the files that are there are told how to come back
        gone = any(r.doc_id == key and r.path in table.gone_paths for r in table.listed)
        back = " (its file is gone)" if gone else "; adding the file again brings it back"
        # it forgot at once: a stray Delete took a document out of every answer (F3 and F5 ask first)
        self.app.push_screen(Confirm(f"Forget {clean_text(name)}{where}? Its passages leave the index{back}.",
                                     yes="forget"),
                             lambda yes: self._forget(library, key, name) if yes else None)

    def _forget(self, library: DocumentLibrary, key: str, name: str) -> None:
        # said at once: the index is rewritten without it, 3-10 s of silence in a large one (t64)
        self.query_one("#doc-report", Static).update(clean_text(f"Forgetting {name}…"))
        if library.remote is not None:
            self.forget_on_server(library, key, name)
        else:
            self.forget_document(library, key, name)

    # Workers (they only post messages).

    @work(thread=True, exclusive=True, exit_on_error=False, group="doc-list")
    def list_documents(self) -> None:
        """Read the document list from the index."""
        library = getattr(self.app, "library", None)
        if library is not None and library.remote is not None:  # a client: the server's index
            self.post_message(DocumentsListed([remote_record(d) for d in library.remote.documents()]))
        elif library is not None and library.store is not None:
            from pgpt.runtime.documents.discovery import gone_documents

            documents = library.store.documents()
            self.post_message(DocumentsListed(documents, {d.path for d in gone_documents(documents)}))
        else:  # the app lists it again once loaded: only a header, no rows, looked as if nothing were indexed
            loading = getattr(self.app, "engine", None) is None and not getattr(self.app, "load_error", "")
            self.post_message(DocumentsListed([], loading=loading))

    @work(thread=True, exclusive=True, exit_on_error=False, group="ingest")
    def add_documents(self, library: DocumentLibrary, path: str, cancel: threading.Event) -> None:
        """Index ``path``, posting IngestTick messages, then IngestDone (both also reach the chat)."""
        from pgpt.runtime.documents.ingest import DEFAULT_COLLECTION, ingest
        from pgpt.runtime.documents.unfinished import remembered

        paths = [Path(path).expanduser()]
        ended = self._ended
        try:  # remembered while it runs: the next start says it when the app ends first (unfinished.py)
            with remembered(self.settings, paths, DEFAULT_COLLECTION, lambda tick: self.post_message(IngestTick(tick)),
                            keep=lambda: self._quitting) as progress:
                report = ingest(self.settings, paths, library.embedder, progress=progress, cancel=cancel)
        except Cancelled as stopped:
            if not self._quitting:
                self.post_message(IngestDone(str(stopped), len(library.store.documents())))
            return
        finally:
            ended.set()
        from pgpt.runtime.documents.discovery import nothing_found

        listed = "".join(f"\n{label} {p}: {why}" for label, entries in (("skipped", report.skipped),
                                                                         ("failed", report.failed))
                         for p, why in entries)
        first = nothing_found([Path(path)]) + "\n" if report.found_nothing() else ""
        if report.gone:  # before IngestDone, whose listing brings their marks
            self.post_message(GoneKept(str(Path(path).expanduser()), report.gone))
        self.post_message(IngestDone(first + report.summary(FORGET_GONE) + gone_lines(report.gone) + listed,
                                     len(library.store.documents())))

    @work(thread=True, exclusive=True, exit_on_error=False, group="forget")
    def forget_document(self, library: DocumentLibrary, doc_id: str, name: str) -> None:
        """Remove one document (of one collection), then list the index again."""
        from pgpt.runtime.documents.ingest import forget_document

        forgotten = forget_document(self.settings, library.embedder, doc_id)
        chunks = forgotten.chunks if forgotten is not None else 0  # None: forgotten from outside meanwhile
        self.post_message(Forgotten(f"Forgot {name} ({chunks} {'chunk' if chunks == 1 else 'chunks'}).",
                                    len(library.store.documents())))

    @work(thread=True, exclusive=True, exit_on_error=False, group="forget")
    def forget_gone(self, library: DocumentLibrary, root: str) -> None:
        """Forget the files under ``root`` that are gone (what `ingest --prune` forgets), then list again."""
        from pgpt.runtime.documents.ingest import forget_gone

        forgotten = forget_gone(self.settings, library.embedder, [Path(root)])
        self.post_message(Forgotten(forgotten_gone(forgotten, root), len(library.store.documents())))

    @work(thread=True, exclusive=True, exit_on_error=False, group="forget")
    def forget_on_server(self, library: DocumentLibrary, doc_id: str, name: str) -> None:
        """Remove one of the server's documents, then list its index again."""
        library.remote.forget(doc_id)
        self.post_message(Forgotten(f"Forgot {name} on the server.", len(library.remote.documents())))

    # Messages from the workers.

    @on(DocumentsListed)
    def _listed(self, message: DocumentsListed) -> None:
        tables = self.query(DocumentTable)
        if not tables:  # a listing that arrived as the app closed and took the screen's widgets (ci56b)
            return
        table = tables.first()
        report = self.query_one("#doc-report", Static)
        if str(report.render()).startswith("Server unreachable"):  # it answers again: the error is old
            report.update(clean_text(self._on_server()))
        table.show(message.documents, message.gone, message.loading)
        self._title_current(table)
        self.refresh_bindings()  # Forget gone, once none of the files it would forget is listed

    def _title_current(self, table: DocumentTable) -> None:
        """The cursor row's path on the report box's rule, none once the list is empty."""
        self._title_path(table.current_key())

    @on(DocumentTable.RowHighlighted)
    def _show_whole_path(self, event: DocumentTable.RowHighlighted) -> None:
        """The highlighted row's path, on the report box's top rule (a line that was blank): the file
        column cuts paths from the front, and same-named files in 5 folders all read "…name.txt"."""
        self._title_path(event.row_key.value)

    def _title_path(self, key: str | None) -> None:
        box, path = self.query_one("#doc-report-box"), self.query_one(DocumentTable).paths.get(key or "", "")
        room = max(8, box.size.width - 4)  # the rule's corners and a space either side of the title
        box.border_title = clean_text(one_line(short_path(path, room))) if path else None

    def on_resize(self) -> None:
        """Fit the file column to the new width."""
        table = self.query_one(DocumentTable)
        table.refill()
        self._title_current(table)  # cut to the new width
        if self.ingesting and self._progress:
            self.query_one("#doc-progress-text", Static).update(self._fitted_progress())

    @on(IngestTick)
    def _tick(self, message: IngestTick) -> None:
        tick = message.tick  # the message goes on to the app, which shows it under the chat too
        name = Path(tick.current).name if tick.current else ""
        inside = f" ({step})" if (step := shown_step(tick)) else ""
        eta = f"ETA {tick.eta_s:.0f} s" if tick.eta_s is not None else ""
        # narrower than the line, whole fields go from its end: the file's name, the chunks, the ETA
        self._progress = [eta, f"{tick.done}/{tick.total} files", f"{tick.chunks} chunks",
                          f"{clean_text(one_line(name))}{inside}" if name else ""]
        self._show_progress(tick.fraction, max(tick.total, 1), self._fitted_progress())

    def _fitted_progress(self) -> str:
        """The last tick's fields within the progress text's width (the screen's less the bar's, before a layout)."""
        width = self.query_one("#doc-progress-text").size.width or self.size.width - 34
        return fit_fields(self._progress, width, (3, 2, 0), cut=3)

    @on(GoneKept)
    def _gone_found(self, message: GoneKept) -> None:
        self._gone_kept = message

    @on(IngestDone)
    def _done(self, message: IngestDone) -> None:
        self._cancel = None  # the message goes on to the app: a notice in the chat, the mode
        self.query_one("#doc-progress-line").display = False
        self.query_one("#doc-report", Static).update(clean_text(message.summary))
        self.refresh_bindings()
        self.list_documents()

    @on(Forgotten)
    def _forgotten(self, message: Forgotten) -> None:
        library = getattr(self.app, "library", None)
        if library is not None:
            library.documents = message.documents
        self.query_one("#doc-report", Static).update(clean_text(message.summary))
        self.list_documents()

    @on(Worker.StateChanged)
    def _failed(self, event: Worker.StateChanged) -> None:
        """Show a failure in the report (PanelScreen notifies it); an error ends the ingestion."""
        error = event.worker.error
        if event.state is not WorkerState.ERROR or error is None:
            return
        message = user_message(error)
        text = f"{message.title}: {message.text}"
        if event.worker.group == "ingest":  # ends it like a finished run, here and under the chat
            library = getattr(self.app, "library", None)
            self.post_message(IngestDone(f"Adding documents failed. {text}", library.documents if library else 0))
        else:
            self.query_one("#doc-report", Static).update(clean_text(text))
            self._stale_error = True  # said until the panel is opened again

    def _show_progress(self, done: float, total: int | None, text: str) -> None:
        self.query_one("#doc-progress-line").display = True
        self.query_one("#doc-progress", ProgressBar).update(total=total, progress=done)
        self.query_one("#doc-progress-text", Static).update(text)
