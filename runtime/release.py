"""Which pgpt this is, for `--version` and bug reports: the package's version and, in a git clone
(the README's install), the commit checked out, read from .git without running git."""

from __future__ import annotations

from pathlib import Path

PACKAGE = "pgpt-terminal"


def release() -> str:
    """"0.1.0 (commit 1a2b3c4d5e6f)", or the version alone outside a clone; "unknown" when not installed."""
    from importlib import metadata

    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "unknown"
    commit = _commit(Path(__file__).resolve().parents[1] / ".git")  # an editable install: its clone's root
    return f"{version} (commit {commit[:12]})" if commit else version


def _commit(git: Path) -> str:
    """The commit HEAD names (its branch's ref, loose or packed), "" when there is none to read."""
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head  # a detached HEAD is the commit itself
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except (OSError, ValueError):
        pass
    return ""
