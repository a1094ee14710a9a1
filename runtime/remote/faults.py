"""What a pgpt-serve client says when the server is down, hangs, refuses the key, is busy or is not
pgpt-serve at all: the error, with its next step, from the HTTP answer (never the key it was sent)."""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from pgpt.runtime.errors import (IngestLockedError, PgptError, ServerAuthError, ServerBusyError, ServerError,
                                 ServerUnreachableError, ServerUsageError, usage_titles)


def unreachable(url: str, error: BaseException, during_answer: bool = False) -> ServerError:
    """The error for a server that did not answer (or stopped answering); the hint names its port."""
    import httpx

    port = urllib.parse.urlsplit(url).port or 8642
    hint = (f"Start it with `pgpt-serve --port {port}` (or open the SSH tunnel: ssh -L {port}:127.0.0.1:{port} "
            "HOST), or leave out --server (and PGPT_SERVER) to run the model in this process.")
    # an HTTP library's message may quote a request header: never the key in it
    reason = re.sub(r"(?i)bearer[^'\"]*", "Bearer ***", " ".join(str(error).split())) or type(error).__name__
    if isinstance(error, httpx.TimeoutException) and not isinstance(error, httpx.ConnectTimeout):
        return ServerUnreachableError(
            f"The server at {url} accepted the connection but sent nothing for {_seconds(error)}: it hangs, or a "
            "tunnel or proxy in between lost the far end.",
            hint=f"Check it on its machine (curl http://127.0.0.1:{port}/health), open the SSH tunnel again, or "
                 "leave out --server (and PGPT_SERVER) to run the model in this process.")
    if during_answer:
        return ServerUnreachableError(f"The server at {url} closed the connection in the middle of the answer "
                                      f"({type(error).__name__}): it stopped or crashed.", hint=hint)
    if url.startswith("https:") and "ssl" in reason.lower():  # pgpt-serve speaks plain HTTP
        return ServerUnreachableError(f"The server at {url} does not speak HTTPS ({reason[:120]}).",
                                      hint="pgpt-serve speaks plain HTTP: use http://; across networks reach it "
                                           f"through an SSH tunnel (ssh -L {port}:127.0.0.1:{port} HOST).")
    return ServerUnreachableError(f"Nothing answers at {url} ({reason[:200]}).", hint=hint)


def _seconds(error: BaseException) -> str:
    """The read timeout that ran out, as '30 s' ('too long' when httpx does not say)."""
    try:  # httpx raises RuntimeError for an error without its request
        timeout = error.request.extensions.get("timeout", {}).get("read")  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        timeout = None
    return f"{timeout:g} s" if isinstance(timeout, (int, float)) else "too long"


def not_pgpt_serve(url: str, status: int, text: str) -> ServerError:
    """A web server answered, but not as pgpt-serve does (its answers are JSON): its page was printed whole."""
    page = "an HTML page" if "<html" in text[:2000].lower() else "text that is not JSON"
    return ServerError(f"The server at {url} answered {status} with {page}: it is not pgpt-serve.",
                       status=status, hint="Check the address and the port (pgpt-serve prints its own when it "
                                           "starts: listening on http://HOST:PORT).")


def refused(url: str, status: int, text: str, retry_after: str | None) -> PgptError:
    """The error for an HTTP error answer, with the server's own message."""
    error = json_error(text)
    if "message" in error:
        message = str(error["message"])
    else:
        if status not in (401, 403, 503):
            return not_pgpt_serve(url, status, text)
        message = " ".join(text.split())[:300] or f"HTTP {status}"
    if status == 401:  # the hint says which key to set; the server's own text would say it again
        return ServerAuthError(f"The server at {url} refused the request (401): the API key is missing or wrong.",
                               status=status)
    if status == 403:
        return ServerAuthError(f"The server at {url} refused the request (403): {message}", status=status)
    if status == 503 and not message.startswith("Server stopping: "):  # a stop is no busy server
        wait = int(retry_after) if (retry_after or "").isdigit() else 1
        title, message = server_title(message)
        if title:  # pgpt-serve's own "Server busy: ... <hint>": the hint is shown once, after ours
            message = message.removesuffix(ServerBusyError.hint).strip()
        return ServerBusyError(f"The server at {url} is busy: {message} It asks to retry in {wait} s.",
                               limit="server", retry_after_s=wait,
                               hint="Try again in a moment; if it is busy often, ask its operator to raise the "
                                    "limit the message names.")  # a client cannot raise it itself
    title, message = server_title(message)
    if status == 409 and (error.get("code") == "ingest_locked" or title == IngestLockedError.title):
        return IngestLockedError(f"The server at {url} is adding other documents: {message}",  # exit 75: retry
                                 hint="Run the same command again once that ends (the server says when: "
                                      f"Retry-After {retry_after or '30'} s); files already sent come back unchanged.")
    kind = ServerUsageError if title in usage_titles() else ServerError  # exit 2, as without a server
    error = kind(f"The server at {url} answered {status}: {message}", status=status, hint="")
    if title:  # the server's own title ("Usage error"), not "Server error: ... Usage error: ..."
        error.title = title
    return error


def json_error(text: str) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-style JSON error answer ({} for any other answer)."""
    try:
        error = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        return {}
    return error if isinstance(error, dict) else {}


def server_title(message: str) -> tuple[str, str]:
    """(title, rest) of a pgpt-serve error message, which starts with its error table's title
    ("Usage error: Nothing is indexed ..."); ("", message) for any other server's message."""
    from pgpt.runtime.errors import known_titles

    title, sep, rest = message.partition(": ")
    return (title, rest) if sep and title in known_titles() else ("", message)
