"""What the chat screen needs from the document index: loading it, its modes, result shapes."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings

if TYPE_CHECKING:
    from pgpt.runtime.llm.chat import ChatEngine, ChatResult

log = logging.getLogger(__name__)

MODES = {"docs": "Ask your documents", "chat": "Chat with the model", "search": "Search passages (no LLM)"}


@dataclass
class DocumentLibrary:
    """The embedder and the index that the Documents and Search modes read; both None when the
    documents live on a pgpt-serve (``remote``), which then answers and searches."""

    embedder: Any
    store: Any
    documents: int
    remote: Any = None  # the RemoteEngine of PGPT_SERVER

    def ask(self, engine: Any, question: str, options: SamplingOptions, cancel: threading.Event) -> Any:
        """A stream of the answer from the documents (iterate it, then read ``.result``)."""
        if self.remote is not None:
            return self.remote.ask(question, options, cancel)
        from pgpt.runtime.documents.answers import AskStream

        return AskStream(engine, self.store, self.embedder, question, options, cancel=cancel)

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """The passages closest to ``query`` as source dicts (no language model)."""
        if self.remote is not None:
            return list(self.remote.search(query, k))
        from pgpt.runtime.documents.retrieval import search

        return [hit.as_json() for hit in search(self.store, self.embedder, query, k=k)]


def load_library(settings: Settings, remote: Any = None) -> DocumentLibrary | None:
    """The embedder and index when the embedding model is exported, else None (chat only); with
    ``remote`` (a RemoteEngine), the server's documents."""
    from pgpt.runtime.errors import PgptError
    from pgpt.runtime.documents.ingest import open_store
    from pgpt.runtime.llm.embeddings import default_embedder

    if remote is not None:
        return DocumentLibrary(None, None, len(remote.documents()), remote)
    try:
        embedder = default_embedder(settings)
        store = open_store(settings, embedder)
        return DocumentLibrary(embedder, store, len(store.documents()))
    except PgptError as exc:  # no embedder, or an index of another model: chat still works
        log.warning("documents unavailable: %s", exc)
        return None


def as_chat_result(result: Any, engine: ChatEngine) -> ChatResult:
    """A ChatResult for the status line, from a chat or a document answer."""
    from pgpt.runtime.llm.chat import ChatResult

    if isinstance(result, ChatResult):
        return result
    return ChatResult(answer=result.answer, model=engine.model.info.name, provider=engine.provider,
                      cached=result.cached, timings=result.timings)


def format_source(source: dict[str, Any]) -> str:
    """``file, page N`` for a source of an answer or a search hit."""
    return str(source["source"]) + (f", page {source['page']}" if source.get("page") else "")


def describe_sources(sources: list[dict[str, Any]], snippet_chars: int = 160) -> str:
    """The sources panel: ``[n] file, page N`` and the start of the cited passage, for each source."""
    lines = []
    for number, source in enumerate(sources, 1):
        snippet = " ".join(str(source.get("text", "")).split())
        if len(snippet) > snippet_chars:
            snippet = snippet[: snippet_chars - 1] + "…"
        lines.append(f"[{number}] {format_source(source)}" + (f"\n    {snippet}" if snippet else ""))
    return "\n".join(lines)
