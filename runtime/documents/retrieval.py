"""Hybrid retrieval: vector search and full-text search over the chunks, fused by score.

Both legs fetch ``CANDIDATES_PER_LEG`` times more candidates than asked. Each candidate's score is
a convex combination of its cosine to the question (scaled to 0-1 over the candidates) and its
BM25 score over the chunk's folded text and heading (divided by the best one; 0 when the text leg did
not return it). Measured on the dev question sets (bench-docs): this beat reciprocal rank fusion,
which ranks a chunk that only one leg finds, however clearly, below chunks both legs find
middling. No per-document cap by default: the question is usually about one document, and a cap
of 3 kept its 4th and 5th best passages out of the top 5. No LLM runs here, so `pgpt-tui search`
answers at once even on a slow server.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import PurePath
from typing import Any

import numpy as np

from pgpt.runtime.documents.folding import fold, name_words
from pgpt.runtime.documents.records import quote, where_clause
from pgpt.runtime.documents.store import DocumentStore

CANDIDATES_PER_LEG = 10  # times k
VECTOR_WEIGHT = 0.5  # the cosine's share of the fused score; the rest is BM25


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk, as `pgpt-tui search --json` prints it."""

    source: str
    page: int
    text: str
    score: float
    heading: str
    chunk_id: str
    similarity: float  # cosine of the question and the passage
    also_in: tuple[str, ...] = ()  # other files with this same passage (copies), shown once
    # where it is indexed: a server shared by teams searched every collection, and its sources did
    # not say whose passage each was (t74)
    collection: str = ""

    def as_json(self) -> dict[str, Any]:
        """source, page, text, score (+ heading, chunk id, similarity, the copies' files and the
        collection; ``gone`` when the file is no longer on disk)."""
        return marked_gone({**asdict(self), "also_in": list(self.also_in)})


def marked_gone(source: dict[str, Any]) -> dict[str, Any]:
    """``source`` (a hit or an answer's source) with ``"gone": true`` when its file is no longer on
    disk, as `docs` marks it: answers and search cited moved or deleted files unmarked (t70)."""
    from pgpt.runtime.documents.discovery import is_gone

    source = {key: value for key, value in source.items() if key != "gone"}
    return {**source, "gone": True} if is_gone(str(source.get("source", ""))) else source


def search(store: DocumentStore, embedder: Any, query: str, k: int = 5, collection: str | None = None,
           per_document: int | None = None, query_vector: Any = None,
           doc_ids: list[str] | None = None) -> list[Hit]:
    """The ``k`` best chunks for ``query``, at most ``per_document`` from one document (None: no cap).

    ``query_vector`` is the query's embedding when the caller already has it; ``doc_ids``, when
    given, limits the search to those documents (PrivateGPT's ``context_filter``).
    """
    store.latest()
    # a query without a letter or a digit ("???") matches nothing: it gave five arbitrary passages
    if not re.search(r"[^\W_]", query) or not store.table.count_rows() or doc_ids == []:
        return []
    where = where_clause(collection, doc_ids)
    wanted = k * CANDIDATES_PER_LEG
    vector = embedder.embed([query])[0] if query_vector is None else query_vector

    def both_legs() -> list[list[dict[str, Any]]]:
        legs = [_vector_leg(store, vector, wanted, where)]
        if kind := store.text_index():
            legs.append(_text_leg(store, query, wanted, where, folded=kind == "folded"))
        return legs

    legs = store.reading(both_legs)
    for leg in legs:
        for row in leg:  # embeddings are normalized: cosine = dot product = 1 - cosine distance
            if "_distance" in row:
                row["similarity"] = 1.0 - row["_distance"]
            else:
                row["similarity"] = float(np.asarray(row["vector"], dtype=np.float32) @ vector)
    return _fuse(legs, k, per_document, query)


def require_collection(store: DocumentStore, collection: str | None, how_to_add: str) -> None:
    """Refuse a collection that holds no documents, naming the ones there are: a typo gave "not
    found" or an empty list, as if the documents did not say. ``how_to_add``: the next step.

    Raises:
        UsageError: nothing is indexed in ``collection``.
    """
    from pgpt.runtime.errors import UsageError

    if not collection or store.chunk_count(collection):  # a count: no rows read on every search
        return
    import difflib

    names = sorted({d.collection for d in store.documents()})
    close = difflib.get_close_matches(collection, names, n=1)  # "defualt" was offered an ingest into itself
    raise UsageError(f"No documents are indexed in the collection {collection!r}"
                     + (f": did you mean {close[0]!r}?" if close else "."),
                     hint=f"Collections here: {', '.join(names) or 'none yet'}. Leave out the collection to use "
                          f"them all, or add documents to it with {how_to_add}.")


def require_documents(store: DocumentStore, doc_ids: list[str] | None, collection: str | None = None) -> None:
    """Refuse a filter none of whose ids is indexed (PrivateGPT's ``context_filter``), or, with
    ``collection``, none in that collection: a misspelled id, or another team's document, gave no
    passages and "not found", as if the documents did not say (t80).

    Raises:
        RequestRefusedError: 404 naming the ids; 400 naming the collections they are in.
    """
    from pgpt.runtime.errors import RequestRefusedError

    if not doc_ids:
        return
    # an id of another collection beside one of this: dropped silently, as all of them were (t81)
    wanted = set(doc_ids)
    elsewhere = ({d.doc_id: d.collection for d in store.documents()
                  if d.doc_id in wanted and d.collection != collection} if collection else {})
    if not elsewhere and store.chunk_count(collection=collection, doc_ids=doc_ids):
        return
    shown = ", ".join(repr(d[:40]) for d in (list(elsewhere) or doc_ids)[:3]) + (
        f" and {len(elsewhere or doc_ids) - 3} more" if len(elsewhere or doc_ids) > 3 else "")
    if elsewhere:
        theirs = sorted(set(elsewhere.values()))
        raise RequestRefusedError(
            f"The document {shown} (context_filter.docs_ids) is in the collection {', '.join(theirs)}, not in "
            f"{collection!r} (collection).", status=400,
            hint="Leave out collection, or name the collection the documents are in.")
    raise RequestRefusedError(f"No document has the id {shown} (context_filter.docs_ids).", status=404,
                              hint="GET /v1/ingest/list lists the documents and their ids.")


def neighbours(store: DocumentStore, chunk_id: str, before: int, after: int) -> tuple[list[str], list[str]]:
    """The texts of up to ``before`` chunks before ``chunk_id`` and ``after`` after it, in document
    order (PrivateGPT's ``prev_next_chunks``); chunk ids are ``doc_id:position``."""
    doc_id, _, position = chunk_id.rpartition(":")
    if not doc_id or not position.isdigit() or before + after <= 0:
        return [], []
    index = int(position)
    wanted = [f"{doc_id}:{i}" for i in range(max(index - before, 0), index + after + 1) if i != index]
    if not wanted:
        return [], []
    rows = store.reading(lambda: store.table.search().where(f"chunk_id IN ({', '.join(quote(c) for c in wanted)})")
                         .select(["chunk_id", "text"]).limit(len(wanted)).to_list())
    texts = {int(r["chunk_id"].rpartition(":")[2]): r["text"] for r in rows}
    return ([texts[i] for i in sorted(texts) if i < index], [texts[i] for i in sorted(texts) if i > index])


def _vector_leg(store: DocumentStore, vector: Any, limit: int, where: str | None) -> list[dict[str, Any]]:
    query = store.table.search(vector).distance_type("cosine").select(_COLUMNS + ["_distance"]).limit(limit)
    return (query.where(where) if where else query).to_list()


def _text_leg(store: DocumentStore, text: str, limit: int, where: str | None,
              folded: bool = True) -> list[dict[str, Any]]:
    # Quotes would start a phrase query, which needs positions the index does not keep.
    words = re.sub(r"[\"'`]", " ", text).strip()
    if not words:
        return []
    if folded:  # the index reads folded text (folding.py): the query is folded the same way
        return _fts(store, fold(words), limit, where)
    rows = _fts(store, words, limit, where)
    if (other := _other_spelling(words)) != words:  # the better score of the two spellings counts
        best = {row["chunk_id"]: row for row in rows}
        for row in _fts(store, other, limit, where):
            if row["chunk_id"] not in best or row["_score"] > best[row["chunk_id"]]["_score"]:
                best[row["chunk_id"]] = row
        rows = sorted(best.values(), key=lambda row: -row["_score"])[:limit]
    return rows


def _fts(store: DocumentStore, words: str, limit: int, where: str | None) -> list[dict[str, Any]]:
    query = store.table.search(words, query_type="fts").select(_COLUMNS + ["vector", "_score"]).limit(limit)
    return (query.where(where) if where else query).to_list()


def _other_spelling(words: str) -> str:
    """The query with German ß and ss swapped ("Strasse" as "straße", "Straße" as "Strasse"), for an
    index made before the folded columns (folded, ß is "ss" on both sides).

    The full-text index stems before it folds, so "Straße" is indexed as "strasse" and "Strasse" as
    "strass": neither found the other, while "Francois" finds "François" (t50). Searched apart and
    not added to the query: "access" and "acceß" are one term to the index, and counted twice it
    outweighed the question's other words (one held-out passage fell out of the top 5).
    """
    if "ß" in words or "ẞ" in words:
        return words.replace("ß", "ss").replace("ẞ", "SS")
    return re.sub(r"ss", "ß", words, flags=re.IGNORECASE)


_COLUMNS = ["chunk_id", "doc_id", "path", "text", "heading", "page", "collection"]
# Added to the fused score (0-1) of the passages of a file the question names: "Which port does the
# Dockerfile expose?" ranked a file about ports first, the Dockerfile second (t61). 0.2, 0.5 and 1.0 gave
# the same hits on the development sets (manuals-dev strict hit@1 28 -> 29 of 46, the rest unchanged);
# 0.5 is the least of them that puts a named file first in the unit cases.
NAMED_FILE_BONUS = 0.5
_WORDS = re.compile(r"[^\W_]+")
# An identifier with dots or colons and a digit: an address (172.16.0.4, fe80::1), a version
# (4.12.0-rc3). The full-text index reads "172.16.0.4" as the numbers 172, 16, 0 and 4, which any SVG
# or table holds, and `search 172.16.0.4` put the one log line with the address 6th (t61). When the
# query is such identifiers alone, a passage that holds them as written gets up to LITERAL_BONUS more
# (a share for each). Not for questions: in them, the same bonus at 0.5 moved manuals-dev strict hit@1
# 29 -> 26 of 46 and named 24 -> 23 (versions the question names stand in other passages too).
_LITERAL = re.compile(r"(?=[\w.:-]*\d)[^\W_]+(?:[.:]+[^\W_]+)+(?:-[^\W_]+)*")
LITERAL_BONUS = 0.5


def _only_literals(query: str) -> bool:
    """Whether ``query`` is identifiers with dots or colons alone ("172.16.0.4", "10.0.0.1 10.0.0.2")."""
    return bool(_LITERAL.search(query)) and not re.sub(r"[\s,;]+", "", _LITERAL.sub("", query))


def _named_files(query: str, paths: set[str]) -> set[str]:
    """The paths whose file name the query says: every word of it ("data.csv", "the Makefile",
    "tqdm's licence" for tqdm-licence.txt), in any case, one of them more than a document's kind
    ("notes", "guide", "readme" alone name no file: "Where are the release notes?")."""
    from pgpt.runtime.documents.sentences import content_words
    from pgpt.runtime.documents.subjects import DOCUMENT_KINDS

    words = set(_WORDS.findall(fold(query).lower()))
    named = set()
    for path in paths:  # as written, not stemmed: "Which port ...?" does not name ports.txt
        name = set(_WORDS.findall(fold(name_words(path)).lower()))
        if name <= words and any(content_words(w) - DOCUMENT_KINDS for w in name):
            named.add(path)
    return named


def _fuse(legs: list[list[dict[str, Any]]], k: int, per_document: int | None, query: str = "") -> list[Hit]:
    rows: dict[str, dict[str, Any]] = {}
    for leg in legs:
        for row in leg:
            rows.setdefault(row["chunk_id"], row)
    if not rows:
        return []
    bm25 = {row["chunk_id"]: float(row["_score"]) for leg in legs for row in leg if "_score" in row}
    cosines = [float(row["similarity"]) for row in rows.values()]
    low, spread = min(cosines), max(max(cosines) - min(cosines), 1e-9)
    best_bm25 = max(bm25.values(), default=0.0) or 1.0
    named = _named_files(query, {row["path"] for row in rows.values()})
    literals = [re.compile(rf"(?<![\w.]){re.escape(literal)}(?![\w]|\.\w)", re.IGNORECASE)
                for literal in set(_LITERAL.findall(query))] if _only_literals(query) else []
    scores = {chunk_id: VECTOR_WEIGHT * (float(row["similarity"]) - low) / spread
              + (1 - VECTOR_WEIGHT) * bm25.get(chunk_id, 0.0) / best_bm25
              + (NAMED_FILE_BONUS if row["path"] in named else 0.0)
              + (LITERAL_BONUS * sum(bool(p.search(row["text"])) for p in literals) / len(literals) if literals else 0.0)
              for chunk_id, row in rows.items()}
    kept: dict[str, tuple[str, list[str]]] = {}  # a passage's text: its best chunk, the other files with it
    taken: dict[str, int] = {}
    # On a tie the passage that holds the query's words comes first: "libevent" ranked a passage
    # without the word (the best cosine, 0.5) above the one with it (the best BM25, 0.5); then the
    # shorter file name, so that of identical copies the same one is shown, and rather "report.md"
    # than "Copy of report.md" or "report (1).md".
    def rank(c: str) -> tuple[float, float, int, str]:
        return -round(scores[c], 9), -bm25.get(c, 0.0), len(PurePath(rows[c]["path"]).name), rows[c]["path"]

    for chunk_id in sorted(scores, key=rank):
        row = rows[chunk_id]
        if per_document is not None and taken.get(row["doc_id"], 0) >= per_document:
            continue
        # The same text in another file ("Copy of report.md", a file in two collections) is shown once,
        # naming the copies: each copy took one of the few passages the model reads, leaving others out.
        first = kept.get(row["text"])
        if first is not None:
            if row["path"] != rows[first[0]]["path"] and row["path"] not in first[1]:
                first[1].append(row["path"])
            continue
        if len(kept) < k:
            kept[row["text"]] = (chunk_id, [])
            taken[row["doc_id"]] = taken.get(row["doc_id"], 0) + 1
    return [Hit(rows[c]["path"], int(rows[c]["page"]), rows[c]["text"], round(scores[c], 5), rows[c]["heading"], c,
                round(float(rows[c]["similarity"]), 4), tuple(copies), rows[c].get("collection") or "")
            for c, copies in kept.values()]
