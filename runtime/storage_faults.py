"""Which low-level errors mean that a data folder cannot be used, and the StorageError each stands
for: a full disk, a read-only folder or mount, missing permissions. OSError is told by its errno;
SQLite and Lance errors, which carry none, by their text."""

from __future__ import annotations

import errno
from pathlib import Path

from pgpt.runtime.errors import DiskFullError, FolderPermissionError, ReadOnlyError, StorageError
from pgpt.runtime.settings import ensure_private_dir


# errno values, and the texts SQLite and Lance (Rust: "(os error 28)") give for the same faults.
_FULL = ((errno.ENOSPC, errno.EDQUOT), ("database or disk is full", "no space left on device", "(os error 28)",
                                        "(os error 122)", "disk quota exceeded"))
_READ_ONLY = ((errno.EROFS,), ("attempt to write a readonly database", "read-only file system", "(os error 30)"))
_DENIED = ((errno.EACCES, errno.EPERM), ("permission denied", "(os error 13)", "(os error 1)",
                                         "unable to open database file"))


def storage_fault(error: BaseException, folder: Path | str, action: str = "") -> StorageError | None:
    """The StorageError that ``error`` stands for (disk full, read-only, no permission), or None.

    OSError is classified by its errno; SQLite and Lance errors, which carry no errno, by their
    text. ``folder`` and ``action`` ("Writing the document index") go into the message.

    Args:
        error: Any exception raised while reading or writing a data folder.
        folder: The folder (or file) it was working on; named in the message.
        action: What pgpt was doing, as the start of a sentence; empty for a generic one.
    """
    if isinstance(error, StorageError):
        return error
    text = str(error).lower()
    code = error.errno if isinstance(error, OSError) else None
    for (codes, texts), kind, cause in ((_FULL, DiskFullError, "the disk is full"),
                                         (_READ_ONLY, ReadOnlyError, "the folder is read-only"),
                                         (_DENIED, FolderPermissionError, "permission denied")):
        if code in codes or (code is None and any(t in text for t in texts)):
            if kind is ReadOnlyError and code is None:
                cause = "the folder or its files are read-only (by their mode or a read-only mount)"
            return kind(_fault_text(action, folder, cause), folder=folder)
    if code == errno.EFBIG or (code is None and any(t in text for t in ("file too large", "(os error 27)"))):
        # `ulimit -f` (Python ignores SIGXFSZ: the write fails instead), or a FAT32 disk's 4 GB: it read as
        # "Index damaged ... add your documents again", while the index was whole (t66)
        return StorageError(_fault_text(action, folder, "a file reached the largest size allowed here (the shell's "
                                        "`ulimit -f` or the file system's limit)"), folder=folder,
                            hint="Raise the limit (`ulimit -f unlimited`) or use a folder on another file system; "
                                 "what was written before is unchanged.")
    if code is None and "disk i/o error" in text:  # SQLite's word for a failed write, most often a full disk
        return StorageError(_fault_text(action, folder, "a disk I/O error (a full disk or a failing one)"),
                            folder=folder)
    return None


def _fault_text(action: str, folder: Path | str, cause: str) -> str:
    if action:
        return f"{action}{f' in {folder}' if folder else ''} failed: {cause}."
    return f"{folder}: {cause}." if folder else f"A data folder cannot be used: {cause}."


def require_writable(folder: Path, what: str) -> None:
    """Refuse at once when ``folder`` (created if missing) cannot be written, before a download
    or an export spends minutes only to fail on its last step. ``what`` names it for the user,
    e.g. "the model cache (PGPT_MODEL_CACHE)".

    Raises:
        StorageError: the folder cannot be created or written (read-only, no permission, full).
    """
    import tempfile

    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:  # "[Errno 17] File exists" with a hint on disk space (t51)
        raise StorageError(f"{what[:1].upper()}{what[1:]}, {folder}, cannot be made: {blocking} is a file, "
                           "not a folder.",
                           folder=folder, hint="Choose a path whose folders are folders, or move that file away.")
    try:
        ensure_private_dir(folder)  # 0700, as pgpt's other folders: pgpt-serve made a new PGPT_HOME 0755 (t49)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pgpt-write-test-"):
            pass
    except OSError as exc:
        fault = storage_fault(exc, folder, f"Writing to {what}")
        if fault is None:
            raise
        raise fault from None
