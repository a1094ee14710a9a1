"""Messages that the chat screen's thread workers post (workers never touch widgets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from pgpt.runtime.llm.chat import ChatEngine, ChatResult
    from pgpt.runtime.documents.progress import IngestProgress
    from pgpt.tui.chat.library import DocumentLibrary


@dataclass
class EngineLoaded(Message):
    """The chat model (and, when its model is exported, the document index) is loaded."""

    engine: ChatEngine
    library: DocumentLibrary | None = None


@dataclass
class AnswerProgress(Message):
    """The answer so far; a newer one replaces an older one still in the queue."""

    reply_id: int
    text: str

    def can_replace(self, message: Message) -> bool:
        """Only the latest text matters, so a busy screen skips frames, not keystrokes."""
        return isinstance(message, AnswerProgress) and message.reply_id == self.reply_id


# A documents answer's steps as the status line says them (AskStream.on_state)
ANSWER_STEPS = {"searching": "searching the documents… Esc stops", "reading": "reading the passages… Esc stops",
                "writing": "writing the answer… Esc stops", "checking": "checking it against the sources…"}


@dataclass
class ServerState(Message):
    """What a server does while it sends no text: "waiting" (queued, or reading the prompt),
    "drafting N" (a documents answer, sent once checked), "busy N" (refused as busy: asked again in
    N seconds); or one of this app's own documents
    answer's ANSWER_STEPS."""

    reply_id: int
    state: str

    def can_replace(self, message: Message) -> bool:
        """Only the latest state matters."""
        return isinstance(message, ServerState) and message.reply_id == self.reply_id


@dataclass
class AnswerFinished(Message):
    """The answer ended, complete or stopped with Esc.

    ``details`` is a document answer's `ask --json` object (kind, quotes, sources, closest
    passages); ``markup`` the search results with their matching sentences highlighted, built
    from sanitized, escaped text.
    """

    reply_id: int
    result: ChatResult
    stopped: bool
    details: dict[str, Any] | None = None
    markup: str = ""


@dataclass
class IngestTick(Message):
    """Progress of adding documents: files done of total, chunks, ETA."""

    tick: IngestProgress

    def can_replace(self, message: Message) -> bool:
        """Only the latest tick matters."""
        return isinstance(message, IngestTick)


@dataclass
class IngestDone(Message):
    """Adding documents ended (finished or stopped); the summary and the documents now indexed."""

    summary: str
    documents: int


@dataclass
class ModelChanged(Message):
    """A panel changed the active chat model (set active, exported, deleted): the chat reloads it."""

    name: str


@dataclass
class PrepareTick(Message):
    """First run: a stage of exporting the embedded default models (step of steps)."""

    text: str
    step: int
    steps: int
