"""The chat app's thread workers: loading the model, answering, searching.

They run blocking work (ONNX Runtime, LanceDB, HTTP) off Textual's event loop and only post
messages (pgpt.tui.chat.messages); the app's handlers update the widgets.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from textual import work

from pgpt.runtime.errors import Cancelled
from pgpt.tui.chat.library import DocumentLibrary, as_chat_result, load_library, server_ingest
from pgpt.tui.chat.messages import AnswerFinished, AnswerProgress, EngineLoaded, PrepareTick, ServerState
from pgpt.tui.chat.widgets import ChatLog, Turn

if TYPE_CHECKING:  # the engine pulls in onnxruntime; it is imported in the loading worker
    from pgpt.runtime.llm.chat import ChatEngine


class WorkersMixin:
    """Mixed into ChatApp, which provides settings, sampling, use_cache, _quitting and post_message."""

    preparing: tuple[int, int] | None = None  # the first start's step of steps while it exports

    settings: Any
    sampling: Any
    server_model: str  # a client: the server's model chosen on F3 ("" for its default)
    use_cache: bool
    _quitting: threading.Event
    post_message: Any
    _chat: Any
    _set_status: Any

    def show_first_start(self, tick: PrepareTick) -> None:
        """A first-start export's stage on the progress bar and the status line; at the first one, the
        FIRST_RUN note above the tip (the 9-line tip pushed it half-way down a 24-row screen)."""
        from textual.widgets import ProgressBar

        from pgpt.tui.chat.first_run import FIRST_RUN

        bar = self._chat.query_one("#ingest-progress", ProgressBar)
        if not bar.display:
            bar.display = True
            chat_log = self._chat.query_one(ChatLog)
            chat_log.add_turn("notice", FIRST_RUN, before=chat_log.query(".tip").first() if chat_log.query(".tip")
                              else None)
        bar.update(total=tick.steps, progress=tick.step)
        self.preparing = (tick.step, tick.steps)
        self._set_status(f"First start {tick.step}/{tick.steps}: {tick.text}")

    def first_start_done(self) -> None:
        """The models are ready: the FIRST_RUN note says so, in the past tense."""
        from pgpt.tui.chat.first_run import FIRST_RUN, FIRST_RUN_DONE

        self.preparing = None

        for turn in self._chat.query(Turn):
            if turn.kind == "notice" and turn.text == FIRST_RUN:
                turn.show(FIRST_RUN_DONE)

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_engine(self) -> None:
        """Load the active chat model (seconds), or connect to PGPT_SERVER, then post EngineLoaded."""
        engine: Any
        if self.settings.server:
            from pgpt.runtime.remote.client import connect

            engine = connect(self.settings, self.server_model)  # "": the model the server serves as default
            library = load_library(self.settings, remote=engine)
        else:
            from pgpt.runtime.llm.chat import ChatEngine

            from pgpt.tui.chat.first_run import prepare

            prepare(self.settings, lambda text, step, steps: self.post_message(PrepareTick(text, step, steps)),
                    self._quitting)
            engine = ChatEngine(self.settings, use_cache=self.use_cache)
            library = load_library(self.settings)
        if not self.post_message(EngineLoaded(engine, library)):
            engine.close()  # the app closed while the model loaded

    @work(thread=True, exclusive=True, exit_on_error=False, group="answer")
    def generate(self, engine: ChatEngine, messages: list[dict[str, str]], reply_id: int,
                 cancel: threading.Event, library: DocumentLibrary | None = None) -> None:
        """Stream one answer (from the documents when ``library`` is given) as AnswerProgress
        messages, then post AnswerFinished."""
        stream: Any
        if library is not None:
            import dataclasses

            from pgpt.runtime.settings import DOCUMENTS_MAX_TOKENS

            # ask's length: the same cache entries as the CLI's and a server's other clients
            short = dataclasses.replace(self.sampling, max_new_tokens=min(self.sampling.max_new_tokens,
                                                                          DOCUMENTS_MAX_TOKENS))
            earlier = [m["content"] for m in messages[:-1] if m["role"] == "user"]
            stream = library.ask(engine, messages[-1]["content"], short, cancel, earlier=earlier)
        else:
            stream = engine.stream(messages, self.sampling, cancel, fit=True)  # the oldest turns go first
        if hasattr(stream, "on_state"):  # a server's stream: its silences are said on the status line
            stream.on_state = lambda state: self.post_message(ServerState(reply_id, state))
        text = ""
        stopped = False
        try:
            for piece in stream:
                text += piece
                self.post_message(AnswerProgress(reply_id, text))
        except Cancelled:
            stopped = True
        result = as_chat_result(stream.result, engine)
        result.answer = result.answer or text  # a stopped document answer keeps what was written
        details = stream.result.as_json() if library is not None and not stopped else None
        self.post_message(AnswerFinished(reply_id, result, stopped=stopped, details=details))

    @work(thread=True, exclusive=True, exit_on_error=False, group="answer")
    def find_passages(self, library: DocumentLibrary, query: str, reply_id: int) -> None:
        """Search mode: the best passages, each with its sentence closest to the query
        highlighted; no LLM (instant even on a slow server)."""
        from pgpt.runtime.llm.chat import ChatResult

        text, markup = library.highlighted_search(query, k=5)
        where = library.remote.provider if library.remote is not None else "cpu"  # "server HOST:PORT" for a client
        if not text:  # "no match" about an empty index sends the user rewording instead of adding documents
            empty = library.remote is not None and not library.remote.documents()
            text = (f"The server has no documents yet: add some with {server_ingest(self.settings.server)}, "
                    "or press Ctrl+R for Chat mode (F4 lists the server's documents)."
                    if empty else "No matching passages.")
        result = ChatResult(answer=text, model="search", provider=where)
        self.post_message(AnswerFinished(reply_id, result, False, markup=markup))
