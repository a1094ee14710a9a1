"""The files an add left out that may hold text (a scanned or encrypted PDF, a file too large, one
that could not be read), remembered per collection so that a "not found" and `docs` can name them.

The ingest report names them once, when they are added; a question asked days later about a scanned
PDF's contents ended in "not found" with nothing to say that the PDF had never been read (t61).
Files that hold no document (binary, empty, special files, links, installed packages, pgpt's own
folders) are not remembered: naming them under every "not found" would be noise.

``PGPT_HOME/index/left_out.json``: ``{"version": 1, "collections": {NAME: {PATH: REASON}}}``. Only a
writer (holding the index's writer lock) changes it, by replacing it whole; readers never lock.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from pgpt.runtime.settings import write_private

log = logging.getLogger(__name__)
FILE = "left_out.json"
# What a reason starts with when the file may hold text a question asks about (discovery.py and readers.py
# write these); a failed read (time or memory limit, a reader's crash) always may.
MAY_HOLD_TEXT = ("too large", "unreadable", "unsupported format", "the file name is not valid UTF-8",
                 "scanned PDF", "encrypted PDF", "damaged", "a folder that cannot be listed")


def may_hold_text(reason: str) -> bool:
    """Whether a file left out for ``reason`` may hold text that answers a question."""
    return reason.startswith(MAY_HOLD_TEXT)


def remembered(folder: Path, collection: str | None = None) -> list[tuple[str, str, str]]:
    """The files left out when they were added, as (path, reason, collection), sorted by path, of
    ``collection`` (None: every collection), from the index ``folder``. A missing or damaged file reads
    as none."""
    return sorted((path, reason, name) for name, files in _read(folder).items()
                  if collection is None or name == collection for path, reason in files.items())


def remember(folder: Path, collection: str, roots: Iterable[Path], left_out: Iterable[tuple[str, str]],
             indexed: Iterable[str]) -> None:
    """After an add of ``roots`` into ``collection``: what it left out replaces what was remembered
    under those roots (a file fixed since, or deleted, is no longer named), and a file now
    ``indexed`` is dropped wherever it was. Called by the writer, under the writer lock."""
    everything = _read(folder)
    files = everything.get(collection, {})
    under = [str(root) for root in roots]
    done = set(indexed)
    files = {path: reason for path, reason in files.items() if path not in done and not _inside(path, under)}
    files.update((path, reason) for path, reason in left_out if may_hold_text(reason))
    everything[collection] = files
    _write(folder, everything)


def forget_under(folder: Path, path: str, collection: str | None = None) -> int:
    """Drop the remembered files at or under ``path`` (of ``collection``; None: every one), as
    `forget` drops its documents; how many were dropped."""
    everything = _read(folder)
    dropped = 0
    for name, files in everything.items():
        if collection is None or name == collection:
            kept = {file: reason for file, reason in files.items() if not _inside(file, [path])}
            dropped += len(files) - len(kept)
            everything[name] = kept
    if dropped:
        _write(folder, everything)
    return dropped


def _inside(path: str, roots: list[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or under one of them."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _read(folder: Path) -> dict[str, dict[str, str]]:
    """The remembered files by collection; {} when there are none or the file is damaged (a note, not data)."""
    try:
        data = json.loads((folder / FILE).read_text(encoding="utf-8"))
        collections = data["collections"]
        return {str(name): {str(path): str(reason) for path, reason in files.items()}
                for name, files in collections.items() if isinstance(files, dict)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _write(folder: Path, everything: dict[str, dict[str, str]]) -> None:
    """Replace the file whole, so that a reader sees the old or the new one, never half of it."""
    kept = {name: files for name, files in everything.items() if files}
    target = folder / FILE
    if not kept and not target.exists():
        return
    temporary = folder / f".{FILE}.{os.getpid()}"
    try:
        # ASCII: a name that is not UTF-8, read in a C-locale session, holds surrogates UTF-8 cannot write
        write_private(temporary, json.dumps({"version": 1, "collections": kept}, indent=1))
        os.replace(temporary, target)
    except (OSError, ValueError) as exc:  # a note about the index: losing it must not fail the add that succeeded
        log.warning("could not write %s: %s", target, getattr(exc, "strerror", None) or exc)
        temporary.unlink(missing_ok=True)


def note(files: list[dict[str, str]], named: int = 2) -> str:
    """The line under a "not found" that names the files left out (an answer's ``left_out``), the
    first ``named`` of them with the short form of their reason; '' when there are none."""
    if not files:
        return ""
    from pgpt.runtime.sanitize import shown_name

    # "too large (120 MB; the limit is 100 MB): to index it, split it ..." -> its part before the advice
    shown = "; ".join(f"{shown_name(f['path'])} ({f['reason'].split(': ', 1)[0]})" for f in files[:named])
    more = f" and {len(files) - named} more" if len(files) > named else ""
    count = f"{len(files)} file{'' if len(files) == 1 else 's'}"
    return (f"Not searched: {count} left out when added, so no answer comes from {'it' if len(files) == 1 else 'them'}:"
            f" {shown}{more}. `pgpt-tui docs` lists them with the way to add them.")
