"""Publishing an export into the model cache as a version of its name, and saying what that changed.

Why the lines: a second GGUF whose name derives to the same model name (``X-Q4_K_M.gguf``,
``X-Q8_0.gguf``) replaced the active model with only "wrote ... (version ...)", and versions beyond
``--keep-versions`` were deleted without a word, so that ``--rollback`` was gone unannounced.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgpt.runtime.manifest import MANIFEST, folder_problem, read_manifest
from pgpt.runtime.versions import (
    Version,
    linked_version,
    publish_version,
    source_label,
    version_of,
    versions_folder,
)


def publish(cache: Path, name: str, out: Path, keep: int, report: Callable[[str, str], None]) -> Version:
    """``publish_version``, reporting a name taken over from another source and each version removed."""
    before = _kept(cache, name)
    previous = linked_version(cache, name)
    old_source = _source_of(versions_folder(cache, name) / previous) if previous else None
    if not previous and (cache / name / MANIFEST).is_file():  # a plain folder from before versions
        previous = version_of(read_manifest(cache / name))
        old_source, before = _source_of(cache / name), {previous}
    kept = versions_folder(cache, name) / version_of(read_manifest(out))
    if kept.is_dir() and (damage := folder_problem(kept)):  # the same version, changed since: replaced
        report("replace", f"version {kept.name} of {name} is damaged ({damage}); the new export replaces it")
    version = publish_version(cache, name, out, keep)
    removed = sorted(before - _kept(cache, name) - {version.version})
    new_source = version.manifest.get("source") or {}
    if old_source is not None and old_source != _identity(new_source) and previous != version.version:
        back = "" if previous in removed else f", pgpt-tui models --rollback {name} goes back"
        report("done", f"{name} already had version {previous} (from {old_source[0]}); version {version.version} "
                       f"(from {source_label(new_source)}) is now active: --name keeps both{back}")
    for gone in removed:
        report("done", f"removed version {gone} (kept the newest {max(keep, 1)}: --keep-versions)")
    return version


def _kept(cache: Path, name: str) -> set[str]:
    folder = versions_folder(cache, name)
    return {c.name for c in folder.iterdir() if c.is_dir() and not c.name.startswith(".")} if folder.is_dir() else set()


def _identity(record: dict[str, Any]) -> tuple[str, str]:
    """What makes two sources the same: the label, and the file's hash or the commit where known."""
    return source_label(record), str(record.get("sha256") or record.get("commit") or record.get("path") or "")


def _source_of(folder: Path) -> tuple[str, str] | None:
    try:
        return _identity(read_manifest(folder).get("source") or {})
    except Exception:  # an unreadable old version: nothing to compare, the export goes on
        return None
