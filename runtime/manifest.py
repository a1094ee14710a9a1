"""The manifest of an exported model folder: what it holds, where it came from, how good it is."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import ModelIntegrityError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_STAMP = ".verified.json"
_CHUNK = 8 * 1024 * 1024


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def describe_files(folder: Path) -> list[dict[str, Any]]:
    """List every regular file of ``folder`` (except the manifest) with size and sha256."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in (MANIFEST, _STAMP):
            entries.append(
                {
                    "path": path.relative_to(folder).as_posix(),
                    "size": path.stat().st_size,
                    "sha256": sha256_file(path),
                }
            )
    return entries


def write_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Add the file list to ``manifest`` and write it into ``folder`` (fsynced)."""
    manifest = {"format_version": FORMAT_VERSION, **manifest, "files": describe_files(folder)}
    target = folder / MANIFEST
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read a model folder's manifest, raising ModelIntegrityError when it is missing or bad."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelIntegrityError(f"{folder} has no {MANIFEST}, so it is not a pgpt model.", folder=folder) from None
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"The manifest of {folder} cannot be read ({exc}).", folder=folder) from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise ModelIntegrityError(f"The manifest of {folder} has no file list.", folder=folder)
    for entry in data["files"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("size"), int)
                and isinstance(entry.get("sha256"), str)):
            raise ModelIntegrityError(f"The manifest of {folder} lists a file without path, size and sha256.",
                                      folder=folder)
    return data


def folder_problem(folder: Path) -> str:
    """Why the model folder cannot be used (its manifest or a file is damaged), or '' when it is whole.

    Hashes every file whose stat stamp changed since it was last verified (see verify_folder).
    """
    from pgpt.runtime.errors import ModelNotFoundError

    try:
        verify_folder(folder, read_manifest(folder))
    except (ModelIntegrityError, ModelNotFoundError) as exc:  # the second: deleted meanwhile
        return str(exc)
    return ""


def size_problem(folder: Path, manifest: dict[str, Any]) -> str:
    """Why ``folder``'s files do not match its manifest by presence and size, or '': a check without
    hashing, for `models` and `doctor`, which look at every model (a file edited after export read
    "damaged models: none" while every chat failed on it, t63; a load still checks each sha256)."""
    for entry in manifest["files"]:
        try:
            size = (folder / entry["path"]).stat().st_size
        except OSError:
            return f"{entry['path']} is missing from {folder}."
        if size != entry["size"]:
            return f"{entry['path']} in {folder} has {size} bytes, the manifest says {entry['size']}."
    return ""


def manifest_hash(manifest: dict[str, Any]) -> str:
    """A short stable id of a model's exact contents (used in cache keys)."""
    files = sorted((f["path"], f["sha256"]) for f in manifest["files"])
    return hashlib.sha256(json.dumps(files).encode()).hexdigest()[:32]


def verify_folder(folder: Path, manifest: dict[str, Any]) -> None:
    """Check every file against the manifest: a real file inside the folder, right size and sha256.

    A stat stamp (size, mtime, ctime, inode) of each verified file is kept beside the
    manifest so a second load skips the hashing; any change of a file changes its ctime.

    Raises:
        ModelIntegrityError: naming the first file that does not match.
    """
    root = folder.resolve()
    stamps = _read_stamps(folder)
    fresh: dict[str, list[int]] = {}
    for entry in manifest["files"]:
        rel = entry["path"]
        path = folder / rel
        if path.is_symlink() or not path.resolve().is_relative_to(root):
            raise ModelIntegrityError(f"{rel} in {folder} is a link or leaves the model folder.", folder=folder)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise gone_or_damaged(folder, f"{rel} is missing from {folder}.") from None
        if info.st_nlink > 1:
            raise ModelIntegrityError(f"{rel} in {folder} is a hard link to another file.", folder=folder)
        stamp = [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]
        if info.st_size != entry["size"]:
            raise ModelIntegrityError(
                f"{rel} in {folder} has {info.st_size} bytes, the manifest says {entry['size']}.", folder=folder
            )
        if stamps.get(rel) != stamp and sha256_file(path) != entry["sha256"]:
            raise ModelIntegrityError(f"{rel} in {folder} does not match the sha256 in its manifest.", folder=folder)
        fresh[rel] = stamp
    if fresh != stamps:  # unchanged files: no write, so a load leaves the model cache as it was
        _write_stamps(folder, fresh)


def _read_stamps(folder: Path) -> dict[str, list[int]]:
    try:
        data = json.loads((folder / _STAMP).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_stamps(folder: Path, stamps: dict[str, list[int]]) -> None:
    # Best effort: a read-only model cache just means hashing on every load.
    tmp = folder / f"{_STAMP}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(stamps))
        os.replace(tmp, folder / _STAMP)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)  # a full disk leaves an empty one otherwise
        except OSError:
            pass  # a read-only folder never had it


def gone_or_damaged(folder: Path, damage: str) -> Exception:
    """The error for a file of ``folder`` that could not be read: the whole folder gone (deleted while
    the model loaded, `pgpt-tui models --delete` in another shell) is no damage, and exporting it again
    is not the next step; else ModelIntegrityError saying ``damage``."""
    from pgpt.runtime.errors import ModelNotFoundError

    if not folder.exists():
        return ModelNotFoundError(f"The model in {folder} was deleted while it was loading.",
                                  hint="Run `pgpt-tui models` to list the exported models, and choose one of them "
                                       "(--model NAME or `pgpt-tui models --use NAME`).")
    return ModelIntegrityError(damage, folder=folder)
