"""Which files an ingest reads under the paths it is given, and why the others are left out:
symlinks only when they stay inside the folder, no hidden files or folders, no special, binary,
oversized or unreadable files, no file names that are not UTF-8. The local ingest and an upload
to a server (`pgpt-tui --server URL ingest`) pick files by these same rules. And which indexed
documents are gone from the disk (not those that cannot be looked at)."""

from __future__ import annotations

import errno
import os
import shlex
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pgpt.runtime.documents.readers import KNOWN_SUFFIXES, is_text_file

if TYPE_CHECKING:
    from pgpt.runtime.documents.records import DocumentRecord

MAX_FILE_BYTES = 100_000_000
# Office formats with no reader here, named with the way in ("binary file" said nothing of a spreadsheet)
_SAVE_AS = "to index it, save it as PDF, .docx, HTML or text"
OFFICE_FORMATS = {suffix: f"unsupported format ({suffix}): {_SAVE_AS}{extra}" for suffixes, extra in (
    ((".xlsx", ".xls", ".ods"), " (CSV for a sheet)"), ((".pptx", ".ppt", ".odp"), ""),
    ((".doc", ".odt"), ""), ((".pages", ".numbers", ".key"), "")) for suffix in suffixes}
NO_SUCH_PATH = "no such file or folder"
OWN_FOLDER = "pgpt's own folder (PGPT_HOME or the model cache), not documents"
ANOTHER_HOME = ("a pgpt home (a copy, or another user's: saved chats, logs and an index), not documents; "
                "a server's uploads in it are in its uploads/ folder")
# Folders of installed packages inside a project: a code folder's node_modules gave 400 of its 875
# documents, vendored READMEs answering for the project's own (t61). Left out, and said so; named as a
# PATH of its own, such a folder is read. (Hidden folders, .git and .venv among them, are left out too.)
PACKAGE_FOLDERS = {"node_modules": "installed npm packages", "bower_components": "installed Bower packages",
                   "__pycache__": "Python bytecode", "site-packages": "installed Python packages"}
OFFICE_FORMATS[".epub"] = f"unsupported format (.epub): {_SAVE_AS}"


def missing_paths(paths: list[Path]) -> list[str]:
    """The paths that do not exist (a dangling link exists: ingest says where it leads). Checked
    before anything loads: a typo read as "1 skipped" and a line of zeros."""
    return [str(p) for p in paths if not (p.expanduser().exists() or p.expanduser().is_symlink())]


def nothing_found(paths: list[Path]) -> str:
    """What to say when the paths held no file (the summary's zeros alone said nothing)."""
    from pgpt.runtime.sanitize import one_line

    return f"No files found under {', '.join(one_line(str(p)) for p in paths)} (hidden files and folders are left out)."


def collect_files(paths: list[Path], own: tuple[Path, ...] = ()) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to read under ``paths``, and the ones left out with why (symlinks out of a folder,
    hidden, binary or unreadable files, and pgpt's ``own`` folders: PGPT_HOME and the model cache):
    what ingest reads, and what a client uploads to a server."""
    mine = {folder.expanduser().resolve() for folder in own}
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for root in paths:
        root = root.expanduser()
        try:
            if not root.exists() and not root.is_symlink():
                skipped.append((str(root), NO_SUCH_PATH))
            elif _pgpt_owns(root.resolve(), mine):  # `ingest $PGPT_HOME` indexed its index's files
                skipped.append((str(root), OWN_FOLDER))
            elif root.is_dir() and is_pgpt_home(root):
                skipped.append((str(root), ANOTHER_HOME))
            elif root.is_dir():
                for path, reason in _walk(root.resolve(), mine):
                    (skipped.append((str(path), reason)) if reason else files.append(path))
            else:
                reason = _name_problem(root) or _file_problem(root.resolve())
                (skipped.append((str(root), reason)) if reason else files.append(root.resolve()))
        except (OSError, RuntimeError) as exc:  # a symlink loop or an unreadable folder given as PATH
            skipped.append((str(root), fs_reason(exc)))
    return sorted(set(files)), skipped


def _pgpt_owns(path: Path, mine: set[Path]) -> bool:
    """Whether ``path`` is one of pgpt's own folders or inside one, but for the uploads a pgpt-serve
    keeps in its home (``uploads/``): those are documents, indexed by their paths."""
    return any(path.is_relative_to(folder) and not path.is_relative_to(folder / "uploads") for folder in mine)


def _walk(root: Path, mine: set[Path]) -> Iterator[tuple[Path, str]]:
    """Every file under ``root`` with '' or why it is left out; symlinks followed only when they
    stay inside ``root``; a folder that cannot be listed is reported, not skipped silently; pgpt's
    own folders (``mine``) are left out whole, and said so."""
    unreadable: list[OSError] = []
    for folder, dirs, names in os.walk(root, followlinks=False, onerror=unreadable.append):
        for name in [d for d in dirs if (Path(folder) / d) in mine]:
            # a home inside the folder: its saved chats, logs and index were read as documents
            dirs.remove(name)
            yield Path(folder) / name, OWN_FOLDER
        for name in sorted(dirs):
            link = Path(folder) / name
            if link.is_symlink():
                # a link to a folder inside the root: that folder is walked on its own, and said so
                yield link, _link_problem(link, root) or _inside_link(link, root)
        dirs[:] = [d for d in dirs if not d.startswith(".") and not (Path(folder) / d).is_symlink()]
        for name in sorted(d for d in dirs if is_pgpt_home(Path(folder) / d)):
            dirs.remove(name)
            yield Path(folder) / name, ANOTHER_HOME
        for name in sorted(d for d in dirs if _packages(Path(folder) / d)):
            dirs.remove(name)
            yield Path(folder) / name, f"{_packages(Path(folder) / name)}, not your documents (name it to index it)"
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            try:
                if path.is_symlink():  # an inside target is ingested under its own path, and said so
                    yield path, _link_problem(path, root) or _inside_link(path, root)
                    continue
                yield path, _name_problem(path) or _file_problem(path)
            except (OSError, RuntimeError) as exc:
                yield path, fs_reason(exc)
    for error in unreadable:
        yield Path(error.filename or root), f"a folder that cannot be listed ({error.strerror})"


def is_pgpt_home(folder: Path) -> bool:
    """Whether ``folder`` has a PGPT_HOME's layout (an index and saved chats or pgpt's settings): a
    backup of a home inside an indexed folder gave its chats, logs and Lance files as sources (t70)."""
    try:
        return (any((folder / "index").glob("*.lance"))
                and ((folder / "conversations").is_dir() or (folder / "config.json").is_file()))
    except OSError:
        return False


def _packages(folder: Path) -> str:
    """What kind of installed packages ``folder`` holds, or '' (a virtual environment without a dot
    is known by its pyvenv.cfg)."""
    if folder.name in PACKAGE_FOLDERS:
        return PACKAGE_FOLDERS[folder.name]
    try:
        return "a Python virtual environment" if (folder / "pyvenv.cfg").is_file() else ""
    except OSError:  # a folder that cannot be entered: the walk names it, and goes on (it stopped the whole add, t66)
        return ""


def _inside_link(link: Path, root: Path) -> str:
    """The report's line for a link that stays inside ``root``: its target is read once, by its own path."""
    return f"a link to {link.resolve().relative_to(root)} (read there, once)"


def _link_problem(link: Path, root: Path) -> str:
    """Why a symlink under ``root`` is left out: it loops or leads outside; '' when it stays inside."""
    try:
        target = link.resolve(strict=True)
    except FileNotFoundError:
        return "a broken symlink"
    except (OSError, RuntimeError) as exc:
        return fs_reason(exc)
    return "" if target.is_relative_to(root) else "a symlink leading outside the folder"


def split_unreadable(left_out: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """:func:`collect_files`' left-out files as (skipped, failed): a file or folder this user may
    not read is a failure to fix (exit 1, with the command that shows why), not a file without text."""
    def unreadable(reason: str) -> bool:
        return reason.startswith(("unreadable", "a folder that cannot be listed"))

    return ([(name, why) for name, why in left_out if not unreadable(why)],
            [(name, f"{why}; check its owner and mode: ls -ld {shlex.quote(name)}")
             for name, why in left_out if unreadable(why)])


def fs_reason(error: BaseException) -> str:
    """A short reason for a file system error met on one path."""
    if (isinstance(error, RuntimeError) and "loop" in str(error).lower()) or getattr(error, "errno", 0) == errno.ELOOP:
        return "a symlink loop"
    if isinstance(error, OSError):
        return f"unreadable ({error.strerror or type(error).__name__})"
    return f"unreadable ({type(error).__name__})"


def _name_problem(path: Path) -> str:
    """Why the path itself cannot be indexed: a name that is not UTF-8 cannot be stored or shown."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8 (rename the file to index it)"
    return ""


def _file_problem(path: Path) -> str:
    """Why ``path`` cannot be ingested, or ''."""
    try:
        info = path.lstat()
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return "a special file (device, pipe or socket)"
    if info.st_size > MAX_FILE_BYTES:
        return (f"too large ({info.st_size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB): to index "
                "it, split it (split -C 50M FILE PART-) or index the part you need (tail -n 100000 FILE > PART)")
    if not os.access(path, os.R_OK):
        return "unreadable (permission denied)"
    if not info.st_size:  # an empty .log was a "binary file"
        return "no text in the file (it is empty)"
    if path.suffix.lower() in OFFICE_FORMATS and _office_container(path):
        return OFFICE_FORMATS[path.suffix.lower()]
    if path.suffix.lower() not in KNOWN_SUFFIXES and not is_text_file(path):
        return OFFICE_FORMATS.get(path.suffix.lower(), "binary file")
    return ""


# The first bytes of a zip (.xlsx, .pptx, .odt, .epub) and of an OLE file (.xls, .doc, .ppt)
_CONTAINERS = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")


def _office_container(path: Path) -> bool:
    """Whether an office-named file starts as a zip or OLE file does: one cut short after its first
    bytes read as text ("PK\x03\x04garbage" named budget.xlsx was indexed as "PKgarbage", t77), while
    a text file named .doc is still read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in _CONTAINERS
    except OSError:  # gone or locked since it was looked at: the reader says so
        return False


def gone_documents(records: Iterable[DocumentRecord], paths: list[Path] | None = None) -> list[DocumentRecord]:
    """The documents whose files no longer exist, of those indexed under ``paths`` (None: all of them),
    each path as typed or with its links followed (`--prune docs`, docs a link to the folder's new
    place, left the gone files indexed under docs/ alone, t70)."""
    roots = None if paths is None else list({*(resolved(p) for p in paths),
                                             *(Path(os.path.abspath(p.expanduser())) for p in paths)})
    return [record for record in records
            if (roots is None or any(Path(record.path) == root or Path(record.path).is_relative_to(root)
                                     for root in roots))
            and is_gone(record.path)]


def emptied_roots(records: Iterable[DocumentRecord], paths: list[Path],
                  found: Iterable[str]) -> list[tuple[str, list[DocumentRecord]]]:
    """The folders among ``paths`` that are missing or hold nothing now (``found``: every file found
    under the paths, left-out ones too) although documents are indexed under them, with those documents.
    `ingest /mnt/share --prune` on a night the share was not mounted forgot the whole share (t71),
    as Unison refuses to sync a replica root found empty. A named path that was itself an indexed
    file is no folder: a file deleted on purpose."""
    found = [Path(os.path.abspath(path)) for path in found]
    records = list(records)
    emptied = []
    for path in paths:
        if os.path.isfile(path.expanduser()) or str(Path(os.path.abspath(path.expanduser()))) in {
                r.path for r in records}:
            continue
        roots = {resolved(path), Path(os.path.abspath(path.expanduser()))}
        under = [r for r in records if any(Path(r.path).is_relative_to(root) for root in roots)]
        if under and not any(f.is_relative_to(root) for f in found for root in roots) \
                and all(is_gone(r.path) for r in under):
            emptied.append((os.path.abspath(path.expanduser()), under))
    return emptied


def resolved(path: Path) -> Path:
    """``path`` with its links followed, or as given (absolute) where they loop: `ingest loopA` ended
    in "RuntimeError: Symlink loop ... This is a bug in pgpt" after collect_files had skipped it (t47)."""
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError):
        return path.expanduser().absolute()


def is_gone(path: str) -> bool:
    """Whether ``path`` no longer exists; one that cannot be looked at (a folder made unreadable after
    it was indexed) is not gone: Path.exists raised PermissionError, which stopped the whole ingest
    and emptied the app's Docs list (t47)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except (OSError, ValueError):  # ValueError: a UTF-8 name an ISO-8859-1 locale cannot spell (t54)
        return False
    return False


def readable_file(path: str) -> bool:
    """``Path.is_file`` that says False for a file that cannot be looked at, instead of raising."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):  # ValueError: a name the file-system encoding cannot spell
        return False
