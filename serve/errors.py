"""Errors as JSON in OpenAI's shape, with the status and message from pgpt's one error table."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from pgpt.runtime.errors import (IngestLockedError, PgptError, RequestRefusedError, ServerBusyError,
                                 ServerStoppingError, StorageError, http_code, user_message)

log = logging.getLogger("pgpt.serve")
INGEST_RETRY_AFTER_S = 30  # a 409 for another process's ingest: try again then
STOPPING_RETRY_AFTER_S = 10  # a 503 of a server stopping: systemd restarts it in seconds (RestartSec)

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 409: "conflict_error", 413: "invalid_request_error",
          415: "invalid_request_error", 422: "invalid_request_error", 499: "cancelled",
          503: "overloaded_error"}


# A code by status where the error has none of its own: "404" beside "not_found" for the same status
# read as two kinds of error (t71); OpenAI's clients take the code for a name.
_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
          413: "request_too_large", 415: "unsupported_media_type", 422: "invalid_request", 499: "cancelled",
          500: "internal_error", 503: "unavailable"}


def error_payload(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}`` as OpenAI's API answers errors; ``param``
    names the request's field at fault, where one is."""
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error"), "param": param,
                      "code": code or _CODES.get(status, str(status))}}


def describe_error(error: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The status, JSON body and extra headers for ``error`` (a 503 says when to retry)."""
    message = user_message(error)
    status = message.http_status
    headers: dict[str, str] = {}
    if isinstance(error, ServerBusyError):
        headers["Retry-After"] = str(error.retry_after_s)
    elif isinstance(error, IngestLockedError):  # another process writes the index (a long ingest, say)
        headers["Retry-After"] = str(INGEST_RETRY_AFTER_S)
    elif isinstance(error, ServerStoppingError):  # the only 503 a client could not time its retry by (t74)
        headers["Retry-After"] = str(STOPPING_RETRY_AFTER_S)
    if status >= 500 and not isinstance(error, PgptError):  # a bug: keep the traceback in the log
        log.error("request failed: %s: %s", message.title, message.text, exc_info=error)
    elif status >= 500:  # a full queue is routine under load: not a warning on the server's stderr
        (log.info if isinstance(error, ServerBusyError) else log.warning)(
            "request refused: %s: %s", message.title, message.text)
    param = getattr(error, "param", None)  # InvalidRequestError's field at fault
    text = message.text
    if isinstance(error, (StorageError, IngestLockedError)):  # the log above keeps the whole text
        text = _without_server_paths(text)
    # the table's code (OpenAI's names: context_length_exceeded), else the error's own (model_not_found)
    code = http_code(error) or (message.code if isinstance(error, PgptError) else None)
    if isinstance(error, RequestRefusedError):  # its class says only "refused": its status says what (t73)
        code = _CODES.get(status, code)
    return status, error_payload(status, f"{message.title}: {text}", code, param), headers


def _without_server_paths(text: str) -> str:
    """``text`` without where the server keeps its data or what another process is adding: a key
    holder need not be the operator, and a folder's name can be confidential (t60: "adding
    /srv/bigsecretproject-acquisition-of-ACME" in a 409)."""
    from pgpt.runtime.documents.index_folder import ADDING

    text = re.sub(rf"{re.escape(ADDING)}[^)]*\)", ")", text)  # "(pgpt-tui, pid 8846: adding /docs, 416 of 1717 files)"
    return re.sub(r"(?<![\w/.])/(?:[^\s/:;,()'\"]+/)+", ".../", text)


def json_bytes(data: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def send_error(send: Any, status: int, message: str, code: str | None = None,
                     headers: dict[str, str] | None = None) -> None:
    """Answer with a JSON error from ASGI middleware (before any route runs)."""
    body = json_bytes(error_payload(status, message, code))
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})
