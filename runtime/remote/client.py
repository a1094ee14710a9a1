"""The client side of pgpt-serve: what the app and the CLI use instead of a loaded model when
``PGPT_SERVER`` (or ``--server``) names a server. httpx only, no server code.

``RemoteEngine`` offers the parts of ChatEngine the interfaces use (``stream``, ``model.info.name``,
``provider``, ``close``) plus ``ask`` and ``search`` for documents, so the app and the CLI keep
one code path; its streams give the same ``result`` objects (answer, cached, timings, sources).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import Cancelled, ModelNotFoundError, PgptError, ServerBusyError, ServerError, ServerUsageError
from pgpt.runtime.llm.chat import ChatResult
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.remote.faults import json_error, not_pgpt_serve, refused, server_title, unreachable

CONNECT_TIMEOUT_S = 5.0
# How long a read may wait. pgpt-serve answers /v1/models and searches at once; a stream's headers
# wait for its model to load, then a heartbeat comes each second; an upload's answer waits for
# its indexing. A hung server or a dead SSH tunnel otherwise kept `chat` silent for 10 minutes.
READ_TIMEOUT_S = 30.0
STREAM_TIMEOUT_S = 300.0
INDEXING_TIMEOUT_S = 600.0
# The longest wait for a busy server between two tries, whatever its Retry-After says.
BUSY_WAIT_CAP_S = 10


def busy_wait_s(error: ServerBusyError, waits: int) -> int:
    """Seconds to wait before the ``waits``-th try again of a busy server: its Retry-After, or longer,
    doubled each time (1, 2, 4, 8, 10 s): a slot frees when an answer ends, and 3 tries of the server's
    1 s gave up after 4 s beside 8-19 s answers (t78)."""
    return min(max(int(error.retry_after_s or 1), 2 ** (waits - 1)), BUSY_WAIT_CAP_S)


def _count_down(wait: int, on_progress: Callable[[dict[str, Any]], None] | None) -> None:
    """Sleep ``wait`` seconds, telling ``on_progress`` the seconds left each second: the bar said
    "sending it again in 8 s" for all 8 of them (t81)."""
    for left in range(wait, 0, -1):
        if on_progress is not None:
            on_progress({"state": "busy", "retry_in_s": left})
        time.sleep(1)


@dataclass(frozen=True)
class RemoteModel:
    """What the app shows of the served model: ``info.name`` is ``name@version``."""

    name: str
    version: str

    @property
    def info(self) -> RemoteModel:
        """ChatEngine's ``model.info`` shape."""
        return self


@dataclass
class RemoteResult(ChatResult):
    """A ChatResult from the server; documents answers also carry their sources."""

    sources: list[dict[str, Any]] = field(default_factory=list)
    documents: bool = False  # an answer from the documents: its JSON is ask's
    grounding: dict[str, Any] = field(default_factory=dict)  # kind, not_found, quotes, closest (the server's check)

    def as_json(self) -> dict[str, Any]:
        """The same JSON as ``chat --json`` (``ask --json``: answer, kind, not_found, quotes,
        sources, closest, cached, timings)."""
        if self.documents:
            checked = {"kind": "answer", "not_found": False, "quotes": [], "closest": [], **self.grounding}
            # "left_out": a local answer's files never read; the server keeps no such list (the key is
            # there all the same: one shape with or without --server, t71)
            return {"answer": self.answer, **checked, "sources": self.sources, "left_out": [], "cached": self.cached,
                    "timings": self.timings}
        name, _, version = self.model.partition("@")  # shown as name@version; in JSON as in-process
        return {**super().as_json(), "model": name, "version": version or self.version}


class RemoteEngine:
    """A pgpt-serve reached over HTTP, used like a loaded ChatEngine."""

    def __init__(self, url: str, api_key: str = "", model: str = "", retries: int = 5) -> None:
        import httpx

        # a busy server's 503 is asked again this often, as OpenAI's own client does (settings.server_retries)
        self.url, self.retries = url.rstrip("/"), retries
        self.requested = model or "default"  # what requests ask for: "default" follows the server's switches
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers,
                                  timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))
        started = time.perf_counter()
        self.model = self._served_model()
        self.load_s = time.perf_counter() - started

    def take_warnings(self) -> list[str]:
        """ChatEngine's warnings (about its local answer cache): a server keeps its own."""
        return []

    @property
    def provider(self) -> str:
        """Where the answers come from, for the status line."""
        return f"server {self.url.split('://', 1)[-1]}"

    def chat_models(self) -> list[dict[str, Any]]:
        """The server's chat models as /v1/models lists them (``id``, ``version``, ``default``)."""
        return [m for m in self._request("GET", "/v1/models").get("data", []) if m.get("kind", "llm") == "llm"]

    def _served_model(self) -> RemoteModel:
        """The model requests go to: the server's default, or the one asked for (name[@version])."""
        chats = self.chat_models()
        name, _, version = self.requested.partition("@")
        chat = next((m for m in chats if (m.get("default") if name == "default" else m["id"] == name)), None)
        if chat is None:
            served = ", ".join(m["id"] for m in chats) or "none"
            error = ServerUsageError(f"The server at {self.url} has no chat model {self.requested!r} (it has: "
                                     f"{served}).", status=404,
                                     hint="Pick one of those with --model, or leave it out for the default.")
            error.title = ModelNotFoundError.title
            raise error
        return RemoteModel(f"{chat['id']}@{version or chat.get('version', '?')}", version or str(chat.get("version", "")))

    def stream(self, messages: list[dict[str, str]], options: SamplingOptions,
               cancel: threading.Event | None = None, fit: bool = False) -> RemoteStream:
        """An answer to the conversation; iterate for text pieces, then read ``.result``.

        ``fit``: as ChatEngine's, the oldest turns are left out until the conversation fits. Only the
        server knows its model's tokens, and it refuses a conversation too long (its API's contract,
        ``context_length_exceeded``) rather than shorten it: each refusal leaves out one more turn.
        """
        return RemoteStream(self, {"messages": messages, **_body(self.requested, options)}, cancel, fit=fit)

    def ask(self, question: str, options: SamplingOptions, cancel: threading.Event | None = None,
            doc_ids: list[str] | None = None, collection: str | None = None, passages: int | None = None,
            sentences: int | None = None, earlier: list[str] | None = None) -> RemoteStream:
        """An answer from the server's documents, with sources (PrivateGPT's use_context; pgpt's
        collection, passages and sentences as `ask` takes them, the server's defaults when None).
        ``earlier``: the chat's earlier questions, sent before it, so that the server searches a
        follow-up ("And when does it close?") after what it follows."""
        asked = [{"role": "user", "content": text} for text in (earlier or [])[-1:]]
        body: dict[str, Any] = {"messages": [*asked, {"role": "user", "content": question}], "use_context": True,
                                "include_sources": True, **_body(self.requested, options)}
        if doc_ids is not None:
            body["context_filter"] = {"docs_ids": doc_ids}
        given = {"collection": collection, "passages": passages, "sentences": sentences}
        body.update({name: value for name, value in given.items() if value is not None})
        return RemoteStream(self, body, cancel)

    def search(self, query: str, k: int = 5, collection: str | None = None) -> list[dict[str, Any]]:
        """The passages closest to ``query`` (``source``, ``page``, ``text``, ``score``), no model run."""
        request = {"text": query, "limit": k, **({"collection": collection} if collection else {})}
        data = self._request("POST", "/v1/chunks", json=request)
        return [_source(chunk) for chunk in data.get("data", [])]

    def documents(self) -> list[dict[str, Any]]:
        """The server's indexed documents (``doc_id`` and ``doc_metadata``)."""
        return list(self._request("GET", "/v1/ingest/list").get("data", []))

    def upload(self, path: Path, collection: str, name: str = "",
               on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Send one file to the server's index (PrivateGPT's /v1/ingest/file) under ``name``
        (its folders too, as ``docs/guide/README.md``; its file name when ""); its document, with
        ``doc_metadata.status`` added, updated, renamed or unchanged. ``on_progress`` hears the
        server's progress on it meanwhile (progress.py)."""
        from contextlib import nullcontext

        from pgpt.runtime.remote.progress import PROGRESS_HEADER, new_key, polled

        for waits in range(1, self.retries + 2):
            key = new_key()
            watching = polled(self._http, key, on_progress) if on_progress is not None else nullcontext()
            try:
                with open(path, "rb") as handle, watching:
                    data = self._request("POST", "/v1/ingest/file", files={"file": (path.name, handle)},
                                         data={"collection": collection, "file_name": name or path.name},
                                         headers={PROGRESS_HEADER: key}, timeout=INDEXING_TIMEOUT_S)
                return dict(data["data"][0])
            except ServerBusyError as error:  # a full upload queue: sent again when it asks, as `ask` asks again
                if waits > self.retries:  # (every file "failed" at once, though the server said when, t80)
                    raise
                _count_down(busy_wait_s(error, waits), on_progress)
        raise AssertionError("unreachable")  # the loop returns or raises

    def forget(self, doc_id: str) -> None:
        """Remove one document from the server's index (and its uploaded file)."""
        self._request("DELETE", f"/v1/ingest/{doc_id}", expect_json=False, timeout=INDEXING_TIMEOUT_S)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, expect_json: bool = True, **kwargs: Any) -> dict[str, Any]:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from None
        if response.status_code >= 400:
            raise refused(self.url, response.status_code, response.text, response.headers.get("retry-after"))
        if not expect_json:
            return {}
        try:
            return dict(response.json())
        except ValueError:  # a web server, but not pgpt-serve
            raise not_pgpt_serve(self.url, response.status_code, response.text) from None


class RemoteStream:
    """Iterates the text pieces of one remote answer; ``result`` is complete when it ends.

    Setting ``cancel`` closes the connection at the next piece, which makes the server stop the
    sequence (its slot is free within one decode step).
    """

    def __init__(self, engine: RemoteEngine, body: dict[str, Any], cancel: threading.Event | None,
                 fit: bool = False) -> None:
        self._engine, self._body, self._cancel, self._fit = engine, {**body, "stream": True}, cancel, fit
        self._retries, self._waits = engine.retries, 0
        # called with what the server is doing while it sends no text ("waiting", "drafting 42")
        self.on_state: Callable[[str], None] | None = None
        self.result = RemoteResult(model=engine.model.info.name, provider=engine.provider,
                                   documents=bool(body.get("use_context")))

    def __iter__(self) -> Iterator[str]:
        import httpx

        engine = self._engine
        try:
            while True:
                # the heartbeat: a line each second while the server has nothing to send (queued, a
                # documents answer drafted and checked), so that a cancel is seen within a second
                with engine._http.stream("POST", "/v1/chat/completions", json=self._body, timeout=STREAM_TIMEOUT_S,
                                         headers={"X-Pgpt-Heartbeat": "1"}) as response:
                    if response.status_code >= 400:
                        response.read()
                        if self._left_out_a_turn(response.status_code, response.text):
                            continue  # asked again without the oldest turn (a refusal takes milliseconds)
                        error = refused(engine.url, response.status_code, response.text,
                                        response.headers.get("retry-after"))
                        if self._waited_busy(error):
                            continue
                        raise error
                    try:
                        for data in _events(response.iter_lines(), self._cancel, self.on_state):
                            piece = self._take(data)
                            if piece:
                                yield piece
                    except ServerBusyError as error:  # inside the stream (after heartbeats), before any text
                        if self.result.answer or not self._waited_busy(error):
                            raise
                        continue
                    return
        except httpx.HTTPError as exc:
            raise unreachable(engine.url, exc, during_answer=bool(self.result.answer)) from None

    def _waited_busy(self, error: PgptError) -> bool:
        """Whether a busy server's refusal was waited out, to ask again: after its Retry-After or longer (at
        most BUSY_WAIT_CAP_S), said as the state "busy N" and stopped by ``cancel``, while tries are left. A
        burst of questions on a shared server failed at once, though the server said when to come back."""
        if not isinstance(error, ServerBusyError) or self._retries <= 0:
            return False
        self._waits += 1
        self._retries -= 1
        wait = busy_wait_s(error, self._waits)
        if self.on_state is not None:
            self.on_state(f"busy {wait}")
        if (self._cancel or threading.Event()).wait(wait):
            raise Cancelled("Generation stopped.")
        return True

    def _left_out_a_turn(self, status: int, text: str) -> bool:
        """Whether a refusal of a conversation too long left out its oldest turn (``fit`` only)."""
        from pgpt.runtime.llm.chat import oldest_turn

        if not self._fit or status != 400 or json_error(text).get("code") != "context_length_exceeded":
            return False
        turn = oldest_turn(self._body["messages"])
        if turn is None:  # the last question alone does not fit: the server's refusal stands
            return False
        self._body["messages"] = self._body["messages"][:turn.start] + self._body["messages"][turn.stop:]
        self.result.left_out_turns += 1
        return True

    def _take(self, data: dict[str, Any]) -> str:
        """Fold one event into the result; the text it adds."""
        if "error" in data:  # an error after the answer started travels inside the stream
            error = data["error"] if isinstance(data["error"], dict) else {"message": str(data["error"])}
            title, message = server_title(str(error.get("message", "")))
            if title:  # pgpt-serve's own: "Server stopping: ...", not "answered 500: ..."
                ended = ServerError(f"The server at {self._engine.url} ended the answer: {message}", hint="")
                ended.title = title
                raise ended
            code = str(error.get("code", ""))
            raise refused(self._engine.url, int(code) if code.isdigit() else 500, json.dumps({"error": error}), None)
        result = self.result
        served = str(data.get("model") or "")
        if "@" in served and served != result.model:  # a hot swap: this answer comes from that version
            result.model, result.version = served, served.partition("@")[2]
            self._engine.model = RemoteModel(served, result.version)  # the app's status line follows
        for choice in data.get("choices", []):
            if choice.get("finish_reason"):
                result.finish_reason = choice["finish_reason"]
                result.cached = bool(data.get("cached", False))
                result.repeated = data.get("repeated") is True
                result.timings = dict(data.get("timings") or {})
                result.sources = [_source(s) for s in choice.get("sources") or []]
                result.grounding = dict(data.get("grounding") or {})
            piece = (choice.get("delta") or {}).get("content") or ""
            result.answer += piece
            return str(piece)
        return ""


def connect(settings: Any, model: str = "") -> RemoteEngine:
    """The engine for ``settings.server`` with ``settings.server_key``; ``model`` picks one of the
    server's models (default: the one it serves as ``default``). A key file is read again here:
    the app connects again at the next question after a refusal, and a key fixed in the file
    then works without a restart."""
    key = settings.server_key
    if getattr(settings, "server_key_file", ""):
        from pgpt.runtime.settings import read_key_file

        key = read_key_file(Path(settings.server_key_file), client=True)
    return RemoteEngine(settings.server, key, model, retries=getattr(settings, "server_retries", 5))


def _events(lines: Iterator[str], cancel: threading.Event | None = None,
            on_state: Callable[[str], None] | None = None) -> Iterator[dict[str, Any]]:
    """The ``data:`` events of an SSE stream until ``[DONE]``; Cancelled as soon as any line
    (a heartbeat comment too) arrives after ``cancel`` was set; a heartbeat's state (``: waiting
    drafting 42`` -> "drafting 42", a bare one -> "waiting") goes to ``on_state``."""
    for line in lines:
        if cancel is not None and cancel.is_set():
            raise Cancelled("Generation stopped.")
        if line.startswith(": waiting") and on_state is not None:
            on_state(line[len(": waiting"):].strip() or "waiting")
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        yield json.loads(payload)


def _body(model: str, options: SamplingOptions) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "max_tokens": options.max_new_tokens,
                            "temperature": options.temperature, "top_p": options.top_p, "seed": options.seed}
    if options.top_k:
        body["top_k"] = options.top_k
    if options.repetition_penalty != 1.0:
        body["repeat_penalty"] = options.repetition_penalty
    if options.stop:
        body["stop"] = list(options.stop)
    if options.ignore_eos:
        body["ignore_eos"] = True
    return body


def _source(chunk: dict[str, Any]) -> dict[str, Any]:
    """A PrivateGPT context chunk as the app's and the CLI's sources (source, page, text, score)."""
    metadata = (chunk.get("document") or {}).get("doc_metadata") or {}
    page = str(metadata.get("page_label") or "0")  # null: a file without pages
    return {"source": metadata.get("path") or metadata.get("file_name", "?"), "page": int(page) if page.isdigit() else 0,
            "text": chunk.get("text", ""),
            "score": chunk.get("rank_score", chunk.get("score", 0.0)),  # the in-process search's score
            "doc_id": (chunk.get("document") or {}).get("doc_id", ""), "collection": metadata.get("collection", "")}
