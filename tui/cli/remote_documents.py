"""`ingest`, `docs` and `forget` against a running pgpt-serve (``--server`` / ``PGPT_SERVER``): the
files go to the server's index over its PrivateGPT API, picked by the same rules as a local ingest
(no symlinks out of a folder, no hidden or binary files), instead of a local index nobody asks.
After an upload the server's documents sent from the same folders are compared with the files
there: renamed, gone (still answering) or, with --prune, forgotten, as a local ingest does."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgpt.runtime.sanitize import dumps_json, one_line, strip_controls
from pgpt.tui.cli.text_bar import TextBar

_STATUSES = ("added", "updated", "renamed", "unchanged")


def ingest_on_server(settings: Any, args: argparse.Namespace) -> int:
    """Upload the files under ``args.paths`` to the server, one at a time, with progress, then settle
    the server's documents from those folders whose files are gone here (see :func:`settle_gone`);
    exit 1 when one was refused (each named with the server's reason), else 0."""
    from pgpt.runtime.documents.discovery import collect_files, split_unreadable
    from pgpt.runtime.errors import IngestLockedError, PgptError, ServerBusyError, ServerError, UsageError, user_message
    from pgpt.runtime.remote.client import connect

    if args.reindex:
        raise UsageError("--reindex works on a local index; the server rebuilds its own.",
                         hint="Run `pgpt-tui ingest --reindex PATH` on the server's machine, with its PGPT_HOME, "
                              "or upload without it.")
    files, skipped = collect_files(list(args.paths), own=(settings.home, settings.model_cache))
    skipped, failed = split_unreadable(skipped)
    names = upload_names(list(args.paths), files)  # names with folders: one tree's README.md files stay apart
    from pgpt.runtime.documents.progress import WorkShares, eta
    from pgpt.runtime.remote.progress import server_step

    # each status's files, by their absolute local paths as a local ingest's --json lists them (it gave counts, t50)
    done_as: dict[str, list[str]] = {status: [] for status in _STATUSES}
    started, clock = time.monotonic(), time.perf_counter()
    added: dict[str, str] = {}  # name -> content hash of each document this run added: a rename's new name
    chunks = 0  # of the documents the server added or updated: a local ingest's "chunks" (t63)
    remote, bar, shares = connect(settings), TextBar(sys.stderr), WorkShares(files)
    try:
        for done, path in enumerate(files):
            # the ETA from the bytes sent, as a local ingest's ("ETA ?" on every line before)
            left = eta(clock, shares(done), shares.skipped)
            bar.draw(done, len(files), f"{done}/{len(files)} files sent", left, names[path])
            try:
                def shown(progress: dict[str, Any], at: int = done, name: str = names[path], left: Any = left) -> None:
                    part = progress.get("chunks_done", 0) / progress["chunks"] if progress.get("chunks") else 0.0
                    step = server_step(progress)
                    bar.draw(at + part, len(files), f"{at}/{len(files)} files sent", left,
                             name + (f" ({step})" if step else ""))

                metadata = remote.upload(path, args.collection, names[path], shown)["doc_metadata"]
                status = metadata.get("status", "unchanged")
                done_as[status if status in done_as else "unchanged"].append(os.path.abspath(path))
                if status == "unchanged":
                    shares.passed_over(done)
                elif status == "added":
                    added[names[path]] = str(metadata.get("content_hash") or "")
                if status in ("added", "updated") and isinstance(metadata.get("chunks"), int):
                    chunks += metadata["chunks"]
            except (ServerError, IngestLockedError, ServerBusyError) as exc:
                # the server, not this file: stop here, saying where (a 409 "another ingestion" listed every
                # file failed, exit 1; now exit 75, to retry, t71; still busy after the retries, t80)
                if isinstance(exc, (IngestLockedError, ServerBusyError)) or exc.status in (0, 401, 403, 502, 503):
                    exc.hint = (f"{sum(map(len, done_as.values()))} of {len(files)} files were indexed on the server "
                                "before that. Run the same command again once the server answers: the files done "
                                "are unchanged and skipped.")
                    raise
                failed.append((str(path), user_message(exc).text))
                shares.passed_over(done)  # refused at once: its bytes took no time
            except (OSError, PgptError) as exc:
                failed.append((str(path), user_message(exc).text))
                shares.passed_over(done)
        if files:  # the last line says all were sent (refused ones too): it stopped at "2/3 files sent" (t71)
            bar.draw(len(files), len(files), f"{len(files)}/{len(files)} files sent", 0.0)
        changes = settle_gone(remote, list(args.paths), set(names.values()), added, args.collection, args.prune)
    except KeyboardInterrupt:  # Ctrl-C: what the server has, not the generic "nothing half-written"
        from pgpt.runtime.errors import Cancelled

        done = sum(map(len, done_as.values()))
        error = Cancelled(f"Stopped after {done} of {len(files)} files were indexed on the server; it may still "
                          "index the one it was receiving.",
                          hint=f"`pgpt-tui --server {settings.server} docs` lists what it has; the same command "
                               "again sends the rest (sent files come back unchanged).")
        # the keys of a local ingest's stop (`ingest --json` has one shape with or without --server, t71);
        # the file being sent, if the server took it whole, is indexed there: not known here
        error.details = {"stopped": True, "reindex": False, "files_done": done, "files_total": len(files),
                         "files_done_kept": True, "unfinished_file": None, "unfinished_chunks_embedded": 0,
                         "unfinished_chunks": 0}
        raise error from None
    finally:
        bar.close()
        remote.close()
    # sent again under its new name, and the old one forgotten: renamed, not added
    new_names = {new for _, new in changes.renamed}
    moved = {os.path.abspath(path) for path in files if names[path] in new_names}
    done_as["renamed"] += [path for path in done_as["added"] if path in moved]
    done_as["added"] = [path for path in done_as["added"] if path not in moved]
    done_as["removed"] = [str(d["path"]) for d in changes.removed]
    _print_ingest(settings, args, done_as, skipped, failed, changes, (chunks, round(time.monotonic() - started, 2)))
    from pgpt.tui.cli.documents import all_skipped

    indexed = any(done_as.values()) or changes.removed or changes.renamed  # nothing at all: exit 1 (t71)
    return 1 if failed or changes.not_pruned or not indexed or all_skipped(list(args.paths), skipped) else 0


def _print_ingest(settings: Any, args: argparse.Namespace, done_as: dict[str, list[str]],
                  skipped: list[tuple[str, str]], failed: list[tuple[str, str]], changes: GoneDocuments,
                  work: tuple[int, float]) -> None:
    """The report of a server ingest: as JSON (a local ingest's keys, with the files of each status
    listed, and the server's own), or a line per file left out, renamed, removed or gone, then the
    summary in a local ingest's words. ``work``: the chunks the server wrote, and the seconds."""
    counts = {status: len(paths) for status, paths in done_as.items()}
    chunks, seconds = work
    if args.json:  # "rechunked": the server re-reads its own documents after an upgrade, and does not say
        speed = round(chunks / seconds, 1) if seconds else 0.0
        print(dumps_json({**done_as, "gone": changes.gone, "rechunked": [],
                          "renamed_documents": [{"from": old, "to": new} for old, new in changes.renamed],
                          "skipped": [{"path": p, "reason": r} for p, r in skipped],
                          "failed": [{"path": p, "reason": r} for p, r in failed],
                          # "embedded": the server does not say which chunks it embedded again
                          "chunks": chunks, "embedded": None, "seconds": seconds, "chunks_per_s": speed,
                          "removed_documents": changes.removed, "not_compared": changes.not_compared,
                          **({"not_pruned": [{"path": root, "documents": n} for root, n in changes.not_pruned]}
                             if changes.not_pruned else {}),
                          "server": settings.server}, indent=2))
        return
    from pgpt.runtime.documents.summary import gone_note, not_pruned_note
    from pgpt.tui.cli.ingest_report import left_out_lines

    lines = left_out_lines(skipped, failed)
    lines += [f"renamed: {old} -> {new}" for old, new in changes.renamed]
    lines += [f"removed: {d['path']} ({d['doc_id']})" for d in changes.removed]
    lines += [f"gone: {name}: no such file here; the server still answers from it" for name in changes.gone]
    lines += [f"not compared: {path}: its files have no folder in their names on the server, as files sent by "
              "themselves from anywhere have, so --prune cannot tell its documents from theirs"
              for path in changes.not_compared if args.prune]
    for line in lines:
        print(" ".join(strip_controls(line).split()))
    print(", ".join(f"{n} {name}" for name, n in counts.items()) + f"; {len(skipped)} skipped, {len(failed)} "
          f"failed, on the server at {settings.server} (collection {args.collection}), in {seconds:.1f} s"
          + (gone_note(len(changes.gone)) if changes.gone else "")
          + "".join(not_pruned_note(root, count) for root, count in changes.not_pruned))


@dataclass
class GoneDocuments:
    """The server's documents sent from the folders of an ingest whose files are gone here."""

    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old name, new name): the old one forgotten
    removed: list[dict[str, str]] = field(default_factory=list)  # forgotten with --prune: path, doc_id
    gone: list[str] = field(default_factory=list)  # kept (no --prune): they still answer
    not_compared: list[str] = field(default_factory=list)  # paths whose documents cannot be told apart
    not_pruned: list[tuple[str, int]] = field(default_factory=list)  # (folder found empty or missing, documents kept)


def settle_gone(remote: Any, paths: list[Path], sent: set[str], added: dict[str, str], collection: str,
                prune: bool, cwd: Path | None = None) -> GoneDocuments:
    """Compare the server's documents in ``collection`` sent from the folders in ``paths`` with the
    files there, as a local ingest compares its index: a document whose file is gone and whose
    content a document of this run (``added``: name -> content hash) has is a rename, and the old
    name is forgotten; another is gone, and forgotten with ``prune``. Through a server the renamed
    file was sent again, since the server's names are its documents (its old copy kept answering,
    with the old text after an edit, and nothing said so). Only documents under those folders'
    names are looked at, never others of the server."""
    folders, not_compared = folder_names(paths, cwd)
    changes, claimed = GoneDocuments(not_compared=not_compared), set()
    # a folder found empty or missing keeps its documents, as a local --prune does: an unmounted share (t71)
    emptied = {prefix: folder for prefix, folder in folders.items() if _empty(folder)}
    kept: dict[str, int] = {}
    for document in _gone_documents(remote.documents(), folders, sent, collection):
        meta = document["doc_metadata"]
        name, digest = str(meta.get("path")), str(meta.get("content_hash") or "")  # no hash: an older server
        new = next((n for n, h in added.items() if digest and h == digest and n not in claimed), None)
        empty = next((str(folder) for prefix, folder in emptied.items() if name.startswith(prefix + "/")), None)
        if new is not None:
            remote.forget(document["doc_id"])
            claimed.add(new)
            changes.renamed.append((name, new))
        elif prune and empty is not None:
            kept[empty] = kept.get(empty, 0) + 1
        elif prune:
            remote.forget(document["doc_id"])
            changes.removed.append({"path": name, "doc_id": document["doc_id"]})
        else:
            changes.gone.append(name)
    changes.not_pruned = sorted(kept.items())
    return changes


def _empty(folder: Path) -> bool:
    """Whether ``folder`` is missing or holds nothing but hidden entries (an unmounted share's mount point)."""
    try:
        with os.scandir(folder) as entries:
            return not any(not entry.name.startswith(".") for entry in entries)
    except FileNotFoundError:
        return True
    except OSError:  # there, but not to be looked at: never taken for empty
        return False


def _gone_documents(documents: list[dict[str, Any]], folders: dict[str, Path], sent: set[str],
                    collection: str) -> list[dict[str, Any]]:
    """The documents of ``collection`` named under a folder of ``folders`` (name on the server ->
    local folder) whose local file is gone, and which were not sent now."""
    gone = {}
    for document in documents:
        meta = document["doc_metadata"]
        name = str(meta.get("path") or "")
        if meta.get("collection") != collection or not name or name in sent:
            continue
        for prefix, folder in folders.items():
            # a folder's documents, or a vanished file given by itself (a name with a folder only:
            # a bare name is also that of any file sent by itself)
            inside = name.startswith(prefix + "/") or (name == prefix and "/" in prefix)
            if inside and not _exists(folder / name[len(prefix) + 1:]):
                gone[document["doc_id"]] = document
    return list(gone.values())


def _exists(path: Path) -> bool:
    """Whether ``path`` is there; a path that cannot be looked at counts as there: it is never
    reported gone, nor forgotten."""
    try:
        return path.exists()
    except OSError:
        return True


def folder_names(paths: list[Path], cwd: Path | None = None) -> tuple[dict[str, Path], list[str]]:
    """The name each folder in ``paths`` has on the server, before its files' paths inside it
    (``docs3`` for ``docs3/museum.txt``: the names upload_names gives), with the local folder; a
    path that is gone is taken as a folder, or a file of that name (--prune: its documents go).
    Second, the paths left out: a folder whose files' names have no folder part (the current
    folder, a hidden one), as files sent by themselves from anywhere have."""
    here = (cwd or Path.cwd()).resolve()
    roots = [p.expanduser().resolve() for p in paths if p.expanduser().is_dir()]
    folders, not_compared = {}, []
    for path in paths:
        local = path.expanduser()
        if local.is_dir() or not (local.exists() or local.is_symlink()):
            folder = local.resolve()
            probe = _sent_name(folder / "x", roots + [folder], here)  # a file directly inside it
            if "/" in probe:
                folders[probe.rpartition("/")[0]] = folder
            else:
                not_compared.append(str(path))
    return folders, not_compared


def _sent_as(document: dict[str, Any], wanted: str) -> bool:
    """Whether ``document`` is one ``wanted`` names: its id, its name on the server (the path it was
    sent under) or a folder of that name, or the local file or folder it was sent from (the names
    upload_names gives them). A bare file name is not matched here: see _by_file_name."""
    meta = document["doc_metadata"]
    path = str(meta.get("path") or "")
    folder = wanted.rstrip("/")
    if wanted == document["doc_id"] or (path and (path == wanted or (folder and path.startswith(folder + "/")))):
        return True
    local = Path(wanted).expanduser()
    if local.is_dir():  # sent from inside it: the name starts with the folder's last parts, and the file is there
        resolved, parts = local.resolve(), path.split("/")
        return any(resolved.parts[-k:] == tuple(parts[:k]) and (resolved / "/".join(parts[k:])).is_file()
                   for k in range(1, min(len(parts), len(resolved.parts))))
    # a file sent by itself (its name) or inside a folder (the end of its path)
    return local.is_file() and bool(path) and local.resolve().as_posix().endswith(f"/{path}")


def _by_file_name(documents: list[dict[str, Any]], wanted: str, server: str) -> list[dict[str, Any]]:
    """The documents whose file name is ``wanted``, when they all have one name on the server (the
    same file in several collections); one name in several folders is refused, since forgetting
    every LICENSE of a tree for `forget LICENSE` loses documents the user did not mean.

    Raises:
        UsageError: the file name is that of documents in several folders (exit 2, nothing forgotten).
    """
    from pgpt.runtime.errors import UsageError

    named = [d for d in documents if "/" not in wanted and d["doc_metadata"].get("file_name") == wanted]
    paths = sorted({str(d["doc_metadata"].get("path") or wanted) for d in named})
    if len(paths) > 1:
        raise UsageError(f"{len(paths)} documents on the server at {server} are named {wanted!r}, in different "
                         f"folders: {', '.join(one_line(p) for p in paths)}. Nothing was forgotten.",
                         hint=f"Give the folder too (`pgpt-tui --server {server} forget {one_line(paths[0])}`), or the "
                              f"document's id from `pgpt-tui --server {server} docs`.")
    return named


def upload_names(paths: list[Path], files: list[Path], cwd: Path | None = None) -> dict[Path, str]:
    """The name each file is kept under on the server: its path from the current folder
    (``docs/guide/README.md``, the same whether the folder or the file was given), else the
    given folder's name and the path inside it, else its file name; the first of these with no
    hidden part, which the server refuses. Sent by name alone, the README.md files of one tree
    replaced each other on the server."""
    here = (cwd or Path.cwd()).resolve()
    roots = [p.expanduser().resolve() for p in paths if p.expanduser().is_dir()]
    return {file: _sent_name(file, roots, here) for file in files}


def _sent_name(file: Path, roots: list[Path], here: Path) -> str:
    """The name of ``file`` on the server, from the first folder of ``roots`` it is in (upload_names)."""
    root = next((r for r in roots if file.is_relative_to(r)), None)
    candidates = [file.relative_to(here).as_posix()] if file.is_relative_to(here) else []
    if root is not None:
        candidates += [f"{root.name}/{file.relative_to(root).as_posix()}", file.relative_to(root).as_posix()]
    return next((c for c in candidates if not any(p.startswith(".") for p in c.split("/"))), file.name)


def docs_on_server(settings: Any, args: argparse.Namespace) -> int:
    """The server's indexed documents, as `docs` lists local ones."""
    from pgpt.runtime.remote.client import connect

    remote = connect(settings)
    try:
        listed = [d["doc_metadata"] | {"doc_id": d["doc_id"]} for d in remote.documents()]
    finally:
        remote.close()
    if getattr(args, "path", None) is not None:  # the names the server shows, which start as sent
        prefix = str(args.path)
        listed = [d for d in listed if str(d.get("path", d.get("file_name", ""))).startswith(prefix)]
    if args.collection:
        collections = sorted({str(d.get("collection", "")) for d in listed})
        listed = [d for d in listed if d.get("collection") == args.collection]
        if not listed:  # as `docs` says without a server: "yet" and exit 0 hid the typo
            from pgpt.runtime.errors import UsageError

            raise UsageError(f"No documents are indexed in the collection {args.collection!r} on the server at "
                             f"{settings.server}.",
                             hint=f"Collections there: {', '.join(collections) or 'none yet'}. Leave out the "
                                  f"collection to list them all, or add documents to it with `pgpt-tui --server {settings.server} "
                                  f"ingest PATH --collection {args.collection}`.")
    if args.json:
        # a local `docs --json`'s keys (t71): the server's files are its uploads, never gone; it keeps no
        # list of files left out (an upload it refuses is refused at once, named to the sender)
        print(dumps_json({"documents": [{"path": d.get("path", d.get("file_name", "")), "doc_id": d["doc_id"],
                                         "collection": d.get("collection", ""), "chunks": d.get("chunks", 0),
                                         "ingested_at": d.get("ingested_at", 0), "gone": False} for d in listed],
                          "left_out": []}, indent=2))
        return 0
    if not listed:
        print(f"No documents indexed on the server at {settings.server} yet. Add some with "
              f"`pgpt-tui --server {settings.server} ingest PATH`.")
    for d in listed:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.get("ingested_at", 0)))
        chunks = d.get("chunks", 0)
        print(f"{chunks:>6} chunk{' ' if chunks == 1 else 's'}  {when}  [{one_line(str(d.get('collection', '')))}] "
              f"{one_line(str(d.get('path') or d.get('file_name', '')))}  ({one_line(str(d['doc_id']))})")
    if listed:  # the totals line a local `docs` ends with (t71)
        total = sum(int(d.get("chunks") or 0) for d in listed)
        print(f"{len(listed)} document{'' if len(listed) == 1 else 's'}, {total} chunk{'' if total == 1 else 's'}, "
              f"on the server at {settings.server}")
    return 0


def forget_on_server(settings: Any, args: argparse.Namespace) -> int:
    """Forget the server's documents (in ``args.collection``, or every collection) whose id or name
    is ``args.path``, that are under the folder of that name, or that were sent from that local
    file or folder; a file name alone when it names one document only. Each is named as forgotten."""
    from pgpt.runtime.errors import NotIndexedError
    from pgpt.runtime.remote.client import connect

    wanted = str(args.path)
    remote = connect(settings)
    try:
        documents = [d for d in remote.documents()
                     if not args.collection or d["doc_metadata"].get("collection") == args.collection]
        matches = [d for d in documents if _sent_as(d, wanted)] or _by_file_name(documents, wanted, settings.server)
        if not matches:
            where = f" in the collection {args.collection!r}" if args.collection else ""
            raise NotIndexedError(f"The server at {settings.server} has no document {wanted!r}{where}.",
                                  hint=f"`pgpt-tui --server {settings.server} docs` lists its documents with their names and ids.")
        for document in matches:
            remote.forget(document["doc_id"])
    finally:
        remote.close()
    chunks = sum(d["doc_metadata"].get("chunks", 0) for d in matches)
    if getattr(args, "json", False):  # a local forget's keys, and each document's id
        metas = [(d["doc_metadata"], d["doc_id"]) for d in matches]
        print(dumps_json({"forgotten": [{"path": str(meta.get("path") or meta.get("file_name", "")),
                                         "collection": meta.get("collection", ""), "chunks": meta.get("chunks", 0),
                                         "doc_id": doc_id} for meta, doc_id in metas], "chunks": chunks}, indent=2))
        return 0
    print(strip_controls(f"forgot {wanted} on the server at {settings.server} ({len(matches)} document"
                         f"{'' if len(matches) == 1 else 's'}, {chunks} chunk{'' if chunks == 1 else 's'}):"))
    for d in matches:  # which ones: a name or folder can stand for several
        meta = d["doc_metadata"]
        name = one_line(str(meta.get("path") or meta.get("file_name", "")))
        print(f"  [{one_line(str(meta.get('collection', '')))}] {name}  ({d['doc_id']})")
    return 0
