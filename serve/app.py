"""The app factory: a FastAPI app for one Service, with the guards, the access log and JSON errors.

``create_app`` takes settings and returns a new app each time (no globals), so tests build
several and Ray Serve could wrap one per replica (``@serve.ingress(create_app(...))``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pgpt.runtime.settings import Settings
from pgpt.serve.config import ServeSettings
from pgpt.serve.metrics import ServerMetrics
from pgpt.serve.service import Service

access_log = logging.getLogger("pgpt.serve.access")


def create_app(settings: Settings, serve: ServeSettings, service: Service | None = None) -> Any:
    """A FastAPI app serving ``settings``' models under ``serve``'s rules.

    Args:
        settings: Where models, the index, caches and logs live.
        serve: How the server listens and whom it lets in (checked here: an exposed address
            without a key raises ConfigError).
        service: The models and index to serve; by default built from the settings and loaded
            when the app starts.

    Returns:
        The ASGI app; each request passes the access log, the Host allow-list, CORS, the Origin
        of a browser's write, the API key and the body cap, in that order.
    """
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from pgpt.runtime.errors import PgptError
    from pgpt.serve.guard import ApiKeyGuard, BodyLimit, HeadAsGet, HostGuard, OriginGuard
    from pgpt.serve.routes import router

    serve.check()
    service = service or Service(settings, serve, ServerMetrics())

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        try:
            await service.start()
        except Exception as exc:  # uvicorn exits 3 and logs it, where a read-only home has no log
            service.start_error = exc
            raise
        try:
            yield
        finally:
            await service.close()

    # No /docs or /redoc page: FastAPI's load their scripts and fonts from CDNs (jsdelivr, Google Fonts),
    # so opening one contacted those hosts and ran their code on the API's own origin, which may write
    # (t60). The API's description stays at /openapi.json for any tool to load.
    app = FastAPI(title="pgpt-serve", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.include_router(router)
    app.add_exception_handler(PgptError, _pgpt_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _pgpt_error)  # a JSON 500, not Starlette's plain text
    # add_middleware wraps: the last one added runs first.
    app.add_middleware(HeadAsGet)
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(BodyLimit, limit=serve.max_body_bytes)
    app.add_middleware(ApiKeyGuard, key=serve.api_key)
    app.add_middleware(OriginGuard, origins=frozenset(serve.cors_origins))
    if serve.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        # Any request header from an allowed origin: the official `openai` JS client sends its
        # X-Stainless-* headers with every request, and their preflight got 400 "Disallowed CORS headers"
        # (t46; ollama's #4388). The origin is what is trusted; no cookies are sent (no credentials).
        app.add_middleware(CORSMiddleware, allow_origins=list(serve.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["*"])
    app.add_middleware(HostGuard, names=serve.host_names())
    # outermost: refusals are logged and counted too, under the route they were meant for
    app.add_middleware(AccessLog, metrics=service.metrics, routes=app.routes)
    return app


async def _pgpt_error(request: Any, error: Exception) -> Any:
    from fastapi.responses import JSONResponse

    from pgpt.serve.errors import describe_error

    status, payload, headers = describe_error(error)
    request.scope.setdefault("state", {}).setdefault("pgpt_log", {})["error"] = type(error).__name__
    return JSONResponse(payload, status_code=status, headers=headers)


async def _http_error(request: Any, error: Any) -> Any:
    from fastapi.responses import JSONResponse
    from starlette.requests import ClientDisconnect

    from pgpt.serve.errors import error_payload

    detail, code = str(error.detail), None
    if isinstance(error.__cause__, ClientDisconnect):  # FastAPI's 400 for a body its client stopped sending
        return JSONResponse(error_payload(499, "The client closed the connection before its request's body ended.",
                                          "client_closed"), status_code=499)
    if error.status_code == 404 and detail == "Not Found":  # Starlette's words: an unknown route
        detail, code = (f"This server has no route {request.method} {request.url.path[:100]}. It serves OpenAI's "
                        "/v1/chat/completions, /v1/completions, /v1/embeddings and /v1/models, PrivateGPT's /v1/chunks "
                        "and /v1/ingest routes, and /health, /ready and /metrics (the README lists them)."), "not_found"
    elif error.status_code == 405:  # a known route, another method
        allowed = (getattr(error, "headers", None) or {}).get("Allow", "see the README")
        detail = f"{request.url.path[:100]} does not take {request.method}; allowed: {allowed}."
        code = "method_not_allowed"
    elif error.status_code == 400 and detail in _MULTIPART_FAULTS:  # Starlette's words alone name no next step
        detail = (f"The upload's multipart form cannot be read ({detail.rstrip('.')}): a part's header is malformed "
                  "or longer than the form parser reads (a file name must be at most 255 bytes). Send the file as "
                  "the form field 'file' under a plain name (curl -F file=@report.pdf).")
    return JSONResponse(error_payload(error.status_code, detail, code), status_code=error.status_code,
                        headers=getattr(error, "headers", None))


_MULTIPART_FAULTS = ("Invalid multipart data.", "Missing boundary in multipart.")


async def _validation_error(request: Any, error: Any) -> Any:
    """400 naming each bad field, instead of FastAPI's 422 list."""
    from fastapi.responses import JSONResponse

    from pgpt.serve.errors import error_payload
    from pgpt.serve.request_fields import unrecognized

    errors = error.errors()
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:  # it said "Invalid request: 14: JSON decode error."
        where = broken.get("loc", ())[1:2]
        message = (f"The request body is not valid JSON (near character {where[0]}: "
                   f"{(broken.get('ctx') or {}).get('error', 'cannot be read')}).") if where else \
            "The request body is not valid JSON."
    elif "json" not in request.headers.get("content-type", "") and any(tuple(e.get("loc", ())) == ("body",)
                                                                        for e in errors):
        message = ("The request body must be JSON sent with the header Content-Type: application/json "
                   "(curl: -H 'Content-Type: application/json').")
    elif (misspelled := unrecognized(errors)) is not None:
        return JSONResponse(error_payload(400, misspelled[0], param=misspelled[1]), status_code=400)
    else:
        message = f"Invalid request: {'; '.join(_problems(errors)[:5])}."
        loc = [str(part) for part in errors[0].get("loc", ())[1:]] if errors else []
        cut = next((i for i, part in enumerate(loc) if _BRANCH.fullmatch(part)), len(loc))
        param = ".".join(loc[:cut]) or None  # the first field named, as OpenAI's param ("n", "messages.0.role")
        return JSONResponse(error_payload(400, message, param=param), status_code=400)
    return JSONResponse(error_payload(400, message), status_code=400)


# pydantic names each branch of a union in the error's place ("input.list[list[int]]: Input should
# be a valid list"): one line per field instead, in the words of JSON.
_BRANCH = re.compile(r"(str|int|float|bool|list\[.*\]|dict\[.*\])")
_JSON_NAMES = {"str": "a text", "int": "a whole number", "float": "a number", "bool": "true or false",
               "list[str]": "a list of texts", "list[any]": "a list", "list[int]": "a list of numbers"}


def _problems(errors: list[dict[str, Any]]) -> list[str]:
    """One line per bad field: its place and what was wrong (a union's branches said once)."""
    lines: dict[str, str] = {}
    branches: dict[str, list[str]] = {}
    given: dict[str, Any] = {}
    for error in errors:
        loc = [str(p) for p in error.get("loc", ())[1:]]
        cut = next((i for i, part in enumerate(loc) if _BRANCH.fullmatch(part)), None)
        if cut is None:
            place = ".".join(loc) or "body"
            lines.setdefault(place, f"{place}: {str(error.get('msg', '')).removeprefix('Value error, ')}")
            continue
        place = ".".join(loc[:cut]) or "body"
        branches.setdefault(place, []).append(loc[cut])
        if len(loc) == cut + 1:
            given.setdefault(place, error.get("input"))
        lines.setdefault(place, "")
    for place, kinds in branches.items():
        wanted = [_JSON_NAMES.get(kind, "an object" if kind.startswith("dict") else kind)
                  for kind in dict.fromkeys(kinds)]
        expected = ", ".join(wanted[:-1]) + f" or {wanted[-1]}" if len(wanted) > 1 else wanted[0]
        lines[place] = f"{place} must be {expected} (got {_json_kind(given.get(place))})"
    return list(lines.values())


def _json_kind(value: Any) -> str:
    return ("null" if value is None else "true or false" if isinstance(value, bool) else
            "a number" if isinstance(value, (int, float)) else "a text" if isinstance(value, str) else
            "a list" if isinstance(value, list) else "an object")


class UnexpectedErrors:
    """Answers an unexpected error (a bug) before the response started with the JSON 500 and ends
    there. Starlette's ServerErrorMiddleware sends the same answer but then re-raises the error,
    and uvicorn resets the connection: a keep-alive client's next request on it failed."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as error:
            if started:  # too late for an answer of its own: the server ends the response
                raise
            from starlette.requests import Request

            response = await _pgpt_error(Request(scope), error)
            await response(scope, receive, send)


class AccessLog:
    """One log line per request when its response ends, and the request counter by route.

    The line holds the method, the route, the status, model@version, prompt and new tokens, TTFT
    and the total time, then ``cached`` (a cache answered) or ``disconnected`` (the client left
    before the response ended: a stream cut off shows 200 and the tokens until then); never a prompt, an
    answer or a header (the key travels in one).
    """

    def __init__(self, app: Any, metrics: ServerMetrics, routes: Sequence[Any] = ()) -> None:
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        fields: dict[str, Any] = scope.setdefault("state", {}).setdefault("pgpt_log", {})
        status, ended, left = 500, False, False

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal status, ended
            if message["type"] == "http.response.start":
                status = message["status"]
            ended = ended or (message["type"] == "http.response.body" and not message.get("more_body"))
            await send(message)

        async def watched_receive() -> dict[str, Any]:
            nonlocal left
            message: dict[str, Any] = await receive()
            left = left or (message["type"] == "http.disconnect" and not ended)
            return message

        try:
            await self.app(scope, watched_receive, watched_send)
        finally:
            status = int(fields.get("status", status))  # an error inside a stream after its 200
            route = getattr(scope.get("route"), "path", None) or route_template(self.routes, scope)
            method = known_method(scope["method"])
            self.metrics.http_requests.labels(route, method, str(status)).inc()
            # a client polls an upload's progress each second (404 before the upload arrives and after it is
            # answered): those lines would bury the upload's own
            level = logging.DEBUG if route in POLLED_ROUTES and status in (200, 404) else logging.INFO
            access_log.log(
                level, "%s %s %s model=%s prompt_tokens=%s new_tokens=%s ttft_s=%s total_s=%.3f%s%s",
                method, route, status, fields.get("model", "-"), fields.get("prompt_tokens", "-"),
                fields.get("new_tokens", "-"), _seconds(fields.get("ttft_s")), time.perf_counter() - started,
                " cached" if fields.get("cached") else "", " disconnected" if left else "")


POLLED_ROUTES = frozenset({"/v1/ingest/progress/{key}"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def known_method(method: str) -> str:
    """The request's method for the metrics label and the log, or "other": any word is a valid
    method to uvicorn, and each one made a counter series of its own, before the key check and
    never freed (2,000 made-up methods grew /metrics by 4 MB, t52)."""
    return method if method in _METHODS else "other"


def route_template(routes: Sequence[Any], scope: dict[str, Any]) -> str:
    """The template of the route a request was meant for (``/v1/ingest/{doc_id}``) when none ran:
    the key, the Host or the body cap refused it first, and every 401 was "unmatched", so nobody
    saw which routes are probed. "unmatched" for a path that no route has: a label per path
    would let any client grow the metrics without end."""
    from starlette.routing import Match

    # a bare copy: FastAPI's own matching writes its state into the scope it is given
    probe = {"type": "http", "method": scope["method"], "path": scope["path"], "root_path": scope.get("root_path", "")}
    pending = list(routes)
    while pending:
        route = pending.pop(0)
        if hasattr(route, "original_router"):  # FastAPI's included router: its routes, in their order
            pending[:0] = route.original_router.routes
        elif getattr(route, "path", None) and route.matches(dict(probe))[0] is not Match.NONE:
            return str(route.path)
    return "unmatched"


def _seconds(value: Any) -> str:
    return f"{float(value):.3f}" if isinstance(value, int | float) else "-"
