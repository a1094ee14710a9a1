"""The chat app's side of its panels: showing them, document ingestion news, saved conversations, palette."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual.app import SystemCommand
from textual.screen import Screen
from textual.widgets import Input, ProgressBar, Static

from pgpt.runtime.errors import StorageError, user_message
from pgpt.tui.chat.messages import IngestDone, IngestTick
from pgpt.tui.chat.widgets import ChatLog, Turn, fit_fields
from pgpt.tui.sanitize import clean_text

if TYPE_CHECKING:
    from pgpt.runtime.conversations import Conversation
    from pgpt.tui.screens.documents.screen import DocumentsScreen

PANELS = {"setup": ("pgpt.tui.screens.setup", "SetupScreen"), "models": ("pgpt.tui.screens.models.screen", "ModelsScreen"),
          "docs": ("pgpt.tui.screens.documents.screen", "DocumentsScreen"),
          "history": ("pgpt.tui.screens.history", "HistoryScreen")}
SAVED_KINDS = ("user", "assistant", "quotes", "closest", "sources", "note")  # notices (errors, ingestion news)
# are not part of a chat; a dim note under an answer is ("Older turns are left out ...": t72)


MODELS_COMMANDS = (
    ("Ctrl+R", "Check the repo typed", "is it gated, is the token right, can it be reached (F3)", "check"),
    ("Ctrl+G", "Download the model typed", "download the repo typed into the Hugging Face cache (F3)", "download"),
    ("Ctrl+B", "Export the model typed", "download if needed, then export it as the chosen type (F3; in tmux, "
     "whose prefix Ctrl+B is, press it twice)", "export"),
    ("Ctrl+T", "Next export type", "fp32, fp16, int8, int4 (F3)", "next_dtype"),
    ("Ctrl+F", "Fast prompts on or off", "an int8 prefill graph for int8 and int4 exports (F3)", "toggle_prefill"),
    ("Ctrl+X", "Stop the check, download or export", "nothing half-written is kept (F3)", "stop"),
)


class PanelsMixin:
    """Mixed into ChatApp (handlers by name: Textual's @on does not reach plain mixins)."""

    app: Any  # the attributes below belong to ChatApp
    settings: Any
    library: Any
    conversation: list[dict[str, str]]
    saved: Conversation | None
    docs_mode_next: bool
    unfinished_path = ""  # an add cut short, named at the start: F4 fills it in
    last_ingest_tick: Any = None  # the running add's latest progress
    not_saved = ""  # why the chat's last save failed ('' once one succeeds): said again on stderr at the quit
    add_stopping: tuple[Any, float] | None = None  # a quit's stop of an add: (its end, asked at), see launch.py

    # Panels.

    def action_show_screen(self: Any, name: str) -> None:
        """Show a panel (setup, models, docs, history) over the chat, or the chat itself."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        if name == "chat":
            return
        if not self.is_screen_installed(name):
            module, cls = PANELS[name]  # imported when first shown: a fast first paint of the chat
            self.install_screen(getattr(importlib.import_module(module), cls)(self.settings), name)
        self.push_screen(name)
        opened = getattr(self.get_screen(name), "opened", None)  # a panel's own "shown again by its key"
        if opened is not None:
            self.call_after_refresh(opened)
        if name == "docs" and self.unfinished_path:
            self.call_after_refresh(self._fill_in_unfinished)

    def _fill_in_unfinished(self: Any) -> None:
        """F4 after "add it again to continue (F4)": the path is typed in, Enter goes on (the field was
        empty, and the user retyped the path the app had just named, t53)."""
        from textual.widgets import Input

        field = self.get_screen("docs").query_one("#doc-path", Input)
        if not field.value:
            field.value = self.unfinished_path
            field.cursor_position = len(field.value)
        self.unfinished_path = ""

    def get_system_commands(self: Any, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P): every action of the app, with its key. Textual's Quit and Keys are
        named with their keys below (F1 shows pgpt's own); its Maximize is left out, with Minimize: it
        blanked the screen with hatching around the input and said nothing of the way back."""
        for command in super().get_system_commands(screen):  # type: ignore[misc]
            if command.title not in ("Quit", "Keys", "Maximize", "Minimize"):
                yield command
        for key, title, help_text, action in (
                ("F1", "Keys", "every key of the chat and the panels", "show_keys"),
                ("Ctrl+Q", "Quit", "quit pgpt (a running answer or export stops; indexed files stay)", "quit"),
                ("F2", "Setup", "Hugging Face token, account and network checks", "show_screen('setup')"),
                ("F3", "Models", "check, download, export, choose and delete models", "show_screen('models')"),
                ("F4", "Docs", "add a file or folder, list and forget documents", "show_screen('docs')"),
                ("F5", "Chats", "reopen or delete a saved conversation", "show_screen('history')"),
                ("Ctrl+N", "New chat", "start an empty conversation", "new_chat"),
                ("Ctrl+R", "Switch mode", "documents, plain chat, search only", "cycle_mode"),
                ("Ctrl+Y", "Copy answer", "copy the last answer to the clipboard (OSC 52)", "copy_answer"),
                ("Esc", "Stop answer", "stop the answer being written", "stop"),
                ("Ctrl+X", "Stop adding documents", "stop after the current batch", "stop_ingest")):
            yield SystemCommand(f"{title} ({key})", help_text, lambda a=action: self.run_action(a))
        if type(screen).__name__ == "ModelsScreen":
            # F3's own actions by name: its Ctrl+B is tmux's prefix, which never reached the app (t54)
            for key, title, help_text, action in MODELS_COMMANDS:
                yield SystemCommand(f"{title} ({key})", help_text, lambda a=action: screen.run_action(a))

    def action_show_keys(self: Any) -> None:
        """F1: the keys of the chat and the panels (once: F1 on the dialog closes it)."""
        from pgpt.tui.screens.keys_help import KeysHelp

        if not isinstance(self.screen, KeysHelp):
            self.push_screen(KeysHelp())

    # Documents: the Docs screen runs the ingestion; its messages bubble up to here.

    def action_ingest(self: Any) -> None:
        """Open the Docs screen with its path input focused."""
        self.action_show_screen("docs")
        self.call_after_refresh(lambda: self.screen.query_one("#doc-path", Input).focus())  # once shown

    def action_stop_ingest(self: Any) -> None:
        """Stop adding documents after the current file (the files done so far stay indexed)."""
        docs = self._docs_screen()
        if docs is not None:
            docs.cancel_ingest()

    def stop_add_for_quit(self: Any) -> None:
        """The app quits: ask a running add of documents to stop at its next batch, while its screen is
        still there (once the app has closed, it is not); launch.py waits for ``add_stopping`` then."""
        docs = self._docs_screen()
        if docs is not None and docs.ingesting:
            self.add_stopping = (docs.stop_for_quit(), time.time() - 1)  # a file system's clock granularity

    def list_documents_again(self: Any) -> None:
        """The model, and with it the index, has loaded: the Docs list in view, opened before, is read now
        (it showed only its header until opened again)."""
        docs = self._docs_screen()
        if docs is not None and self.screen is docs:
            docs.list_documents()

    def _docs_screen(self: Any) -> DocumentsScreen | None:
        return self.get_screen("docs") if self.is_screen_installed("docs") else None

    def _ingesting(self: Any) -> bool:
        docs = self._docs_screen()
        return docs is not None and docs.ingesting

    def on_ingest_tick(self: Any, message: IngestTick) -> None:
        """Show ingestion progress under the chat too."""
        tick = self.last_ingest_tick = message.tick  # the quit line names the file it stops inside
        bar = self._chat.query_one("#ingest-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(tick.total, 1), progress=tick.fraction)
        eta = f"ETA {tick.eta_s:.0f} s" if tick.eta_s is not None else ""
        # the Docs panel (F4) has the current file; narrower than the line, the chunks go, then the ETA
        fields = [f"adding documents {tick.done}/{tick.total}", eta, f"{tick.chunks} chunks", "Ctrl+X stops"]
        status = self._chat.query_one("#status", Static)
        self._set_status(fit_fields(fields, status.content_region.width or self.size.width - 2, (2, 1)))

    def on_ingest_done(self: Any, message: IngestDone) -> None:
        """A notice in the chat (the Docs screen keeps the full report); documents mode once indexed."""
        self._chat.query_one("#ingest-progress", ProgressBar).display = False
        lines = message.summary.splitlines()
        more = f"\n… and {len(lines) - 11} more: see the Docs screen (F4)" if len(lines) > 11 else ""
        self._chat.query_one(ChatLog).add_turn("notice", "\n".join(lines[:11]) + more)
        if self.library is not None:
            self.library.documents = message.documents
            if message.documents and self.answering:
                self.docs_mode_next = True  # switched when the answer ends, not under it
            elif message.documents:
                self._set_mode("docs")
        self._set_status(self._model_label(), f"{message.documents} documents indexed")
        self.refresh_bindings()

    def note_unfinished_adds(self: Any) -> None:
        """Say once in the chat each add of documents that the app or a command ended before it finished
        (a dropped SSH session, a kill, a quit): the index answered from part of a folder without a word.
        An add still running (the CLI's, a server's) is left alone; so is a client's start (the adds were
        to this machine's index, which a client does not ask)."""
        from pgpt.runtime.documents.unfinished import DEFAULT_COLLECTION, unfinished_adds

        for add in [] if self.settings.server else unfinished_adds(self.settings):
            if add.ended() and not add.said:
                one = add.collection == DEFAULT_COLLECTION and len(add.paths) == 1
                how = ("add it again to continue (F4: its path is filled in, Enter)" if one else
                       "add it again to continue (F4)" if add.collection == DEFAULT_COLLECTION
                       else f"run {add.command()} to continue")
                if one:
                    self.unfinished_path = add.paths[0]
                self._chat.query_one(ChatLog).add_turn("notice", f"{add.stopped_at()} (the session ended): {how}.")
                add.mark_said()

    # Saved conversations.

    def save_conversation(self: Any) -> None:
        """Write the conversation to disk after each answer (a lost SSH session loses nothing)."""
        from pgpt.runtime.conversations import new_conversation, save_conversation

        turns = [{"kind": t.kind, "text": t.text, **({"mark": t.mark} if t.mark else {})}
                 for t in self._chat.query(Turn) if t.kind in SAVED_KINDS and not t.refused]
        if not turns:
            return
        if self.saved is None:
            self.saved = new_conversation(self.mode, self.engine.model.info.name if self.engine else "")
        self.saved.turns, self.saved.context, self.saved.mode = turns, list(self.conversation), self.mode
        self.saved.left_out = self.left_out_turns
        try:
            save_conversation(self.settings, self.saved)  # a small JSON file: fine on the main thread
            self.not_saved = ""
        except StorageError as fault:  # a full or read-only home: the chat goes on, unsaved, and says so
            message = user_message(fault)
            self.notify(clean_text(message.text), title=f"Not saved: {message.title}", severity="warning")
            # a toast that went by was all: the app quit with exit 0 and the chat was lost unnoticed (t66)
            logging.getLogger(__name__).warning("the chat was not saved: %s", message.text)
            self.not_saved = f"{message.title}: {message.text}"

    def open_conversation(self: Any, saved: Conversation) -> None:
        """Show a saved conversation in the chat; a plain chat goes on with its context."""
        self.action_new_chat()
        self.saved = saved
        self.conversation, self.left_out_turns = [dict(m) for m in saved.context], saved.left_out
        chat_log = self._chat.query_one(ChatLog)
        shown = [chat_log.add_turn(turn["kind"], turn["text"]) for turn in saved.turns]
        for widget, turn in zip(shown, saved.turns):  # with its mark: "(stopped)", "(cut at the 256-token limit)"
            widget.show(turn["text"], turn.get("mark", ""))
        if saved.mode == "chat" or self.library is not None:
            self._set_mode(saved.mode)
        self.action_show_screen("chat")
        asked = [widget for widget in shown if widget.kind == "user"]
        if asked:  # read from the last question down, as a live answer is (its end hid the question)
            self.call_after_refresh(chat_log.show_from, asked[-1])

    def show_tip_once(self: Any) -> None:
        """The first start shows where the bigger models, the token and the keys are; every start
        shows the PGPT_ names that no pgpt program reads (stderr's warning is under the app)."""
        from pgpt.tui.chat.first_run import tip_once

        tip = tip_once(self.settings)
        if tip:
            self._chat.query_one(ChatLog).mount(Static(tip, classes="tip"))
        for warning in self.setting_warnings:
            self.notify(clean_text(warning), title="Setting ignored", severity="warning", timeout=15)
        self.note_unfinished_adds()

    def forget_model_variable(self: Any) -> None:
        """Load the configured active model from now on (the panels' settings too), not PGPT_MODEL's."""
        import dataclasses

        self.settings = dataclasses.replace(self.settings, model="")
        for name in PANELS:
            if self.is_screen_installed(name):
                self.get_screen(name).settings = self.settings
