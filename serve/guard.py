"""What every request passes before a route runs: the Host allow-list, the Origin of a browser's
write, the API key and the body cap.

Plain ASGI middleware, so each check covers every route the app has, including ones added
later (vLLM's ``--api-key`` covered ``/v1`` only and left the rest open).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from starlette.exceptions import HTTPException

from pgpt.serve.errors import send_error

PUBLIC_PATHS = frozenset({"/health"})  # what a load balancer or systemd may poll without the key
# A refused body is left unread: the connection must close after the 413, or the client, still
# sending, and the server, no longer reading, would wait for each other.
CLOSE = {"Connection": "close"}


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def host_name(host_header: str) -> str:
    """``Example.com:8642`` -> ``example.com``; ``[::1]:8642`` -> ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostGuard:
    """403 unless the Host header names this server: a web page that rebinds its own DNS name to
    127.0.0.1 still sends its own name, so it cannot reach the API (ollama's CVE-2024-28224)."""

    def __init__(self, app: Any, names: frozenset[str]) -> None:
        self.app, self.names = app, names

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.names:
            name = host_name(_header(scope, b"host"))
            if name not in self.names:
                await send_error(send, 403, f"Host '{name[:100]}' is not one this server answers to. Its operator "
                                 "can add it with --allowed-hosts.", "host_not_allowed")
                return
        await self.app(scope, receive, send)


class OriginGuard:
    """403 for a write that a web page sent: a browser sends the page's Origin with a cross-site
    POST, and a form upload needs no CORS preflight, so any page a user opened could add documents
    to a keyless localhost server (t52). Allowed: the server's own pages (the Origin names the
    Host), the --cors-origins, and clients outside a browser, which send no Origin."""

    WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: Any, origins: frozenset[str]) -> None:
        self.app, self.origins = app, frozenset(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in self.WRITES and not self._allowed(scope):
            await send_error(send, 403, "A web page of another site may not send this server requests that change "
                             "something. Its operator can allow a page's origin with --cors-origins.",
                             "origin_not_allowed")
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: dict[str, Any]) -> bool:
        origin = _header(scope, b"origin").strip().rstrip("/").lower()
        if not origin:  # no browser, or an old one: Sec-Fetch-Site still says a page of another site sent it
            return _header(scope, b"sec-fetch-site").strip().lower() != "cross-site"
        own = origin.partition("://")[2] == _header(scope, b"host").strip().lower()
        return own or origin in self.origins


class ApiKeyGuard:
    """401 unless ``Authorization: Bearer KEY`` matches, on every route but /health; compared in
    constant time so the response time does not leak how much of a guess was right."""

    def __init__(self, app: Any, key: str) -> None:
        self.app, self.key = app, key.encode("utf-8")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.key and scope["path"] not in PUBLIC_PATHS and not _preflight(scope):
            if not self._holds_key(_header(scope, b"authorization")):
                await send_error(send, 401, "Missing or wrong API key: send 'Authorization: Bearer KEY' with the "
                                 "key the server was started with (or Basic with the key as password, as "
                                 "`curl -u pgpt:KEY` sends it).", "invalid_api_key", {"WWW-Authenticate": "Bearer"})
                return
        await self.app(scope, receive, send)

    def _holds_key(self, header: str) -> bool:
        """``Bearer KEY``; or, for PrivateGPT's scripts (its secret is the whole header, "Basic ...": t73),
        ``Basic KEY`` or HTTP Basic with the key as password and any user name."""
        scheme, _, given = header.partition(" ")
        token = given.strip().encode("utf-8")
        if hmac.compare_digest(header.strip().encode("utf-8"), self.key):  # a key file holding "Basic ..." (t75)
            return True
        if scheme.lower() == "bearer":
            return hmac.compare_digest(token, self.key)
        if scheme.lower() != "basic":
            return False
        try:
            password = base64.b64decode(token, validate=True).partition(b":")[2]
        except (binascii.Error, ValueError):
            password = b""
        # both compared, always: the time taken does not say which form was sent
        return hmac.compare_digest(token, self.key) | hmac.compare_digest(password, self.key)


class HeadAsGet:
    """HEAD is answered as GET, without the body, wherever GET is: uptime monitors and `curl -I` use
    HEAD, and FastAPI's GET routes (``/health`` too) answered 405, so a healthy server looked down."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def _preflight(scope: dict[str, Any]) -> bool:
    """A CORS preflight: browsers send it without credentials; CORS middleware answers it."""
    return scope["method"] == "OPTIONS" and bool(_header(scope, b"access-control-request-method"))


class BodyLimit:
    """413 for a body over ``limit`` bytes: at once from Content-Length, else while it streams in."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    if message.get("more_body"):  # before the 413 is sent (FastAPI's handler sends it)
                        await _drain(receive, self.limit)
                    raise BodyTooLarge(413, self.message(), headers=CLOSE)
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    def message(self) -> str:
        """What a refused client reads."""
        return (f"The request body is larger than this server's limit of {self.limit / 1e6:g} MB. Send a "
                "smaller file, or ask its operator to raise --max-body-mb.")

    async def _refuse(self, send: Any) -> None:
        await send_error(send, 413, self.message(), "body_too_large", CLOSE)


async def _drain(receive: Any, budget: int, seconds: float = 5.0) -> None:
    """Read and drop what the client still sends, up to ``budget`` bytes or ``seconds``: closing
    while it sends makes the kernel reset the connection, and the reset threw away the 413's JSON
    (curl showed the status with no body). A client sending far more is cut off without it."""
    import asyncio
    import time

    deadline = time.monotonic() + seconds
    while budget > 0:
        try:
            message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.01))
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body"):
            return


class BodyTooLarge(HTTPException):
    """Raised inside the app's receive when a streamed body passes the cap. An HTTPException, so
    that FastAPI's body parsing passes it on (it turns other errors into a 400)."""
