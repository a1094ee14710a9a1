"""The chat screen of `pgpt-tui`: a conversation log, an input line, a status line and the keys."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, ProgressBar, Static
from textual.worker import Worker, WorkerState

from pgpt.runtime.errors import ModelNotFoundError, StorageError, app_message, user_message
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import CHAT_MAX_TOKENS, Settings
from pgpt.tui.chat.library import UNCHECKED, DocumentLibrary, drafted_an_answer, trimmed
from pgpt.tui.chat.context import REPEATED_NOTE, close_turn, messages_to_send, repeats, rework_hint
from pgpt.tui.chat.keys import KeysMixin
from pgpt.tui.chat.messages import (ANSWER_STEPS, AnswerFinished, AnswerProgress, EngineLoaded, ModelChanged,
                                    PrepareTick, ServerState)
from pgpt.tui.chat.panels import PanelsMixin
from pgpt.tui.chat.workers import WorkersMixin
from pgpt.tui.chat.widgets import (NO_ANSWER, ChatLog, PromptInput, Turn, describe_result, failed_mark,
                                   fit_status, model_ref, provider_label)

__all__ = ["ChatApp", "Turn"]
from pgpt.tui.sanitize import clean_text

if TYPE_CHECKING:  # the engine pulls in onnxruntime; it is imported in the loading worker
    from pgpt.runtime.llm.chat import ChatEngine
    from pgpt.runtime.conversations import Conversation

log = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = CHAT_MAX_TOKENS  # documents answers: at most DOCUMENTS_MAX_TOKENS (workers.py)


class ChatApp(KeysMixin, PanelsMixin, WorkersMixin, App[int]):
    """Chat with the active exported model."""

    CSS_PATH = "app.tcss"
    TITLE = "pgpt"
    # F1 early and shown, so that a 60-column pane keeps it; Ctrl+R is on the input's frame ("Chat · Ctrl+R") and
    # the placeholder names Ctrl+P, the way to every panel without F-keys (a tester's SSH client had none: t54)
    BINDINGS = [
        Binding("f1", "show_keys", "Keys"),  # hidden on the panels (check_action), whose own F1 opens it
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+r", "cycle_mode", "Mode", show=False),
        Binding("ctrl+y", "copy_answer", "Copy"),
        Binding("f2", "show_screen('setup')", "Setup", priority=True),
        Binding("f3", "show_screen('models')", "Models", priority=True),
        Binding("f4", "show_screen('docs')", "Docs", priority=True),
        Binding("f5", "show_screen('history')", "Chats", priority=True),
        Binding("ctrl+o", "ingest", "Add docs", show=False),
        Binding("ctrl+x", "stop_ingest", "Stop adding", show=False, priority=True),
        # Priority, because the focused Input would take PgUp/PgDn for itself.
        Binding("pageup", "scroll_log(-1)", "Scroll", key_display="PgUp/PgDn", show=False, priority=True),
        Binding("pagedown", "scroll_log(1)", "Scroll down", show=False, priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+z", "suspend", "Suspend", show=False, priority=True),
    ]

    setting_warnings: tuple[str, ...] = ()  # PGPT_ names no pgpt program reads: run_app sets them

    def __init__(self, settings: Settings, sampling: SamplingOptions | None = None, use_cache: bool = True) -> None:
        super().__init__()
        self.settings = settings
        self.sampling = sampling or SamplingOptions(max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
        self.use_cache = use_cache
        self.engine: ChatEngine | None = None
        self.conversation: list[dict[str, str]] = []
        self.asked: list[str] = []  # Documents mode's questions: a follow-up is searched after them
        self.left_out_turns = 0  # the conversation's oldest questions no longer sent (they did not fit)
        self.load_error = ""
        self._reply: Turn | None = None  # the answer being written, or waiting for the model
        self._reply_id = 0  # tags worker messages, so those of an abandoned answer are dropped
        self._answer_worker: Worker[None] | None = None
        self._cancel = threading.Event()
        self._quitting = threading.Event()
        self.library: DocumentLibrary | None = None
        self.mode = "chat"
        self._reply_mode = "chat"
        self.saved: Conversation | None = None  # the conversation's file, once it has an answer
        self.docs_mode_next = False  # switch to documents when the running answer ends
        self._loaded_once = False  # the first model load picks documents mode when some are indexed
        self._mode_chosen = False  # the user switched modes (Ctrl+R): a load then leaves the mode alone
        self.server_model = ""  # a client: the model asked of the server (F3's Enter), "" for its default
        self._retired: ChatEngine | None = None  # the model switched away from while an answer still used it

    def compose(self) -> ComposeResult:
        yield ChatLog(id="log")
        yield ProgressBar(id="ingest-progress", show_eta=False)  # the status line has the ETA by bytes
        yield Static("Loading model…", id="status")
        yield PromptInput(placeholder="Ask a question and press Enter", id="prompt")
        yield Footer(compact=True, show_command_palette=False)  # 80 columns: Ctrl+P is in the hint

    def on_mount(self) -> None:
        from pgpt.runtime.documents.index_folder import index_has_data

        self.show_tip_once()
        # Documents mode from the start when something is indexed: a question typed while the
        # model loads is answered in the mode shown, from the documents (the index opens with it).
        try:
            has_documents = index_has_data(self.settings)
        except StorageError as exc:  # an index this user may not read: said, not taken for an empty one (t70)
            has_documents = True
            self.notify(clean_text(user_message(exc).text), title="Documents", severity="error", timeout=15)
        self._set_mode("docs" if has_documents else self.mode)
        self._chat.query_one("#prompt", Input).focus()
        self.app_resume_signal.subscribe(self, self.redraw_after_suspend)  # keys.py: Ctrl+Z, fg
        self.load_engine()

    def on_unmount(self) -> None:
        self._quitting.set()  # a first-run export stops at its next stage, leaving nothing half-written
        self._cancel.set()  # a running answer stops at its next token, so exit does not wait
        if self.engine is not None and not self._answer_running:  # a stopping answer still runs on it; exit frees it
            self.engine.close()

    @property
    def _chat(self) -> Screen[Any]:
        """The chat screen (the bottom of the stack), even while a panel is shown over it."""
        return self.screen_stack[0]

    @property
    def _answer_running(self) -> bool:
        """Whether an answer's worker still runs on the engine (a stopped one runs to its next token)."""
        return self._answer_worker is not None and not self._answer_worker.is_finished

    @property
    def answering(self) -> bool:
        """Whether a question is being answered (or waits for the model to load)."""
        return self._reply is not None

    @on(Worker.StateChanged)
    def _answer_ended(self, event: Worker.StateChanged) -> None:
        """Close the model switched away from once the answer that still used it has ended."""
        if event.worker.group == "answer" and event.worker.is_finished and self._retired is not None:
            retired, self._retired = self._retired, None
            retired.close()

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        worker, error = event.worker, event.worker.error
        if event.state is not WorkerState.ERROR or error is None:
            return
        message = app_message(error)
        if message.title == "Unexpected error":  # a bug: its traceback is what the log is for
            log.error("worker %s failed", worker.name, exc_info=error)
        else:
            log.warning("worker %s failed: %s: %s", worker.name, message.title, message.text)
        prompt = self._chat.query_one("#prompt", Input)
        # refused before the model answered (too long, a busy server): unless a new one is typed, it comes back
        refused = (worker is self._answer_worker and self._reply is not None and not self._reply.text
                   and bool(self.conversation) and self.conversation[-1]["role"] == "user")
        back = refused and not prompt.value
        again = " Your question is back in the input, selected: type to replace it, or End to edit it." if back else ""
        self.notify(clean_text(message.text) + again, title=clean_text(message.title), severity="error", timeout=10)
        if worker.group == "load":
            self._model_unavailable(error)
        elif worker is self._answer_worker and self._reply is not None:
            question = self.conversation[-1]["content"] if refused else ""
            width = self._chat.query_one(ChatLog).size.width or self.size.width  # the turn is not laid out yet
            self._reply.show(self._reply.text, failed_mark(message.title, message.text, width))
            if question:  # refused before the model answered (too long, a busy server): no turn of the saved chat
                self._reply.refused = self._chat.query_one(ChatLog).question_of(self._reply).refused = True
            self._close_reply("")
            self._set_status(self._model_label(), "failed")
            if question and back:  # a busy server: Enter sends it again; too long: it is there to shorten
                prompt.value = question
                # Selected, so that a new question typed replaces it: with the cursor at its start, one
                # was glued before a 16 KB question the one-line input did not show.
                prompt.select_all()

    # Messages from the workers.

    @on(EngineLoaded)
    def _engine_loaded(self, message: EngineLoaded) -> None:
        if not self.screen_stack:  # the app closed while the model loaded (a loaded CI machine, once)
            message.engine.close()
            return
        self.engine = message.engine
        self.library = message.library
        self._chat.query_one("#ingest-progress", ProgressBar).display = self._ingesting()
        first = not self._loaded_once  # a model chosen later (F3) leaves the user's mode alone
        self._loaded_once = True
        self.first_start_done()
        self.list_documents_again()
        if first and self.library is not None and self.library.documents and self.mode != "docs":
            self._documents_found()
        elif self.mode != "chat" and self.library is None:
            self._documents_unavailable()
        log.info("chat model %s loaded on %s", self.engine.model.info.name, self.engine.provider)
        verb = "connected" if self.settings.server else "loaded"
        self._set_status(self._model_label(), f"{verb} in {self.engine.load_s:.1f} s")
        for warning in self.engine.take_warnings():
            self.notify(clean_text(warning), title="Answer cache", severity="warning", timeout=10)
        if self._reply is not None:
            self._start_answer()

    def _documents_found(self) -> None:
        """A server reached only now has documents: Documents mode if nothing was asked yet, said
        aloud. A question sent meanwhile keeps the mode it was sent in (a chat question typed under
        "Chat with the model" was answered from the documents, and the mode changed under it)."""
        if self._reply is None and not self.conversation and not self._mode_chosen:
            self._set_mode("docs")
            self.notify("The server has documents: questions are asked of them (Ctrl+R: Chat).",
                        title="Documents mode", timeout=8)
        elif not self._mode_chosen:
            self.notify("The server has documents; this question is answered in Chat mode, as it was sent. "
                        "Ctrl+R switches to Documents.", title="Documents", timeout=10)

    def _documents_unavailable(self) -> None:
        """The index could not be opened after all: Chat mode, said aloud (a queued question too)."""
        self.notify("The documents cannot be read (the log file says why); this answer and the next come "
                    "from the model alone.", title="Chat mode", severity="warning", timeout=10)
        self._set_mode("chat")
        if self._reply is not None:
            self._reply_mode = "chat"

    @on(PrepareTick)
    def _preparing(self, message: PrepareTick) -> None:
        self.show_first_start(message)

    @on(ModelChanged)
    def _model_changed(self, message: ModelChanged) -> None:
        """Load the newly chosen model; a running answer is stopped first (it used the old one)."""
        self._cancel.set()
        if self._reply is not None:  # its worker's later messages are dropped by the new reply id
            self._reply_id += 1
            self._reply.show(self._reply.text, "(stopped: model changed)")
            self._close_reply(self._reply.text)
        if self.settings.server:  # a client asks the server for the model of that name
            self.server_model = message.name
        elif self.settings.model:  # PGPT_MODEL would win over the choice just made (F3 said "loading it")
            self.notify(f"PGPT_MODEL={self.settings.model} is set in the environment; your choice replaces it "
                        "until pgpt-tui starts again.", timeout=8)
            self.forget_model_variable()
        old, self.engine, self.load_error = self.engine, None, ""
        if old is not None and self._answer_running:  # a stopping answer still holds it: closed when that answer ends
            self._retired = old
        elif old is not None:
            old.close()
        self._set_status(f"Loading {message.name}…")
        self.load_engine()

    @on(AnswerProgress)
    def _answer_progress(self, message: AnswerProgress) -> None:
        if message.reply_id == self._reply_id and self._reply is not None:
            self._reply.show(message.text)

    @on(ServerState)
    def _server_state(self, message: ServerState) -> None:
        """The status line through a documents answer's steps: a server's (queued, or drafting an
        answer it sends once checked: 5-26 s of a silent "answering…" before) or this app's own
        (searching, reading the passages, writing, checking: t53)."""
        if message.reply_id != self._reply_id or self._reply is None or self._cancel.is_set():
            return  # (after Esc the line says "stopping…" until the answer ends)
        tokens = message.state.removeprefix("drafting ")  # short: at 80 columns beside "server HOST:PORT · model"
        busy = message.state.removeprefix("busy ")  # refused as busy: asked again after the wait it asked for
        step = f"busy: retry in {busy} s…" if busy.isdigit() else ANSWER_STEPS.get(message.state, "waiting…")
        self._set_status(self._model_label(), f"drafting: {tokens} tokens" if tokens.isdigit() else step)

    @on(AnswerFinished)
    def _answer_finished(self, message: AnswerFinished) -> None:
        if message.reply_id != self._reply_id or self._reply is None:
            return
        answer, details, chat_log = message.result.answer, message.details, self._chat.query_one(ChatLog)
        from pgpt.runtime.llm.chat import cut_note

        note = cut_note(message.result)
        mark = "(stopped)" if message.stopped else f"({note})" if note else ""
        if message.stopped and self._reply_mode == "docs":
            answer, mark = "", UNCHECKED
        if details is not None and details["kind"] == "quote" and self._reply.text.strip() != answer.strip():
            # (a quote found with no model, where no passage was close enough to give it, replaced nothing)
            mark = "(quoted: the model's own answer was not supported by the sources)"
        elif details is not None and details["kind"] == "not_found" and drafted_an_answer(self._reply.text):
            mark = "(replaced: the model's own answer was not supported by the sources)"
        elif details is not None and details["kind"] == "answer" and trimmed(self._reply.text, answer):
            mark = "(trimmed: what the sources do not support was left out of the model's draft)"
        if not answer and not mark and self._reply_mode == "chat":  # the model wrote nothing (only an end token)
            mark = NO_ANSWER
        self._reply.show(answer, mark, message.markup)
        if message.result.left_out_turns and self._reply_mode == "chat":
            self.left_out_turns += message.result.left_out_turns  # not sent again: see messages_to_send
            chat_log.note_left_out_turns(getattr(self.engine.model, "max_context", None) if self.engine else None)
        if details is not None:
            chat_log.add_details(details)
            chat_log.note_once(rework_hint(self.conversation, details))
        if details is not None or self._reply_mode == "search":  # read from the question down; PgDn shows the rest
            self.call_after_refresh(chat_log.show_from, chat_log.question_of(self._reply))
        self._close_reply(answer)
        self._set_status(describe_result(message.result, message.stopped))
        self.save_conversation()

    # User actions.

    @on(Input.Submitted, "#prompt")
    def _ask(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if self.load_error and self.settings.server:  # the server may be up by now: connect again
            self.load_error = ""
            self.load_engine()
        elif self.load_error:
            self.notify(clean_text(self.load_error), title="No chat model", severity="error")
            return
        if self.answering:
            self.notify("Still answering; press Esc to stop it first.", severity="warning")
            return
        if self.mode != "chat" and not self._has_documents():
            # "Not found" would say the user's documents do not hold it; none were searched.
            purpose = "to search" if self.mode == "search" else "to answer from"
            self.notify(f"Nothing is indexed yet, so there is nothing {purpose}. Press F4 (Docs) or "
                        "Ctrl+O to add documents, or Ctrl+R for Chat.", title="No documents", severity="warning")
            return
        event.input.clear()
        self._reply_mode = self.mode
        self.conversation.append({"role": "user", "content": question})
        chat_log = self._chat.query_one(ChatLog)
        chat_log.add_turn("user", question)
        self._reply = chat_log.add_turn("assistant")
        self._reply_id += 1
        self._cancel = threading.Event()
        self.refresh_bindings()
        if self.engine is None:
            waiting = "Connecting to the server…" if self.settings.server else "Loading model…"
            self._set_status(f"{waiting} the answer starts when it is ready")
        else:
            self._start_answer()

    def _has_documents(self) -> bool:
        """Whether there is an index to ask (a server's own is not looked at from here)."""
        from pgpt.runtime.documents.index_folder import index_has_data

        try:
            return bool(self.settings.server) or index_has_data(self.settings)
        except StorageError:  # not readable: the answer's own opening of the index says why
            return True

    # Helpers (main thread only).

    def _start_answer(self) -> None:
        assert self.engine is not None
        messages = messages_to_send(self.conversation, self.asked, self._reply_mode, self.left_out_turns)
        if self._reply_mode == "search" and self.library is not None:
            self._set_status("searching…")
            self._answer_worker = self.find_passages(self.library, messages[-1]["content"], self._reply_id)
            return
        self._set_status(self._model_label(), "answering… Esc stops")  # documents mode: its steps follow
        library = self.library if self._reply_mode == "docs" else None
        self._answer_worker = self.generate(self.engine, messages, self._reply_id, self._cancel, library)

    def _close_reply(self, answer: str) -> None:
        """Keep the (possibly partial) answer as context (close_turn); drop a question that got none."""
        close_turn(self.conversation, self.asked, self._reply_mode, answer)
        same = repeats(self.conversation) if self._reply_mode == "chat" else 0
        if same >= 3:
            self._chat.query_one(ChatLog).note_once(REPEATED_NOTE.format(count=same))
        self._reply = None
        if self.docs_mode_next:  # documents were indexed while this answer was written
            self.docs_mode_next = False
            self._set_mode("docs")
        self.refresh_bindings()

    def _model_unavailable(self, error: BaseException) -> None:
        message = user_message(error)
        if isinstance(error, ModelNotFoundError) and self.settings.model:  # PGPT_MODEL's name: F3 overrides it
            text = f"{message.text} Or press F3 (Models): Enter on an exported chat model loads it."
        elif isinstance(error, ModelNotFoundError):
            text = f"{error} Run `pgpt-export --default` to export the default models, then start pgpt-tui again."
        else:
            text = f"{message.title}: {message.text}"
        self.load_error = text
        self._chat.query_one(ChatLog).add_turn("notice", text)
        self._set_status("No chat model loaded")
        if self._reply is not None:
            self._reply.show("", "(no model)")
            self._close_reply("")

    def _model_label(self) -> str:
        if self.engine is None:
            return "No chat model loaded"
        info = self.engine.model.info
        return f"{provider_label(self.engine.provider)} · {model_ref(info.name, info.version)}"

    def _set_status(self, *parts: str, width: int = 0) -> None:
        self._status_parts = parts  # fitted again to a new width (it kept a narrow one's cut: t54)
        status = self._chat.query_one("#status", Static)
        width = width or status.content_region.width or self.size.width - 2  # 0 before the first layout
        status.update(fit_status(" · ".join(clean_text(p) for p in parts), width))

    def on_resize(self, event: events.Resize) -> None:
        """Fit the status line to the new width (its padding takes a column each side)."""
        if getattr(self, "_status_parts", None):
            self._set_status(*self._status_parts, width=event.size.width - 2)
