"""A server home moved or restored to another path: its uploads are found where they are now.

The index names each document by its absolute path, an upload's too (``HOME/uploads/COLLECTION/NAME``).
After ``mv /srv/pgpt /data/pgpt``, or a backup restored to another path, every upload was listed with
the old home's path as "file gone", although its file sat in the new home's ``uploads/``; tidying up
gone files (``--prune``, ``forget``) would have dropped every upload (t70). A copy of a home kept
reading and deleting the first home's files. At its first use of the index, the server re-points
such a document to this home's upload of the same name and content (no embedding: a rename).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pgpt.runtime.settings import Settings

log = logging.getLogger(__name__)


def relocate_uploads(settings: Settings, store: Any) -> list[tuple[str, str]]:
    """Re-point the documents that are uploads of another pgpt home to the same upload in this one
    (same collection, name and content); the (old, new) paths. Skipped, to be tried at the next
    start, while another process writes the index."""
    from pgpt.runtime.documents.index_folder import writer_lock
    from pgpt.runtime.errors import IngestLockedError

    ours = settings.home / "uploads"
    moves = [(record, new) for record in store.documents() if (new := _here(record, ours)) is not None]
    if not moves:
        return []
    try:
        with writer_lock(settings):
            for record, new in moves:
                store.move_document(record.doc_id, str(new))
    except IngestLockedError as exc:
        log.warning("uploads of a moved home not re-pointed now (%s); the next start tries again", exc)
        return []
    return [(record.path, str(new)) for record, new in moves]


def _here(record: Any, ours: Path) -> Path | None:
    """This home's copy of ``record``'s upload, when its path is another home's upload of the same
    content; None otherwise (this home's own, or a file a user added from a folder named "uploads")."""
    if record.path.startswith(f"{ours}/"):
        return None
    marker = f"/uploads/{record.collection}/"
    start = record.path.find(marker)
    while start > 0:
        old_home, name = Path(record.path[:start]), record.path[start + len(marker):]
        candidate = ours / record.collection / name
        # the old home is gone (moved) or is a pgpt home (a copy): a user's own folder called uploads is neither
        home_like = not old_home.exists() or (old_home / "index").is_dir()
        if (home_like and candidate.is_file() and not candidate.is_symlink()
                and _content_hash(candidate) == record.content_hash):
            return candidate
        start = record.path.find(marker, start + 1)
    return None


def _content_hash(path: Path) -> str:
    """The file's content hash as ingest records it."""
    from pgpt.runtime.documents.opened_files import hash_open

    with open(path, "rb") as handle:
        return hash_open(handle)
