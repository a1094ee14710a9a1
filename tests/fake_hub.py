"""A Hugging Face Hub stand-in on 127.0.0.1 that speaks the protocol huggingface_hub uses.

It answers ``/api/models/REPO[/revision/REV]`` (model info with file metadata),
``HEAD``/``GET /REPO/resolve/REV/FILE`` (with ``X-Repo-Commit``, ``X-Linked-Etag``,
``X-Linked-Size``, ``ETag`` and ``Range``) and ``/api/whoami-v2``, with the Hub's real error
headers (``X-Error-Code``, ``X-Error-Message``). Behaviours per repo simulate what users meet:
gated repos, a firewall's HTML 403, 429, a connection cut mid-file, bytes that do not match
the etag. The real client reaches it through ``HF_ENDPOINT``, as users reach a mirror.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ACCEPTED_TOKEN = "hf_pgptCanaryAccepted0000000000001234"
NOT_ACCEPTED_TOKEN = "hf_pgptCanaryNotAccepted00000000005678"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FIREWALL_PAGE = b"<html><body><h1>Access Denied</h1>Blocked by corporate web filter.</body></html>"


@dataclass
class FakeRepo:
    """One repo: its files and how the server misbehaves for it."""

    files: dict[str, bytes]
    gated: bool = False
    # "", "blocked", "rate_limited", "busy" (one 429 on a file), "cut", "corrupt", "cdn" (large
    # files redirect to the CDN server),
    # "slow" (a first, unranged transfer trickles, so a test can kill the client mid-file)
    behaviour: str = ""
    license: str = "apache-2.0"
    config: dict[str, object] = field(default_factory=dict)
    cut_done: bool = False
    busy_done: bool = False


def git_blob_sha1(data: bytes) -> str:
    """The etag the Hub gives small (non-LFS) files: git's blob hash."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(name: str) -> bool:
    return name.endswith((".safetensors", ".gguf", ".bin"))


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every top-level file of a folder, as the repo's files."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


class FakeHub:
    """The server; ``repos`` maps repo ids to FakeRepo; ``requests`` records what was asked."""

    def __init__(self, repos: dict[str, FakeRepo]) -> None:
        self.repos = repos
        self.requests: list[dict[str, object]] = []
        hub = self

        class Handler(_Handler):
            server_hub = hub

        class CdnHandler(_Handler):
            server_hub = hub
            is_cdn = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # The file CDN the Hub redirects large files to: another host (port), where no token belongs.
        self.cdn = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CdnHandler)
        self.cdn_url = f"http://127.0.0.1:{self.cdn.server_address[1]}"
        self.threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in (self.server, self.cdn)]

    def __enter__(self) -> FakeHub:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self.server, self.cdn):
            server.shutdown()
            server.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    server_hub: FakeHub
    is_cdn = False
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:  # noqa: N802 (http.server naming)
        self._route(send_body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._route(send_body=True)

    def _token(self) -> str:
        auth = self.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ").strip()

    def _route(self, send_body: bool) -> None:
        hub = self.server_hub
        path = self.path.split("?", 1)[0]
        hub.requests.append({"method": self.command, "path": path, "range": self.headers.get("Range", ""),
                             "authorized": bool(self._token()), "cdn": self.is_cdn})
        if self.is_cdn:
            return self._cdn_file(path)
        token = self._token()
        if token and token not in (ACCEPTED_TOKEN, NOT_ACCEPTED_TOKEN):
            return self._error(401, "", "Invalid credentials in Authorization header")
        if path == "/api/whoami-v2":
            return self._whoami(token)
        if path.startswith("/api/models/"):
            repo_id, _, revision = path.removeprefix("/api/models/").partition("/revision/")
            if revision not in ("", "main", COMMIT) and repo_id in self.server_hub.repos:  # as the Hub answers
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return self._model_info(repo_id)
        parts = path.strip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._file("/".join(parts[:2]), "/".join(parts[4:]), token, send_body)
        self._error(404, "RepoNotFound", "Repository not found")

    def _repo(self, repo_id: str) -> FakeRepo | None:
        repo = self.server_hub.repos.get(repo_id)
        if repo is None:
            self._error(401 if not self._token() else 404, "RepoNotFound", "Repository not found")
            return None
        if repo.behaviour == "blocked":
            self._send(403, FIREWALL_PAGE, {"Content-Type": "text/html"})
            return None
        if repo.behaviour == "rate_limited":
            self._error(429, "", "You have been rate-limited", extra={"Retry-After": "60"})
            return None
        return repo

    def _model_info(self, repo_id: str) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        siblings = []
        for name, data in repo.files.items():
            entry: dict[str, object] = {"rfilename": name, "size": len(data), "blobId": git_blob_sha1(data)}
            if is_lfs(name):
                entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            siblings.append(entry)
        body = {"id": repo_id, "modelId": repo_id, "sha": COMMIT, "private": False,
                "gated": "manual" if repo.gated else False, "tags": [f"license:{repo.license}"],
                "cardData": {"license": repo.license}, "config": repo.config, "siblings": siblings}
        self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _file(self, repo_id: str, name: str, token: str, send_body: bool) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        if repo.gated and token != ACCEPTED_TOKEN:
            status = 403 if token else 401
            return self._error(status, "GatedRepo", "Access to model is restricted and you are not in the authorized list.")
        if name not in repo.files:
            return self._error(404, "EntryNotFound", "Entry not found")
        data = repo.files[name]
        headers = {"X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if is_lfs(name):
            headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
            headers["X-Linked-Size"] = str(len(data))
            headers["ETag"] = headers["X-Linked-Etag"]
        else:
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
        if repo.behaviour == "cdn" and is_lfs(name):  # like the Hub: 302 to the CDN, metadata on the 302
            headers.update({"Location": f"{self.server_hub.cdn_url}/blob/{repo_id}/{name}", "Content-Length": "0"})
            return self._send(302, b"", headers)
        if repo.behaviour == "corrupt" and is_lfs(name):
            data = data[:-1] + bytes([data[-1] ^ 0xFF])  # same size, different bytes
        start = _range_start(self.headers.get("Range", ""))
        body = data[start:]
        if not send_body:
            headers["Content-Length"] = str(len(data))
            return self._send(200, b"", headers, content_length=len(data))
        if repo.behaviour == "busy" and is_lfs(name) and not repo.busy_done:
            repo.busy_done = True
            return self._error(429, "", "You have been rate-limited", extra={"Retry-After": "1"})
        if repo.behaviour == "cut" and is_lfs(name) and not repo.cut_done and start == 0:
            repo.cut_done = True
            return self._cut(body, headers)
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if repo.behaviour == "slow" and is_lfs(name) and start == 0:
            return self._trickle(body, headers)
        self._send(206 if start else 200, body, headers)

    def _cdn_file(self, path: str) -> None:
        parts = path.strip("/").split("/")  # blob/<org>/<repo>/<file>
        repo = self.server_hub.repos.get("/".join(parts[1:3]))
        data = repo.files.get("/".join(parts[3:])) if repo is not None else None
        if data is None:
            return self._send(404, b"no such blob", {"Content-Type": "text/plain"})
        start = _range_start(self.headers.get("Range", ""))
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
                   "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._send(206 if start else 200, data[start:] if self.command != "HEAD" else b"", headers,
                   content_length=len(data) - start)

    def _trickle(self, body: bytes, headers: dict[str, str]) -> None:
        """Send 64 KiB every 10 ms until the client goes away."""
        self._begin_body(headers, len(body))
        try:
            for offset in range(0, len(body), 65536):
                self.wfile.write(body[offset:offset + 65536])
                self.wfile.flush()
                time.sleep(0.01)
        except OSError:  # the killed client closed the socket
            self.close_connection = True

    def _cut(self, body: bytes, headers: dict[str, str]) -> None:
        """Promise the whole file, send half, drop the connection."""
        self._begin_body(headers, len(body))
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    def _begin_body(self, headers: dict[str, str], length: int) -> None:
        """Status 200 and headers promising ``length`` bytes; the caller writes (some of) them."""
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _whoami(self, token: str) -> None:
        if not token:
            return self._error(401, "", "Invalid credentials in Authorization header")
        role = "read" if token == ACCEPTED_TOKEN else "fineGrained"
        body = {"type": "user", "name": "pgpt-tester",
                "auth": {"type": "access_token", "accessToken": {"displayName": "ci", "role": role}}}
        self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _error(self, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message, **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str], content_length: int | None = None) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key != "Content-Length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if content_length is None else content_length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _range_start(header: str) -> int:
    if header.startswith("bytes=") and header[6:].split("-")[0].isdigit():
        return int(header[6:].split("-")[0])
    return 0


def dead_endpoint() -> str:
    """An address where nothing listens (connection refused at once)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
