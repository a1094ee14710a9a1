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
UNCHECKED = "(stopped before the answer was checked against your documents)"  # a draft is checked only once whole


def server_ingest(server: str) -> str:
    """The command that adds documents to a pgpt-serve's index, with its real URL: a client's Docs
    screen (F4) only lists and forgets them."""
    return f"`pgpt-tui --server {server} ingest PATH`"


@dataclass
class DocumentLibrary:
    """The embedder and the index that the Documents and Search modes read; both None when the
    documents live on a pgpt-serve (``remote``), which then answers and searches."""

    embedder: Any
    store: Any
    documents: int
    remote: Any = None  # the RemoteEngine of PGPT_SERVER

    def ask(self, engine: Any, question: str, options: SamplingOptions, cancel: threading.Event,
            earlier: list[str] | None = None) -> Any:
        """A stream of the answer from the documents (iterate it, then read ``.result``); ``earlier``:
        the chat's earlier questions, so that a follow-up is searched after what it follows."""
        if self.remote is not None:
            return self.remote.ask(question, options, cancel, earlier=earlier)
        from pgpt.runtime.documents.answers import AskStream

        return AskStream(engine, self.store, self.embedder, question, options, cancel=cancel, earlier=earlier)

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """The passages closest to ``query`` as source dicts (no language model)."""
        if self.remote is not None:
            return list(self.remote.search(query, k))
        from pgpt.runtime.documents.retrieval import search

        return [hit.as_json() for hit in search(self.store, self.embedder, query, k=k)]

    def highlighted_search(self, query: str, k: int = 5) -> tuple[str, str]:
        """Search mode's text and markup: the best passages, each with its sentence closest to the
        query highlighted (a server's passages are shown without the highlight)."""
        if self.remote is not None:
            return describe_sources(self.search(query, k), snippet_chars=240), ""
        from pgpt.runtime.documents.passage_view import matching_sentences
        from pgpt.runtime.documents.retrieval import search

        vector = self.embedder.embed([query])[0]
        hits = [h.as_json() for h in search(self.store, self.embedder, query, k=k, query_vector=vector)]
        sentences = matching_sentences(query, vector, [h["text"] for h in hits], self.embedder.embed)
        return describe_hits(hits, sentences)


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
    info = engine.model.info  # its version too: the status line shows name@version
    return ChatResult(answer=result.answer, model=info.name, provider=engine.provider, version=info.version,
                      cached=result.cached, timings=result.timings, finish_reason=result.finish_reason)


def describe_sources(sources: list[dict[str, Any]], snippet_chars: int = 160) -> str:
    """The sources panel: ``[n] file, page N`` and about ``snippet_chars`` of the cited passage
    (around its ``sentence`` when the source names one), for each source. A table's rows and a
    list's items stay on lines of their own ("- life jackets counted - radio tested" ran together)."""
    from pgpt.runtime.documents.passage_view import indented, sentence_window, where

    lines = []
    for number, source in enumerate(sources, 1):
        snippet = "".join(sentence_window(str(source.get("text", "")), str(source.get("sentence", "")), snippet_chars))
        lines.append(f"[{number}] {where(source)}" + (f"\n    {indented(snippet, '    ')}" if snippet else ""))
    return "\n".join(lines)


def describe_quotes(result: dict[str, Any]) -> str:
    """The sentences that support a documents answer (``result``: answer, kind, quotes, sources):
    ``[n] file, page N: “sentence”``, then those of other sources that say otherwise (conflicts.py),
    under their own title; a quote answer's own sentence is not repeated."""
    from pgpt.runtime.documents.conflicts import quote_groups
    from pgpt.runtime.documents.passage_view import quote_line

    return "\n\n".join(f"{title}:\n" + "\n".join(quote_line(q, result["sources"]) for q in group)
                       for title, group in quote_groups(result))


def describe_closest(passages: list[dict[str, Any]]) -> tuple[str, str]:
    """A "not found" answer's closest passages, so the user can judge for themselves: plain text
    and markup, each passage shown around its sentence that answers the question best."""
    if not passages:
        return "", ""
    from pgpt.runtime.documents.grounding import CLOSEST_CHARS

    plain, markup = describe_hits(passages, [p.get("sentence", "") for p in passages], width=CLOSEST_CHARS)
    title = "Closest passages (the answer may be in them; judge for yourself):\n"
    return title + plain.replace("\n[", "\n\n["), title + markup.replace("\n[", "\n\n[")


def describe_hits(hits: list[dict[str, Any]], sentences: list[str], width: int = 300) -> tuple[str, str]:
    """Search results as plain text and as Textual markup with each passage's matching sentence
    highlighted: document text is sanitized and escaped before any tag is added around it.

    Each passage is shown around its matching sentence, about ``width`` characters.
    """
    from pgpt.runtime.documents.passage_view import indented, sentence_window, where
    from pgpt.tui.sanitize import clean_text

    plain, markup = [], []
    for number, (hit, sentence) in enumerate(zip(hits, sentences), 1):
        before, sentence, after = sentence_window(str(hit.get("text", "")), sentence, width)
        head = f"[{number}] {where(hit)}"
        plain.append(indented(f"{head}\n{before}{sentence}{after}", "    "))
        markup.append(indented(f"{clean_text(head)}\n{clean_text(before)}"
                               + (f"[reverse]{clean_text(sentence)}[/reverse]" if sentence else "")
                               + clean_text(after), "    "))
    return "\n".join(plain), "\n".join(markup)


def drafted_an_answer(streamed: str) -> bool:
    """Whether the text streamed before the check was an answer (which "not found" then replaced,
    and the user saw vanish) rather than the model's own "I could not find it"."""
    from pgpt.runtime.documents.abstention import is_abstention

    return bool(streamed.strip()) and not is_abstention(streamed)


def trimmed(streamed: str, answer: str) -> bool:
    """Whether the check left part of the streamed draft out of a supported answer (words, not the
    citations' numbers or the spacing, differ): the draft's junk vanished without a word (t73)."""
    from pgpt.runtime.documents.statements import answer_words

    return bool(streamed.strip()) and answer_words(streamed) != answer_words(answer)
