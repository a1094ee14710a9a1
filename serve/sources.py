"""How documents and passages look to pgpt-serve's clients: paths without the server's folders,
and PrivateGPT's ``context.chunk`` shape for sources and /v1/chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pgpt.runtime.documents.markup import inert_answer
from pgpt.runtime.sanitize import shown_name


def shown_path(home: Path, path: str) -> str:
    """A document's path as the server's clients see it: an upload by the name it was sent under
    (``report.pdf``, ``docs/guide/README.md``), another file with the server account's home folder
    as ``~``. A client learns neither the account's name nor where the server keeps its data; the
    documents' own folders stay, as the team may know them."""
    uploads = home / "uploads"
    where = Path(path)
    if where.is_relative_to(uploads):  # uploads/COLLECTION/NAME
        return shown_name("/".join(where.relative_to(uploads).parts[1:]) or where.name)
    account = Path.home()
    # as `docs` shows it: a local file's name with ESC[31m or U+202E reached every client raw (t65)
    return shown_name(f"~/{where.relative_to(account)}" if where.is_relative_to(account) else path)


def inert(value: Any) -> Any:
    """Document text (or a list of passages) as any client may print it: no terminal escapes,
    controls, script-like tags or javascript: URLs; answers had this, their sources did not (t65)."""
    if isinstance(value, str):
        return inert_answer(value)
    return [inert(item) for item in value] if isinstance(value, list) else value


def shown_source(home: Path, source: dict[str, Any]) -> dict[str, Any]:
    """``source`` (a passage, quote or closest passage of an answer) with its path as clients see it
    (a passage keeps it in ``source``, a quote in ``file``: its ``source`` is the citation number)."""
    key = "file" if "file" in source else "source"
    shown = {**source, key: shown_path(home, str(source[key]))} if key in source else dict(source)
    shown.update({field: inert(source[field]) for field in ("text", "sentence") if field in source})
    if source.get("also_in"):  # the other files with the same passage: their paths as clients see them too
        shown["also_in"] = [shown_path(home, str(path)) for path in source["also_in"]]
    return shown


def context_chunk(source: dict[str, Any]) -> dict[str, Any]:
    """A source in PrivateGPT's ``context.chunk`` shape (file name and page in ``doc_metadata``)."""
    # page_label is always there, so a client reads one shape: the page number as text (PrivateGPT's
    # "1", "2"), or null for a file without pages (text, Markdown, Word).
    page = source.get("page")
    metadata: dict[str, Any] = {"file_name": shown_name(Path(str(source.get("source", ""))).name),
                                "path": source.get("source", ""), "page_label": str(page) if page else None}
    if source.get("collection"):  # whose passage it is, where one server keeps several teams' collections (t74)
        metadata["collection"] = source["collection"]
    # score: PrivateGPT's, the passage's similarity to the question (comparable between questions);
    # rank_score: pgpt's fused rank score (cosine and BM25, scaled within one result list).
    return {"object": "context.chunk", "score": source.get("similarity", source.get("score", 0.0)),
            "rank_score": source.get("score", 0.0),
            "document": {"object": "ingest.document", "doc_id": source.get("doc_id", ""),
                         "doc_metadata": metadata},
            "text": inert(source.get("text", "")), "previous_texts": inert(source.get("previous_texts")),
            "next_texts": inert(source.get("next_texts"))}
