"""Opening a file to index it: without following a link or blocking on a pipe, hashed and read from
that one open file (a file swapped for a link to a private file after the listing was read was
read through the link and indexed, t52)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Any


def open_regular(path: Path) -> Any:
    """``path`` opened for reading without following a link or blocking on a pipe (the file may have
    been swapped for one since the folder was listed); OSError unless it is a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise OSError(errno.EINVAL, "not a regular file any more")
    return handle


def hash_open(handle: Any) -> str:
    """sha256 of an open file, from its start."""
    handle.seek(0)
    digest = hashlib.sha256()
    while block := handle.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()


def open_file_path(handle: Any) -> str:
    """A path to the open file itself (Linux's /proc/PID/fd/N opens the same file whatever its name
    now points to), or '' where there is none: the reader then opens the name."""
    path = f"/proc/{os.getpid()}/fd/{handle.fileno()}"
    return path if os.path.exists(path) else ""
