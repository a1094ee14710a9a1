"""Headless document commands of `pgpt-tui`: ingest, docs, search, ask (forget: forget.py); the TUI calls
the same core."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgpt.runtime.arg_types import (collection_name, given_path, non_negative_int, passage_count, positive_int,
                                     result_count)
from pgpt.runtime.sanitize import dumps_json, hanging, one_line, shown_name, strip_controls
from pgpt.runtime.settings import DOCUMENTS_MAX_TOKENS
from pgpt.tui.cli.answer_steps import describe_answer, read_answer
from pgpt.tui.cli.ingest_report import print_report
from pgpt.tui.cli.inputs import text_argument
from pgpt.tui.cli.text_bar import TextBar, status_line, terminal_width

if TYPE_CHECKING:
    from pgpt.runtime.errors import UsageError


def add_parsers(sub: Any) -> None:
    """Register ingest / docs / forget / search on the subcommand parser."""
    from pgpt.tui.cli.main import add_server_option

    ingest = sub.add_parser("ingest", help="index files and folders for search and answers (incremental)")
    ingest.add_argument("paths", nargs="+", type=given_path, metavar="PATH")
    ingest.add_argument("--collection", default="default", type=collection_name,
                        help="collection name: letters, digits, '.', '_', '-' (default: default)")
    ingest.add_argument("--prune", action="store_true",
                        help="forget indexed files under PATH that are gone (with --server: the server's documents "
                             "sent from PATH whose files are gone here)")
    ingest.add_argument("--reindex", action="store_true",
                        help="rebuild the index (after changing the embedding model); the old one serves until "
                             "it is done (not with --server)")
    ingest.add_argument("--json", action="store_true", help="print the report as JSON")
    docs = sub.add_parser("docs", help="list indexed documents with chunk counts and dates")
    docs.add_argument("path", nargs="?", type=given_path, metavar="PATH",
                      help="only the documents at or under this file or folder (with --server: whose names start so)")
    docs.add_argument("--collection", help="list this collection only (default: all)")
    docs.add_argument("--json", action="store_true", help="print one JSON object")
    forget = sub.add_parser("forget", help="remove a document, or every document under a folder, from the index")
    forget.add_argument("path", type=given_path,
                        help="its path or a folder's (with --server: its file name, path or id)")
    forget.add_argument("--collection", help="from this collection only (default: every collection)")
    forget.add_argument("--json", action="store_true", help="print one JSON object: what was forgotten")
    forget.add_argument("--missing-ok", action="store_true",
                        help="a PATH with no indexed document is no error (exit 0, nothing forgotten): for a "
                             "clean-up script run twice")
    search = sub.add_parser("search", help="find passages (hybrid vector + full-text search, no LLM)")
    search.add_argument("query", help="what to look for, or - to read it from standard input")
    search.add_argument("-k", type=result_count, default=5, help="number of results, 1 to 100 (default 5)")
    search.add_argument("--collection", help="search this collection only (default: all)")
    search.add_argument("--json", action="store_true", help="print one JSON object")
    ask = sub.add_parser("ask", help="answer a question from the indexed documents, with sources")
    ask.add_argument("question", help="the question, or - to read it from standard input")
    ask.add_argument("--collection", help="answer from this collection only (default: all)")
    # None: pgpt.runtime.documents.answers.DEFAULT_PASSAGES (not imported here: numpy would slow --help).
    ask.add_argument("-k", type=passage_count, default=None, help="passages to hand to the model, 1 to 20 (default 3)")
    ask.add_argument("--sentences", type=non_negative_int, default=None,
                     help="the sentences of those passages closest to the question that the model reads "
                          "(default 8; 0: whole passages)")
    ask.add_argument("--model", default="", help="exported chat model (default: the active one)")
    ask.add_argument("--max-tokens", type=positive_int, default=DOCUMENTS_MAX_TOKENS,
                     help=f"most tokens in the answer (default {DOCUMENTS_MAX_TOKENS}, as the app's Documents mode)")
    ask.add_argument("--no-cache", action="store_true", help="do not read or write the answer caches")
    ask.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    for name, command in (("ingest", ingest), ("docs", docs), ("forget", forget), ("search", search), ("ask", ask)):
        add_embedder_option(command)
        add_server_option(command, after_command=name)  # with a server: its index, over its API


def add_embedder_option(parser: Any) -> None:
    """``--embedder NAME``, global and after each document command (SUPPRESS: when absent it leaves
    the attribute unset, so a command without it keeps the global one)."""
    parser.add_argument("--embedder", metavar="NAME", default=argparse.SUPPRESS,
                        help="exported embedding model (default: PGPT_EMBEDDER or all-minilm-l6-v2-int8)")


def run_ingest(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui ingest PATH... [--collection NAME] [--prune] [--reindex] [--json]`."""
    from contextlib import nullcontext

    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.documents.index_folder import refuse_if_writing
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.documents.unfinished import remembered, taken_up
    from pgpt.runtime.documents.progress import shown_step

    _require_paths(list(args.paths), args.prune)
    if settings.server:  # the server's index, not a local one nobody asks
        from pgpt.tui.cli.remote_documents import ingest_on_server

        return ingest_on_server(settings, args)
    refuse_if_writing(settings)
    if args.reindex:  # its bar counts every indexed document: 1,728 files for one small PATH puzzled (t53)
        print("Re-indexing: every document of the index is read again into a new table, with the paths given; "
              "the index in use answers until the new one is complete (a stop leaves it as it is).", file=sys.stderr)
    bar = TextBar(sys.stderr)
    last: list[Any] = []

    def draw(tick: Any) -> None:
        last[:] = [tick]
        inside = f" ({step})" if (step := shown_step(tick)) else ""
        # the name as `docs` shows it: a right-to-left override was dropped here, escaped there (t65)
        chunks = f"{tick.chunks} chunk{'' if tick.chunks == 1 else 's'}"  # "1 chunks" (t77)
        bar.draw(tick.fraction, tick.total, f"{tick.done}/{tick.total} files {chunks}", tick.eta_s,
                 shown_name(Path(tick.current).name) + inside)

    if not args.reindex and (earlier := taken_up(settings, list(args.paths), args.collection)):
        print(strip_controls(earlier), file=sys.stderr)  # the same add again after its process died (t66)
    # remembered until it ends (a re-index stopped leaves the index in use as it was: nothing to go on with)
    marked = nullcontext(draw) if args.reindex else remembered(settings, list(args.paths), args.collection, draw)
    try:
        with marked as progress:
            report = ingest(settings, list(args.paths), default_embedder(settings), collection=args.collection,
                            prune=args.prune, reindex=args.reindex, progress=progress, cancel=threading.Event())
    except KeyboardInterrupt:  # Ctrl-C: say what stays, as a cancel does, not the generic "Interrupted"
        from pgpt.runtime.documents.ingest import stopped

        bar.close()
        tick = last[0] if last else None
        inside = tick.current if tick and tick.file_chunks else ""  # stopped inside a large file
        raise stopped(tick.done if tick else 0, tick.total if tick else 0, args.reindex, inside,
                      (tick.file_chunks_done, tick.file_chunks) if inside and tick else (0, 0)) from None
    bar.close()
    print_report(report, args)
    # a folder --prune left alone is a night to look at (cron mails what exits non-zero); so is a run that
    # indexed nothing at all: an empty folder, one of damaged files only (it was exit 0, t71)
    indexed = report.added or report.updated or report.renamed or report.unchanged or report.removed or report.rechunked
    return 1 if report.failed or report.not_pruned or not indexed or all_skipped(list(args.paths), report.skipped) else 0


def all_skipped(paths: list[Path], skipped: list[tuple[str, str]]) -> bool:
    """Whether each path the user named was skipped whole (`ingest /usr/bin/ls` exited 0 with nothing
    indexed: a script went on as if it had worked): a file, or pgpt's own folder."""
    import os

    passed_over = {path for path, _ in skipped}  # under the name given, or its real path once read
    named = [path.expanduser() for path in paths if os.path.lexists(path.expanduser())]  # --prune names gone ones
    return bool(named) and len(named) == len(paths) and all(
        str(path) in passed_over or os.path.realpath(path) in passed_over for path in named)


def run_docs(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui docs [--collection NAME] [--json]`."""
    import time

    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.documents.discovery import gone_documents
    from pgpt.runtime.documents.ingest import open_store
    from pgpt.runtime.documents.left_out import remembered
    from pgpt.runtime.errors import ModelNotFoundError
    from pgpt.tui.cli.ingest_report import left_out_lines

    if settings.server:
        from pgpt.tui.cli.remote_documents import docs_on_server

        return docs_on_server(settings, args)
    try:
        store = open_store(settings, default_embedder(settings))
    except ModelNotFoundError:  # listing needs no model: the index names the one it was built with (t71)
        from pgpt.runtime.documents.index_folder import listing_store

        if (store := listing_store(settings)) is None:
            raise
    _require_collection(store, args.collection)
    documents = store.documents(args.collection)
    left_out = remembered(store.folder, args.collection)
    if args.path is not None:  # 3,213 lines, and no way to narrow them to a folder (t64)
        documents, left_out = _under(args.path, documents, left_out)
    # a file deleted since it was indexed still answers until --prune: marked, as F4 marks it (t61)
    gone = {d.path for d in gone_documents(documents)}
    if args.json:
        print(dumps_json({"documents": [{"path": d.path, "collection": d.collection, "chunks": d.chunks,
                                         "ingested_at": d.ingested_at, "gone": d.path in gone}
                                        for d in documents],
                          "left_out": [{"path": path, "reason": reason, "collection": name}
                                       for path, reason, name in left_out]}, indent=2))
        return 0
    if not documents:
        print("No documents indexed yet. Add some with `pgpt-tui ingest PATH`.")
    for d in documents:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.ingested_at))
        print(f"{d.chunks:>6} chunk{' ' if d.chunks == 1 else 's'}  {when}  [{one_line(d.collection)}] "
              f"{shown_name(d.path)}{'  (file gone)' if d.path in gone else ''}")
    if documents:
        total = sum(d.chunks for d in documents)
        print(f"{len(documents)} document{'' if len(documents) == 1 else 's'}, {total} chunk{'' if total == 1 else 's'}"
              + (f"; {len(gone)} file{'' if len(gone) == 1 else 's'} gone from disk still answer{'s' if len(gone) == 1 else ''}"
                 " (`pgpt-tui ingest PATH --prune` or `pgpt-tui forget PATH` forgets them)" if gone else ""))
    if left_out:
        print(LEFT_OUT_HEADING)
        for line in left_out_lines([(path, reason) for path, reason, _ in left_out], [], ("left out", "")):
            print(line)
    return 0


def _under(path: Path, documents: list[Any], left_out: list[tuple[str, str, str]]) -> tuple[list[Any], list[Any]]:
    """The documents and left-out files at or under ``path``; a path with neither is a usage error
    (a typo listed nothing, with exit 0)."""
    from pgpt.runtime.documents.discovery import resolved
    from pgpt.runtime.errors import UsageError

    wanted = str(resolved(path))
    inside = wanted.rstrip(os.sep) + os.sep

    def under(name: str) -> bool:
        return name == wanted or name.startswith(inside)

    documents, left_out = [d for d in documents if under(d.path)], [f for f in left_out if under(f[0])]
    if not documents and not left_out:
        raise UsageError(f"{one_line(wanted)} is not in the document index, and no indexed file is under it.",
                         hint="See the indexed files with `pgpt-tui docs`.")
    return documents, left_out


# The files an add left out that may hold text (runtime/documents/left_out.py): no answer can come from them
LEFT_OUT_HEADING = "Left out when added, so no answer comes from them (fix the cause, then ingest them again):"


def run_search(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui search "QUERY" [-k 5] [--collection NAME] [--json]`."""
    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.documents.ingest import open_store
    from pgpt.runtime.documents.retrieval import search

    query = text_argument(args.query, "query")
    if settings.server:
        from pgpt.runtime.remote.client import connect

        remote = connect(settings)
        try:
            hits = remote.search(query, args.k, args.collection)
            if not hits and not remote.documents():  # the server's index is empty: as locally, exit 2
                raise _nothing_indexed(settings, "search")
        finally:
            remote.close()
    else:
        # The embedder first (small: a fraction of a second), so a wrong or damaged one is named
        # even before anything is indexed; then, as `ask`, an empty index is an error, not 0 results.
        embedder = default_embedder(settings)
        _require_documents(settings, "search")
        store = open_store(settings, embedder)
        _require_collection(store, args.collection)
        hits = [h.as_json() for h in search(store, embedder, query, k=args.k, collection=args.collection)]
        if not hits and not store.chunk_count():  # every document was forgotten
            raise _nothing_indexed(settings, "search")
        _add_matching_sentences(query, hits, embedder)
    if args.json:
        print(dumps_json({"query": query, "results": hits}, indent=2))
        return 0
    if not hits:
        print("No matching passages.")
    from pgpt.runtime.documents.passage_view import indented, sentence_window, where

    for number, hit in enumerate(hits, 1):  # each around its sentence that matches best, as the app shows it
        snippet = "".join(sentence_window(hit["text"], hit.get("sentence", ""), 300))
        print(hanging(indented(f"[{number}] {where(hit)}  (score {hit['score']:.4f})\n{snippet}", "    "), terminal_width()))
    return 0


def _add_matching_sentences(query: str, hits: list[dict[str, Any]], embedder: Any) -> None:
    """Each hit's ``sentence`` that matches the query best (the app's highlight; --json has it too)."""
    from pgpt.runtime.documents.passage_view import matching_sentences

    if hits:
        found = matching_sentences(query, embedder.embed([query])[0], [h["text"] for h in hits], embedder.embed)
        for hit, sentence in zip(hits, found):
            hit["sentence"] = sentence


def run_ask(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui ask "QUESTION" [--collection NAME] [-k 3] [--sentences 8] [--json]`.

    The answer is printed once it has been checked against the sources (it may then differ from
    what the model wrote); meanwhile a terminal shows how much of the draft is written.
    """
    from pgpt.runtime.documents.answers import DEFAULT_PASSAGES, FOCUS_SENTENCES, AskStream
    from pgpt.runtime.documents.ingest import open_store
    from pgpt.runtime.llm.chat import engine_loading_beside
    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.llm.sampling import SamplingOptions
    from pgpt.tui.cli.main import print_cut_note, print_warnings

    question = text_argument(args.question, "question")
    options = SamplingOptions(max_new_tokens=args.max_tokens)
    cancel = threading.Event()  # Ctrl-C sets it (see interrupt.py)
    if settings.server:  # the server's documents, model and caches; it checks the answer too
        from pgpt.runtime.errors import ServerUsageError
        from pgpt.runtime.remote.client import connect
        from pgpt.tui.cli.inputs import refuse_no_cache_on_server

        refuse_no_cache_on_server(args.no_cache)
        remote = connect(settings, args.model)
        try:
            stream: Any = remote.ask(question, options, cancel, collection=args.collection,
                                     passages=args.k, sentences=args.sentences)
            read_answer(stream, cancel, args.json)
        except ServerUsageError:  # the server's "nothing indexed" names its HTTP API, not this command
            if not remote.documents():
                raise _nothing_indexed(settings, "ask") from None
            raise
        finally:
            remote.close()
    else:
        _require_documents(settings)
        status_line("loading the model and the document index…", args.json)
        # The chat model loads while the embedder and the index open: both take about 2 s.
        with engine_loading_beside(settings, args.model, use_cache=not args.no_cache) as loaded_engine:
            embedder = default_embedder(settings)
            store = open_store(settings, embedder)
            _require_collection(store, args.collection)
            engine = loaded_engine()
            print_warnings(engine.take_warnings())
            stream = AskStream(engine, store, embedder, question, options, collection=args.collection,
                               k=args.k or DEFAULT_PASSAGES, cancel=cancel,
                               sentences=FOCUS_SENTENCES if args.sentences is None else args.sentences)
            read_answer(stream, cancel, args.json)
            print_warnings(engine.take_warnings())
    if args.json:
        print(dumps_json(stream.result.as_json()))
        return 0
    print(hanging(describe_answer(stream.result.as_json()), terminal_width()))
    print_cut_note(stream.result)
    return 0


def _require_documents(settings: Any, command: str = "ask") -> None:
    """Refuse a question or a search when nothing is indexed, before any model loads: "not found"
    or no results would suggest the user's documents were searched and do not say."""
    from pgpt.runtime.documents.index_folder import index_has_data

    if not index_has_data(settings):
        raise _nothing_indexed(settings, command)


def _nothing_indexed(settings: Any, command: str) -> UsageError:
    """The usage error (exit 2) of ``ask`` or ``search`` with an empty index (the server's, with
    ``settings.server``)."""
    from pgpt.runtime.errors import UsageError

    purpose, then = (("to answer from", ", or ask the model without documents with `pgpt-tui chat`.")
                     if command == "ask" else ("to search", ", then search again."))
    if settings.server:  # the documents live on the server, not in this machine's home
        return UsageError(f"Nothing is indexed yet on the server at {settings.server}, so there is nothing {purpose}.",
                          hint=f"Send documents to it from here with `pgpt-tui --server {settings.server} ingest PATH` (files or "
                               f"folders){then}")
    return UsageError(f"Nothing is indexed yet in {settings.home}, so there is nothing {purpose}.",
                      hint=f"Add documents with `pgpt-tui ingest PATH` (files or folders){then}")


def _require_paths(paths: list[Path], prune: bool) -> None:
    """Refuse paths that do not exist before anything loads: a typo was "1 skipped" and exit 0.
    With --prune a vanished folder is meant: its documents leave the index."""
    from pgpt.runtime.documents.discovery import missing_paths
    from pgpt.runtime.errors import UsageError

    missing = missing_paths(paths)
    joined = " ".join(str(path) for path in paths)
    if missing and len(paths) > 1 and Path(joined).expanduser().exists():  # `ingest sp dir` for "sp dir"
        raise UsageError(f"No such file or folder: {', '.join(missing)}; but {joined!r} exists. Nothing was indexed.",
                         hint=f"A path with spaces goes in quotes: pgpt-tui ingest \"{joined}\".")
    if missing and not prune:
        raise UsageError(f"No such file or folder: {', '.join(missing)}. Nothing was indexed.",
                         hint="Check the path. To drop the documents of a file or folder you deleted from the "
                              "index, run the same command with --prune.")


def _require_collection(store: Any, collection: str | None) -> None:
    from pgpt.runtime.documents.retrieval import require_collection

    require_collection(store, collection, f"`pgpt-tui ingest PATH --collection {collection}`")


