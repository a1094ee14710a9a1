"""`pgpt-tui forget PATH`: a file's or a folder's documents out of the index (or the server's)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from pgpt.runtime.sanitize import dumps_json, one_line, shown_name, strip_controls


def run_forget(settings: Any, args: argparse.Namespace) -> int:
    """`pgpt-tui forget PATH [--collection NAME] [--json] [--missing-ok]`."""
    from pgpt.runtime.errors import NotIndexedError

    try:
        return _forget(settings, args)
    except NotIndexedError as missing:
        if not args.missing_ok:
            raise
        # a clean-up run a second time, or after --prune: it had to match the English message (t71)
        print(dumps_json({"forgotten": [], "chunks": 0}) if args.json
              else strip_controls(f"nothing to forget: {missing}"))
        return 0


def _forget(settings: Any, args: argparse.Namespace) -> int:
    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.runtime.documents.index_folder import refuse_if_writing
    from pgpt.runtime.documents.ingest import forget_path
    from pgpt.runtime.errors import UsageError

    if settings.server:
        from pgpt.tui.cli.remote_documents import forget_on_server

        return forget_on_server(settings, args)
    from pgpt.runtime.documents.discovery import resolved

    # the documents under the path as typed first (what `docs` lists): through a link left at a moved
    # folder's old place, `forget docs` forgot the new place's copies and kept docs/'s (t70)
    typed, wanted = os.path.abspath(args.path.expanduser()), str(resolved(args.path))
    refuse_if_writing(settings)
    embedder = default_embedder(settings)
    forgotten = None
    if typed != wanted:
        try:
            forgotten, wanted = forget_path(settings, embedder, typed, args.collection), typed
        except UsageError:  # nothing under it as typed: the place it leads to is meant
            pass
    if forgotten is None:
        forgotten = forget_path(settings, embedder, wanted, args.collection)
    chunks = sum(d.chunks for d in forgotten)
    if args.json:
        print(dumps_json({"forgotten": [{"path": d.path, "collection": d.collection, "chunks": d.chunks}
                                        for d in forgotten], "chunks": chunks}, indent=2))
        return 0
    if not forgotten:  # files left out when they were added, never indexed: `docs` no longer lists them
        print(strip_controls(f"{one_line(wanted)} was never indexed (left out when added); `docs` no longer lists it"))
        return 0
    files = {d.path for d in forgotten}
    single = len(files) == 1 and (files == {wanted} or not os.path.isdir(wanted))  # one file, maybe by its shown name
    what = (shown_name(next(iter(files))) if single  # one line: a name with a newline was printed raw
            else f"{len(files)} file{'' if len(files) == 1 else 's'} under {one_line(wanted)}")
    collections = sorted({d.collection for d in forgotten})
    print(strip_controls(f"forgot {what} ({chunks} chunk{'' if chunks == 1 else 's'}; "
                         f"collection{'' if len(collections) == 1 else 's'} {', '.join(collections)})"))
    return 0
