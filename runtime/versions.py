"""Model versions on disk: every export of a name is an immutable version; one is active.

Layout in the model cache::

    <cache>/<name>                          symlink -> .versions/<name>/<version> (the active one)
    <cache>/.versions/<name>/<version>/     one export, never changed after it was published
    <cache>/.versions/<name>/history.json   the versions activated, in order (rollback pops it)

Why a symlink: replacing it is one atomic rename, so every reader (the app, `ask`, a server's
pool) sees either the old or the new version, never a mix; and everything that reads
``<cache>/<name>`` as a model folder keeps working. A version is the first 12 hex digits of the
manifest hash (the files and their sha256), so re-exporting the same weights gives the same
version. Folders exported before versions existed (plain folders) count as one version and
become versioned the first time their name is exported again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import ModelNotFoundError, VersionNotFoundError
from pgpt.runtime.manifest import MANIFEST, folder_problem, manifest_hash, read_manifest, verify_folder
from pgpt.runtime.settings import Settings

VERSIONS = ".versions"
HISTORY = "history.json"
VERSION_DIGITS = 12
DEFAULT_KEEP = 3


def version_of(manifest: dict[str, Any]) -> str:
    """The version id of an export: the first 12 hex digits of its manifest hash."""
    return manifest_hash(manifest)[:VERSION_DIGITS]


def parse_ref(ref: str) -> tuple[str, str]:
    """``name@version`` -> (name, version); ``name`` -> (name, '').

    Raises:
        UsageError: an ``@`` without a version after it ("name@" was taken as the active version).
    """
    name, at, version = ref.partition("@")
    if at and not version.strip():
        from pgpt.runtime.errors import UsageError

        raise UsageError(f"{ref[:80]!r} has no version after the '@'.",
                         hint="Write NAME@VERSION (a unique start of one, see `pgpt-tui models --versions NAME`), "
                              "or NAME alone for its active version.")
    return name, version


def source_label(record: dict[str, Any]) -> str:
    """A manifest's ``source`` in a few words: a file's or folder's name, or a repo id."""
    if record.get("repo_id"):
        return str(record["repo_id"])
    return Path(str(record.get("path", ""))).name or "?"


@dataclass(frozen=True)
class Version:
    """One version of a model on disk."""

    name: str
    version: str
    path: Path
    manifest: dict[str, Any]
    active: bool

    @property
    def created(self) -> str:
        """When the export was written (the manifest's UTC time stamp)."""
        return str(self.manifest.get("created", ""))

    @property
    def size_bytes(self) -> int:
        """Total size of the version's files."""
        return sum(int(f["size"]) for f in self.manifest["files"])

    def summary(self) -> dict[str, Any]:
        """JSON-friendly: for `pgpt-tui models --versions NAME --json`."""
        return {"name": self.name, "version": self.version, "active": self.active, "created": self.created,
                "dtype": self.manifest.get("dtype", "?"), "size_mb": round(self.size_bytes / 1e6, 1),
                "size_bytes": self.size_bytes,  # shown from this: size_mb rounded twice (4.53 MB: 5, then 4)
                "prefill": "int8" if self.manifest.get("prefill") else "",  # the int8 prompt graph beside it
                "source": source_label(self.manifest.get("source") or {}), "path": str(self.path)}


def versions_folder(cache: Path, name: str) -> Path:
    """Where the versions of ``name`` are kept."""
    return cache / VERSIONS / name


def linked_version(cache: Path, name: str) -> str:
    """The version ``<cache>/<name>`` points at, or '' when it is not a version link."""
    entry = cache / name
    if not entry.is_symlink():
        return ""
    target = Path(os.readlink(entry))
    if target.parent != Path(VERSIONS) / name:
        return ""  # a link the user made to a folder elsewhere: not ours
    return target.name


def list_versions(settings: Settings, name: str) -> list[Version]:
    """The versions of ``name`` on disk, newest export first; a plain folder is one version.

    Raises:
        ModelNotFoundError: no model called ``name``.
    """
    cache = settings.model_cache
    active = linked_version(cache, name)
    found = []
    folder = versions_folder(cache, name)
    if active and folder.is_dir():
        for child in folder.iterdir():
            if child.is_dir() and not child.name.startswith(".") and (child / MANIFEST).is_file():
                found.append(Version(name, child.name, child, read_manifest(child), child.name == active))
    elif (cache / name / MANIFEST).is_file():
        manifest = read_manifest(cache / name)
        found.append(Version(name, version_of(manifest), cache / name, manifest, True))
    if not found:  # with the names there are: "Run pgpt-export --default" was beside the point
        names = sorted(c.name for c in cache.iterdir() if (c / MANIFEST).is_file()) if cache.is_dir() else []
        raise ModelNotFoundError(f"There is no exported model called {name!r} (exported: "
                                 f"{', '.join(names) or 'none'}).",
                                 hint="Check the name (`pgpt-tui models` lists them).")
    return sorted(found, key=lambda v: (v.created, v.path.stat().st_mtime), reverse=True)


def find_version(settings: Settings, name: str, version: str) -> Version:
    """The version of ``name`` whose id starts with ``version`` ('' = the active one).

    Raises:
        ModelNotFoundError: no model called ``name``.
        VersionNotFoundError: no version (or more than one) starts with ``version``.
    """
    versions = list_versions(settings, name)
    if not version:
        return next(v for v in versions if v.active)
    matches = [v for v in versions if v.version.startswith(version.lower())]
    if len(matches) != 1:
        kept = ", ".join(v.version for v in versions)
        what = "no version" if not matches else "more than one version"
        raise VersionNotFoundError(f"{name} has {what} starting with {version!r} (kept: {kept}).")
    return matches[0]


def can_publish(cache: Path, name: str) -> bool:
    """Whether a new version of ``name`` may be published: nothing is there yet, or a version link,
    or a plain pgpt export (never a folder or link of the user's)."""
    entry = cache / name
    if not entry.exists() and not entry.is_symlink():
        return True
    if entry.is_symlink():
        return bool(linked_version(cache, name))
    return (entry / MANIFEST).is_file()


def publish_version(cache: Path, name: str, folder: Path, keep: int = DEFAULT_KEEP) -> Version:
    """Move a finished export ``folder`` in as a version of ``name``, make it active, and keep
    the newest ``keep`` versions (never removing the active one).

    ``folder`` must be on the cache's file system (it is renamed, not copied). When the same
    version is already kept, ``folder`` is deleted and that version becomes active again, unless
    the kept one is damaged: then ``folder`` replaces it.
    """
    _adopt_plain_folder(cache, name)
    manifest = read_manifest(folder)
    target = _store(cache, name, folder, version_of(manifest))
    prune_versions(cache, name, keep)
    return Version(name, target.name, target, manifest, True)


def use_version(settings: Settings, name: str, version: str) -> Version:
    """Make ``version`` (a unique prefix) the active version of ``name``, after checking its
    files: a damaged version is refused before anyone (a running server) switches to it.

    Raises:
        ModelIntegrityError: the version's files do not match its manifest.
    """
    chosen = find_version(settings, name, version)
    verify_folder(chosen.path, chosen.manifest)
    if not linked_version(settings.model_cache, name):
        _adopt_plain_folder(settings.model_cache, name)
    _activate(settings.model_cache, name, chosen.version)
    return Version(name, chosen.version, versions_folder(settings.model_cache, name) / chosen.version,
                   chosen.manifest, True)


def rollback(settings: Settings, name: str) -> Version:
    """Activate the version that was active before the current one (undo the last switch).

    Raises:
        VersionNotFoundError: no earlier version is still on disk.
    """
    cache = settings.model_cache
    current = find_version(settings, name, "")
    history = _read_history(cache, name)
    kept = {v.version for v in list_versions(settings, name)}
    while history and history[-1] == current.version:
        history.pop()
    while history and history[-1] not in kept:
        history.pop()
    if not history:
        raise VersionNotFoundError(f"{name} has no earlier version to roll back to (active: {current.version}).",
                                   hint="`pgpt-tui models --versions NAME` lists the versions kept on disk.")
    previous = history[-1]
    restored = find_version(settings, name, previous)
    verify_folder(restored.path, restored.manifest)  # never switch back to a damaged version
    # The history is the stack below the restored version: another rollback goes further back.
    _link(cache, name, previous)
    _write_history(cache, name, history)
    return find_version(settings, name, previous)


def delete_version(settings: Settings, name: str, version: str) -> dict[str, Any]:
    """Delete one kept version of ``name`` (a unique prefix; a damaged one too), never the active
    one; what was deleted, as ``Version.summary`` gives it.

    Raises:
        UsageError: ``version`` is the active version.
    """
    from pgpt.runtime.errors import UsageError

    chosen = find_version(settings, name, version)
    if chosen.active:
        raise UsageError(f"{name}@{chosen.version} is the active version of {name}.",
                         hint=f"Switch first (`pgpt-tui models --use {name}@VERSION` or `--rollback {name}`), or "
                              f"delete every version with `pgpt-tui models --delete {name}`.")
    refuse_if_served(settings, name, chosen.version)
    deleted = chosen.summary()  # its size, while its files are there
    doomed = chosen.path.with_name(f".{chosen.version}.deleting-{os.getpid()}")
    os.replace(chosen.path, doomed)  # a hidden name is never listed, so a half-deleted one never looks usable
    shutil.rmtree(doomed, ignore_errors=True)
    cache = settings.model_cache
    _write_history(cache, name, [v for v in _read_history(cache, name) if v != chosen.version])
    return deleted


def refuse_if_served(settings: Settings, name: str, version: str = "") -> None:
    """UsageError when a running pgpt-serve has ``name`` loaded (that version, or any): its files went,
    the server went on answering with it and said 404 for it."""
    from pgpt.runtime.errors import UsageError

    what = f"{name}@{version}" if version else name
    serving = sorted({f"pid {pool['pid']}" + (f", PGPT_HOME={pool['home']}" if pool.get("home") else "")
                      for pool in _running_pools(settings) for ref in pool.get("loaded", [])
                      if ref == what or (not version and ref.startswith(f"{name}@"))})
    if serving:
        raise UsageError(f"{what} is loaded by a running pgpt-serve ({'; '.join(serving)}), which answers "
                         "requests with it.",
                         hint="Delete it once the server has unloaded it (after its keep-alive, or restart the "
                              "server); GET /v1/models lists what it holds.")


def _running_pools(settings: Settings) -> list[dict[str, Any]]:
    # any home's server over this model cache: the files are the cache's (t70)
    from pgpt.runtime.llm.serving.status_file import pools_over_cache

    return pools_over_cache(settings)


def prune_versions(cache: Path, name: str, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` versions of ``name``, the active one counted first: an export
    that made an older version active again (the same file exported again) kept two with
    `--keep-versions 1`, its first export's time being older than the other's (t62)."""
    active = linked_version(cache, name)
    root = versions_folder(cache, name)
    versions = []
    for child in root.iterdir() if root.is_dir() else []:
        if child.is_dir() and not child.name.startswith("."):
            try:
                created = str(read_manifest(child).get("created", ""))
            except Exception:  # an unreadable version is the first to go
                created = ""
            versions.append((created, child.stat().st_mtime, child))
    versions.sort(key=lambda entry: (entry[2].name == active, entry[0], entry[1]), reverse=True)
    removed = []
    for _, _, child in versions[max(keep, 1):]:
        if child.name != active:
            doomed = child.with_name(f".{child.name}.deleting-{os.getpid()}")
            os.replace(child, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
            removed.append(child.name)
    return removed


def _adopt_plain_folder(cache: Path, name: str) -> None:
    """Turn a plain (pre-versions) model folder ``<cache>/<name>`` into its first version."""
    entry = cache / name
    if not entry.is_symlink() and (entry / MANIFEST).is_file():
        _store(cache, name, entry, version_of(read_manifest(entry)))


def _store(cache: Path, name: str, folder: Path, version: str) -> Path:
    """Move ``folder`` in as ``version`` of ``name`` (dropping it when that version is kept
    already) and make it active; returns the version's folder."""
    target = versions_folder(cache, name) / version
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not folder_problem(target):
        shutil.rmtree(folder)
    else:  # new, or kept but damaged: the export replaces it (the damaged files stayed, t51)
        aside = target.with_name(f".{version}.damaged-{os.getpid()}")
        if target.is_dir():
            os.replace(target, aside)  # a server that has it loaded keeps its open files
        os.replace(folder, target)
        shutil.rmtree(aside, ignore_errors=True)
    _activate(cache, name, version)
    return target


def _activate(cache: Path, name: str, version: str) -> None:
    """Point the name at ``version`` and push it on the history."""
    _link(cache, name, version)
    history = _read_history(cache, name)
    if not history or history[-1] != version:
        history.append(version)
    _write_history(cache, name, history[-100:])


def _link(cache: Path, name: str, version: str) -> None:
    """Replace ``<cache>/<name>`` by a relative link to the version, atomically."""
    temporary = cache / f".{name}.link-{os.getpid()}"
    temporary.unlink(missing_ok=True)
    os.symlink(Path(VERSIONS) / name / version, temporary, target_is_directory=True)
    os.replace(temporary, cache / name)


def _read_history(cache: Path, name: str) -> list[str]:
    try:
        data = json.loads((versions_folder(cache, name) / HISTORY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(v) for v in data] if isinstance(data, list) else []


def _write_history(cache: Path, name: str, history: list[str]) -> None:
    path = versions_folder(cache, name) / HISTORY
    temporary = path.with_name(f".{HISTORY}.{os.getpid()}")
    temporary.write_text(json.dumps(history), encoding="utf-8")
    os.replace(temporary, path)
