"""Verified, resumable downloads of the files an export needs, pinned to one commit.

huggingface_hub does the transfer (it resumes from its ``.incomplete`` blobs after a kill and
retries a dropped connection with a Range request); this module adds what users missed: a
preflight, a writable and free-space check first, progress in bytes with speed and ETA, and a
sha256 (LFS) or git-blob check of every file against the Hub's etag. Only then is the download
marked ready, in ``PGPT_HOME/downloads``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import (
    Cancelled,
    FolderPermissionError,
    DiskSpaceError,
    HubAccessError,
    ModelIntegrityError,
    SourceError,
    UnsafeWeightsError,
)
from pgpt.runtime.hub.access import (AccessReport, check_access, hub_endpoint, hub_offline, require_repo_id,
                                     retry_after_seconds, shown_endpoint)
from pgpt.runtime.hub.token import TokenChoice
from pgpt.runtime.settings import Settings, ensure_private_dir


@dataclass(frozen=True)
class DownloadProgress:
    """One progress tick: the current file and the whole download."""

    file: str
    done_bytes: int
    total_bytes: int
    bytes_per_s: float
    eta_s: float | None
    file_done_bytes: int = 0
    file_total_bytes: int = 0


ProgressCallback = Callable[[DownloadProgress], None]
RETRIES = 3
MAX_RETRY_WAIT_S = 60.0
ETA_AFTER_S = 2.0  # an ETA is shown once this long and this many bytes went by
ETA_AFTER_BYTES = 1_000_000

log = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 20


def hub_cache_dir(environ: dict[str, str] | None = None) -> Path:
    """huggingface_hub's cache folder: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ~/.cache/huggingface/hub."""
    env = os.environ if environ is None else environ
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    hf_home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(hf_home).expanduser() / "hub"


def ready_marker(settings: Settings, repo: str, commit: str) -> Path:
    """Where a verified download is recorded."""
    return settings.home / "downloads" / f"{repo.replace('/', '--')}@{commit}.json"


def find_ready(settings: Settings, repo: str) -> Path | None:
    """The snapshot folder of the newest verified download of ``repo`` (for offline use), or None.

    Raises:
        HubAccessError: the download was verified, but a file of it is now missing or cut short (a
            cleaned cache, a full disk: "ready" was said, then the export failed on a raw errno).
    """
    markers = sorted((settings.home / "downloads").glob(f"{repo.replace('/', '--')}@*.json"),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for marker in markers:
        try:
            record = json.loads(marker.read_text(encoding="utf-8"))
            folder, files = Path(record["folder"]), list(record.get("files", []))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # cut short by a crash or a full disk
            log.warning("skipping the damaged download record %s: %s", marker, exc)
            continue
        if folder.is_dir():
            _require_whole(repo, folder, files)
            return folder
    return None


def _require_whole(repo: str, folder: Path, files: list[dict[str, Any]]) -> None:
    """Every file the download verified is still in ``folder`` at its size (offline, nothing else can check)."""
    for entry in files:
        path = folder / str(entry.get("path", ""))
        size = path.stat().st_size if path.is_file() else -1
        if size != (entry.get("size") or max(size, 0)):  # a size the Hub did not give: only there
            state = "missing" if size < 0 else f"cut short ({size:,} of {entry['size']:,} bytes)"
            raise HubAccessError(f"{repo} was downloaded and verified, but {entry['path']} in {folder} is now "
                                 f"{state}.", hint="Run the download again with the network (unset HF_HUB_OFFLINE).")


def download(settings: Settings, repo: str, token: TokenChoice, revision: str | None = None,
             progress: ProgressCallback | None = None, cancel: threading.Event | None = None,
             architecture_check: Callable[[str], str] | None = None) -> Path:
    """Preflight, check the disk, fetch, verify and mark ready; returns the snapshot folder.

    Raises:
        HubAccessError: the preflight status is not ``ok`` (its message says why and what next).
        FolderPermissionError / DiskSpaceError: the cache folder is not writable or too small.
        ModelIntegrityError: a file's bytes do not match the Hub's etag (the file is removed).
        Cancelled: ``cancel`` was set (finished files and the partial one stay; the next run resumes).
    """
    require_repo_id(repo)
    if hub_offline():
        folder = find_ready(settings, repo)
        if folder is None:
            raise HubAccessError(f"HF_HUB_OFFLINE is set and pgpt has no verified download of {repo} here "
                                 "(offline, it uses only downloads it verified itself).",
                                 hint="Unset HF_HUB_OFFLINE (or run the download on a connected machine); files "
                                      "that other tools put in the Hub cache can be exported as a folder.")
        return folder
    report = check_access(repo, token, revision, architecture_check)
    if report.status != "ok":
        raise HubAccessError(report.message, status=report.status)
    require_safetensors(report)
    cache = hub_cache_dir()
    if not _in_cache(cache, report):  # a complete snapshot is only read (a shared read-only cache works)
        check_writable(cache)
        check_free_space(cache, _missing_bytes(cache, report))
    snapshot = None
    meter = _Meter(report.total_bytes, progress)
    try:
        for entry in report.files:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"The download of {repo} was cancelled; run it again to resume.", hint="")
            path = _fetch(report, entry, token, cache, meter, cancel)
            verify_file(path, entry)
            snapshot = path.parent
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM in a command: what stays is worth saying
        raise Cancelled(f"The download of {repo} was stopped; the files fetched and the partial one are kept: "
                        "the same command resumes it.", hint="") from None
    assert snapshot is not None
    marker = ready_marker(settings, repo, report.commit)
    ensure_private_dir(marker.parent)
    partial = marker.with_suffix(f".tmp-{os.getpid()}")  # whole or absent: a cut record read as a bug
    partial.write_text(json.dumps({"repo": repo, "commit": report.commit, "folder": str(snapshot),
                                   "files": report.files}, indent=1), encoding="utf-8")
    os.replace(partial, marker)
    return snapshot


def require_safetensors(report: AccessReport) -> None:
    """Refuse, before any transfer, a repo without safetensors weights (pickles are never fetched)."""
    if any(f["path"].endswith(".safetensors") for f in report.files):
        return
    if report.pickle_files:
        raise UnsafeWeightsError(f"{report.repo} ships only pickle weights ({', '.join(report.pickle_files[:3])}), "
                                 "which can run code when loaded; nothing was downloaded.")
    raise SourceError(f"{report.repo} has no .safetensors weights in its top folder; nothing was downloaded.",
                      hint="Use a model that ships safetensors (GGUF repos: download the .gguf file and "
                      "give its path to pgpt-export).")


def check_writable(folder: Path) -> None:
    """Fail early, with the folder named, when the cache cannot be written (the Docker volume case)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pgpt-write-test-"):
            pass
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.EEXIST, errno.ENOTDIR):
            raise
        why = ("is on a read-only file system" if exc.errno == errno.EROFS else
               "is a file, or lies under one, not a folder" if exc.errno in (errno.EEXIST, errno.ENOTDIR) else
               f"is not writable by this user (uid {os.getuid()})")  # a file: "[Errno 17] File exists" (t48)
        # Named here, not by the generic storage classifier: the next step is the Hub's variables.
        raise FolderPermissionError(
            f"The Hugging Face cache folder {folder} {why}.", folder=folder,
            hint="Fix its owner or mount (for a Docker volume: chown it to the container's user, mount it "
                 "read-write) or point HF_HOME or HF_HUB_CACHE at a writable folder.") from None


def check_free_space(folder: Path, needed: int) -> None:
    """Refuse before the first byte when the download cannot fit."""
    free = shutil.disk_usage(folder).free
    if needed > free:
        # the Hub's cache, not the model cache: the hint named PGPT_MODEL_CACHE and a -o download lacks (t48)
        raise DiskSpaceError(f"The download needs {_size(needed)} in {folder} (the Hugging Face cache) but only "
                             f"{_size(free)} are free.",
                             hint="Free some space there, or point HF_HUB_CACHE (or HF_HOME) at a bigger disk.")


def _size(count: int) -> str:
    """Bytes as MB under a gigabyte ("0.02 GB" read as nothing), else GB."""
    return f"{count / 1e6:.0f} MB" if count < 1e9 else f"{count / 1e9:.2f} GB"


def verify_file(path: Path, entry: dict[str, Any]) -> None:
    """Compare a file with the Hub's etag: sha256 for LFS files, the git blob hash otherwise."""
    data_hash = hashlib.sha256() if entry["sha256"] else hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            data_hash.update(chunk)
    expected = entry["sha256"] or entry["blob_id"]
    if expected and data_hash.hexdigest() != expected:
        blob = path.resolve()
        path.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
        raise ModelIntegrityError(
            f"{entry['path']} arrived with bytes that do not match the Hub's checksum (a proxy that "
            f"rewrites downloads, or a damaged mirror); the file was deleted and nothing was marked ready.",
            hint="Run the download again; if it repeats, try another network or HF_ENDPOINT.",
        )


def _missing_bytes(cache: Path, report: AccessReport) -> int:
    blobs = _repo_cache(cache, report.repo) / "blobs"
    have = sum((blobs / (e["sha256"] or e["blob_id"])).stat().st_size for e in report.files
               if (blobs / (e["sha256"] or e["blob_id"])).is_file())
    return max(report.total_bytes - have, 0)


def _in_cache(cache: Path, report: AccessReport) -> bool:
    """Whether every file of the commit is in the cache's snapshot: hf_hub_download then returns it
    without writing anything (no lock, no link)."""
    snapshot = _repo_cache(cache, report.repo) / "snapshots" / report.commit
    return bool(report.commit and report.files) and all((snapshot / e["path"]).is_file() for e in report.files)


def _repo_cache(cache: Path, repo: str) -> Path:
    return cache / f"models--{repo.replace('/', '--')}"


def _fetch(report: AccessReport, entry: dict[str, Any], token: TokenChoice, cache: Path, meter: _Meter,
           cancel: threading.Event | None = None) -> Path:
    """hf_hub_download one file while a watcher reports the growth of its ``.incomplete`` blob;
    ``cancel`` stops it mid-file (the partial blob stays for the next run to resume)."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars

    # huggingface_hub reads and writes 10 MB at a time: on a slow line the bar stood at 0 for the first
    # 10 MB and a stop waited for the current 10 MB (14 s at 0.64 MB/s, t48). The file grows, and the
    # stop is checked, every CHUNK_BYTES instead (the library reads the setting at each download).
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK_BYTES)
    if not are_progress_bars_disabled():  # pgpt draws one bar for the whole download; the Hub's per-file
        disable_progress_bars()           # bars interleaved with it on a terminal

    blob = _repo_cache(cache, report.repo) / "blobs" / (entry["sha256"] or entry["blob_id"])
    stop = threading.Event()
    watcher = threading.Thread(target=meter.watch, args=(entry, blob, stop), daemon=True)
    watcher.start()
    try:
        for attempt in range(1, RETRIES + 1):
            try:
                with _stoppable(cancel):
                    path = hf_hub_download(report.repo, entry["path"], revision=report.commit, cache_dir=cache,
                                           token=token.token or False, endpoint=hub_endpoint())
                break
            except _Stopped:
                kept = blob.with_name(blob.name + ".incomplete")
                have = kept.stat().st_size / 1e6 if kept.exists() else 0.0
                raise Cancelled(f"The download of {report.repo} was cancelled in {entry['path']} ({have:.1f} MB "
                                f"of it kept); run it again to resume.", hint="") from None
            except HfHubHTTPError as exc:
                _retry_or_explain(exc, report, token, attempt)
            except _transfer_errors() as exc:
                # The partial blob stays; the next attempt asks for the rest with a Range header.
                if attempt == RETRIES:
                    kept = blob.with_name(blob.name + ".incomplete")
                    have = kept.stat().st_size / 1e6 if kept.exists() else 0.0
                    raise HubAccessError(
                        f"The connection to {shown_endpoint()} dropped {RETRIES} times while fetching "
                        f"{entry['path']} ({type(exc).__name__}); {have:.1f} MB of it are kept.",
                        status="network_error", hint="Run the same command again to resume where it stopped.",
                    ) from None
    finally:
        stop.set()
        watcher.join()
    meter.finish(entry)
    return Path(path)


class _Stopped(Exception):
    """Raised inside huggingface_hub's read loop once the user stops the download. Not a network
    error, so huggingface_hub does not retry it; it ends hf_hub_download with the partial blob kept."""


@contextmanager
def _stoppable(cancel: threading.Event | None) -> Iterator[None]:
    """Make this thread's Hub session check ``cancel`` before every read of a response body.

    hf_hub_download has no cancel hook, so a response hook wraps the body's ``read``: a 1 GB file
    used to finish before a stop took effect. Only this thread's session gets the hook, and only
    while the file is fetched. (After a dropped connection huggingface_hub makes a new session, and
    a stop then waits for the end of the file, as before.)
    """
    if cancel is None:
        yield
        return
    from huggingface_hub.utils import get_session

    session = get_session()

    def hook(response: Any, *args: Any, **kwargs: Any) -> Any:
        read = response.raw.read

        def checked_read(*read_args: Any, **read_kwargs: Any) -> Any:
            if cancel.is_set():
                raise _Stopped
            return read(*read_args, **read_kwargs)

        response.raw.read = checked_read
        return response

    session.hooks["response"].append(hook)
    try:
        yield
    finally:
        session.hooks["response"].remove(hook)


def _retry_or_explain(exc: Exception, report: AccessReport, token: TokenChoice, attempt: int) -> None:
    """Return after backing off on HTTP 429 (Retry-After, capped) so the caller retries; raise
    HubAccessError with the preflight's explanation for any other refusal, or the last 429."""
    from pgpt.runtime.hub.access import classify_response, describe

    response = getattr(exc, "response", None)
    status = classify_response(response.status_code, response.headers, token) if response is not None else ""
    if status == "rate_limited" and attempt < RETRIES:
        time.sleep(_retry_after(response.headers.get("Retry-After", ""), attempt))
        return
    refused = replace(report, status=status or "network_error")
    raise HubAccessError(describe(refused, token), status=refused.status) from None


def _retry_after(header: str, attempt: int) -> float:
    """Seconds to wait: the server's Retry-After or 2, 4, ...; never more than a minute."""
    wait = retry_after_seconds(header)
    return min(max(2.0 ** attempt if wait is None else wait, 0.5), MAX_RETRY_WAIT_S)


def _transfer_errors() -> tuple[type[BaseException], ...]:
    """Exceptions of a transfer that broke off (not of a refusal, which the preflight explains)."""
    import requests

    return (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.Timeout)


class _Meter:
    """Turns file sizes on disk into progress ticks with speed and ETA."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self.callback = total, callback
        self.finished = 0
        self.started = time.monotonic()
        self.first_done: int | None = None

    def watch(self, entry: dict[str, Any], blob: Path, stop: threading.Event) -> None:
        partial = blob.with_name(blob.name + ".incomplete")
        while not stop.wait(0.25):
            size = partial.stat().st_size if partial.exists() else 0
            self._tick(entry, self.finished + size, size)

    def finish(self, entry: dict[str, Any]) -> None:
        self.finished += entry["size"]
        self._tick(entry, self.finished, entry["size"])

    def _tick(self, entry: dict[str, Any], done: int, file_done: int) -> None:
        if self.callback is None:
            return
        if self.first_done is None:  # bytes resumed from an earlier run do not count as speed
            self.first_done = done
        elapsed = max(time.monotonic() - self.started, 1e-6)
        speed = (done - self.first_done) / elapsed
        # No ETA from the first moments: a few kB of a small config file in 0.3 s read "ETA 73605s".
        settled = elapsed >= ETA_AFTER_S and done - self.first_done >= ETA_AFTER_BYTES
        eta = 0.0 if done >= self.total else (self.total - done) / speed if speed > 0 and settled else None
        self.callback(DownloadProgress(entry["path"], done, self.total, speed, eta, file_done, entry["size"]))
