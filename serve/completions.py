"""Chat completions: a request checked and queued, run in its own thread, answered as OpenAI's
JSON or as a server-sent event stream, with PrivateGPT's sources when it asked about documents."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pgpt.runtime.errors import (Cancelled, ConfigError, ContextLengthError, InvalidRequestError, ServerBusyError,
                                 ServerStoppingError, UsageError)
from pgpt.runtime.settings import CHAT_MAX_TOKENS, DOCUMENTS_MAX_TOKENS  # a request without max_tokens: the app's
from pgpt.serve.errors import json_bytes
from pgpt.serve.schemas import ChatCompletionRequest, sampling_fields
from pgpt.serve.sources import context_chunk, shown_source
from pgpt.serve.service import Service, stream_in_thread

HEARTBEAT = b": waiting\n\n"  # an SSE comment: clients skip it; pgpt's reads the state after "waiting"
HEARTBEAT_S = 1.0
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@dataclass(eq=False)  # compared and hashed by identity: the service keeps a set of the running ones
class Completion:
    """One accepted chat completion: its lease on the model, what runs, where its result lands,
    and its log fields."""

    service: Service
    body: ChatCompletionRequest
    lease: Any  # pgpt.runtime.llm.serving.pool.Lease: the version that started it finishes it
    stream: Any  # ChatStream or AskStream: iterate it for text, then read .result
    log: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    legacy: bool = False  # /v1/completions: "text_completion" objects with "text", not chat's "delta"
    # A request without "model" comes from a PrivateGPT client (its SDK never sends one, every OpenAI
    # client must): it gets PrivateGPT's shapes, "completion" objects with message / delta on both
    # routes, which its SDK validates (it refused "chat.completion" and found no text in "text").
    privategpt: bool = False
    # A client that asked for it (pgpt's own, header X-Pgpt-Heartbeat: 1) gets an SSE comment each
    # second the stream is silent (queued, a documents answer being drafted and checked): its Esc
    # closes the stream at once instead of at the next piece. Off by default: PrivateGPT's SDK
    # parses every line of a stream as JSON.
    heartbeat: bool = False
    drafted: int = 0  # pieces of a documents answer's draft so far (the heartbeat tells the client)
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def object_name(self, chunk: bool) -> str:
        """The response's ``object``: OpenAI's chat or legacy names, or PrivateGPT's."""
        if self.privategpt:
            return "completion.chunk" if chunk else "completion"
        if self.legacy:
            return "text_completion"
        return "chat.completion.chunk" if chunk else "chat.completion"

    @property
    def text_choices(self) -> bool:
        """Whether choices carry ``text`` (OpenAI's legacy completions) instead of message / delta."""
        return self.legacy and not self.privategpt

    @property
    def model(self) -> str:
        """``name@version`` of the model that answers."""
        return str(self.lease.ref)

    async def pieces(self) -> AsyncIterator[str]:
        """The answer's text as it is generated; the lease is given back when it ends.

        Raises:
            ServerStoppingError: the server was told to stop while the answer ran.
        """
        self.service.answering.add(self)
        whole = False  # the answer ran to its end: _finished counts it, not _cut_off as well (t74)
        try:
            if self.service.stopping.is_set():
                raise stopping("pgpt-serve is stopping; the answer was not started.")
            if self.body.use_context:
                # A documents answer is checked against the sources once the draft is whole (it may be
                # replaced by a quote or "not found"), so the checked answer is sent, in one piece.
                async for _ in stream_in_thread(lambda: self.stream, self.cancel):
                    self.drafted += 1
                if self.stream.result.answer:
                    yield self.stream.result.answer
            else:
                async for piece in stream_in_thread(lambda: self.stream, self.cancel):
                    yield piece
                    if self.service.stopping.is_set():
                        break
            whole = not self.service.stopping.is_set()
        except ServerBusyError:  # a documents answer queues after its search: counted as a plain chat's is (t74)
            self.service.metrics.rejected.inc()
            raise
        except Cancelled:
            if not self.service.stopping.is_set():
                raise
        finally:
            self.service.answering.discard(self)
            if getattr(self.stream, "reservation", None) is not None:  # not used: a cached or model-less answer
                self.stream.reservation.release()
            self.lease.release()
            if not whole:
                self._cut_off()
        if self.service.stopping.is_set() and self.cancel.is_set():
            raise stopping("pgpt-serve was told to stop, so the answer was cut off before its end.")
        self._finished()

    def heartbeat_line(self) -> bytes:
        """The heartbeat comment, with what the silence is: ": waiting" (queued, or reading the
        prompt), ": waiting drafting N" (a documents answer's draft, N pieces so far; it is sent
        once checked), so that a client waiting 5-26 s sees the answer is under way."""
        return HEARTBEAT if not self.drafted else f": waiting drafting {self.drafted}\n\n".encode()

    def close(self) -> None:
        """Stop the answer (if it runs) and give the model back, and its queue place; harmless when done."""
        self.cancel.set()
        if getattr(self.stream, "reservation", None) is not None:
            self.stream.reservation.release()
        self.lease.release()

    def _finished(self) -> None:
        if "new_tokens" in self.log:  # counted as cut off (the server stopped it): once is all
            return
        result = self.stream.result
        timings = dict(result.timings)
        cache = "documents" if self.body.use_context else "answer"
        self.service.metrics.observe_generation(self.model, timings, result.cached, cache)
        self.log.update(prompt_tokens=timings.get("prompt_tokens", 0), new_tokens=timings.get("new_tokens", 0),
                        ttft_s=timings.get("ttft_s"), cached=result.cached)

    def _cut_off(self) -> None:
        """The log's numbers so far of an answer that did not finish (its client left, or an
        error): the prompt's tokens, the tokens generated until then and the TTFT, when known;
        a cut stream logged "prompt_tokens=- new_tokens=- ttft_s=-"."""
        generation = getattr(self.stream, "generation", None)  # the scheduler's handle of a chat answer
        if "new_tokens" in self.log or generation is None:
            return
        timings = generation.timings
        ttft = timings["ttft_s"] if generation.first_token else None
        self.log.update(prompt_tokens=timings["prompt_tokens"], new_tokens=timings["new_tokens"], ttft_s=ttft)
        # the model read and wrote them for this request: the token counters and the TTFT count a cut
        # answer too (a stream its client cut after 203 tokens changed none of them, t49)
        self.service.metrics.observe_generation(self.model, {"prompt_tokens": timings["prompt_tokens"],
                                                             "new_tokens": timings["new_tokens"] if ttft else 0,
                                                             "ttft_s": ttft}, cached=False, cache="")

    def extras(self) -> dict[str, Any]:
        """pgpt's additions to the final chunk or the response: cached, timings (as llama.cpp)."""
        result = self.stream.result
        extras: dict[str, Any] = {"cached": result.cached, "timings": result.timings}
        if getattr(result, "repeated", False):  # finish_reason is OpenAI's "stop"; pgpt's clients say why
            extras["repeated"] = True
        if self.body.use_context:  # how the answer was checked: ask --json's fields
            home = self.service.settings.home
            extras["grounding"] = {"kind": result.kind, "not_found": result.not_found,
                                   "quotes": [shown_source(home, q) for q in result.quotes],
                                   "closest": [shown_source(home, c) for c in result.closest]}
        return extras

    def usage(self) -> dict[str, int]:
        """OpenAI's usage block."""
        timings = self.stream.result.timings
        prompt, new = int(timings.get("prompt_tokens", 0) or 0), int(timings.get("new_tokens", 0) or 0)
        return {"prompt_tokens": prompt, "completion_tokens": new, "total_tokens": prompt + new}

    def sources(self) -> list[dict[str, Any]] | None:
        """PrivateGPT's ``sources`` (context chunks) of a documents answer, when asked for."""
        if not (self.body.use_context and self.body.include_sources):
            return None
        home = self.service.settings.home
        return [context_chunk(shown_source(home, s)) for s in getattr(self.stream.result, "sources", [])]

    def chunk(self, delta: dict[str, Any] | None, finish: str | None = None,
              on_choice: dict[str, Any] | None = None, **extra: Any) -> bytes:
        """One server-sent event of the stream (``delta`` None: a chunk without choices);
        ``on_choice`` adds fields to the choice (PrivateGPT's sources), ``extra`` to the chunk."""
        content: dict[str, Any] = {"text": (delta or {}).get("content", "")} if self.text_choices else {"delta": delta}
        choices = [] if delta is None else [{"index": 0, **content, "logprobs": None, "finish_reason": finish,
                                             **(on_choice or {})}]
        return sse({"id": self.id, "object": self.object_name(chunk=True), "created": self.created,
                    "model": self.model, "system_fingerprint": self.lease.version, "choices": choices, **extra})


async def start_completion(service: Service, body: ChatCompletionRequest, log: dict[str, Any],
                           legacy: bool = False, heartbeat: bool = False, url: str = "URL") -> Completion:
    """Check the request, lease its model and queue its generation (or find it in the cache);
    ``url`` is the server's address as the request reached it, for the commands a message names.

    Raises:
        InvalidRequestError: a message or setting the server cannot use (400).
        ContextLengthError: the prompt does not fit the model's context (400, both numbers named).
        UsageError: ``use_context`` with nothing indexed (400).
        ModelNotFoundError: no model of that name or version (404).
        ServerBusyError: the queue is full, or every loaded model is busy (503 with Retry-After).
    """
    messages = chat_messages(body)
    try:
        keep_alive = _keep_alive(body.keep_alive)  # checked even where ignored: a typo is still named
        lease = await service.lease(body.model, None if service.serve.keep_alive_fixed else keep_alive)
    except ServerBusyError:  # every loaded model busy at max_loaded: a rejection too, as a full queue's (t49)
        service.metrics.rejected.inc()
        raise
    log["model"] = lease.ref
    cancel = threading.Event()
    try:
        stream = await _prepare(service, body, lease, messages, cancel, url)
    except ServerBusyError:
        lease.release()
        service.metrics.rejected.inc()
        raise
    except BaseException:
        lease.release()
        raise
    privategpt = "model" not in body.model_fields_set
    return Completion(service, body, lease, stream, log, cancel, legacy, privategpt, heartbeat)


async def _prepare(service: Service, body: ChatCompletionRequest, lease: Any, messages: list[dict[str, str]],
                   cancel: threading.Event, url: str = "URL") -> Any:
    """The stream of the answer (``cancel`` stops it), submitted to the scheduler when it is a
    plain chat, so a full queue or a prompt too long is an HTTP error, not one inside a started stream."""
    from pgpt.runtime.llm.sampling import SamplingOptions

    engine = lease.chat
    prompt_tokens = await asyncio.to_thread(_prompt_tokens, engine, messages, body.use_context)
    max_new = _max_new_tokens(body, prompt_tokens, engine.model, service.serve.max_tokens_cap, service.serve.context)
    try:
        options = SamplingOptions(max_new_tokens=max_new, stop=body.stop_strings(), **sampling_fields(body))
    except ConfigError as exc:  # its hint names the CLI's options; here the request's fields are wrong
        raise InvalidRequestError(str(exc)) from None
    if not body.use_context:
        stream = engine.stream(messages, options, cancel)
        await asyncio.to_thread(stream.start)  # the cache, then the scheduler's queue
        return stream
    # an answer from the documents submits after its search: its queue place is held from now on, so a
    # burst is refused here, with a 503, not inside a stream already answered 200 (t75)
    reservation = lease.scheduler.reserve()
    try:
        stream = await _ask_stream(service, body, lease, messages, options, cancel, url)
    except BaseException:
        reservation.release()
        raise
    stream.reservation = reservation
    return stream


async def _ask_stream(service: Service, body: ChatCompletionRequest, lease: Any, messages: list[dict[str, str]],
                      options: Any, cancel: threading.Event, url: str) -> Any:
    """The documents answer's stream, once the index, the collection and the documents asked for are there."""
    from pgpt.runtime.documents.answers import DEFAULT_PASSAGES, FOCUS_SENTENCES, AskStream
    from pgpt.runtime.documents.prompt_room import refuse_oversized_question
    from pgpt.runtime.documents.retrieval import require_collection, require_documents

    engine = lease.chat
    filters = body.context_filter.docs_ids if body.context_filter else None
    # a question or a --context with no room for an answer: a 400 before the stream, not an error inside it (t80)
    await asyncio.to_thread(refuse_oversized_question, engine, messages[-1]["content"], options.max_new_tokens)
    store = await service.store()
    if not await asyncio.to_thread(store.chunk_count):
        # "not found" would say the documents were searched and do not hold it (the CLI: exit 2)
        # the client's command too: the app in client mode shows this to people, not to API clients
        raise UsageError("Nothing is indexed yet on this server, so there is nothing to answer from.",
                         hint=f"Add documents with `pgpt-tui --server {url} ingest PATH` (or `pgpt-tui ingest PATH` "
                              "on the server's machine), or with POST /v1/ingest/file or /v1/ingest/text; or ask "
                              "without use_context.")
    await asyncio.to_thread(require_collection, store, body.collection, ADD_TO_COLLECTION)
    await asyncio.to_thread(require_documents, store, filters, body.collection)
    return AskStream(engine, store, await service.embedder(), messages[-1]["content"], options,
                     collection=body.collection, k=body.passages or DEFAULT_PASSAGES, cancel=cancel,
                     sentences=FOCUS_SENTENCES if body.sentences is None else body.sentences, doc_ids=filters,
                     history=messages[:-1])


def stopping(message: str) -> ServerStoppingError:
    """The error for an answer the server's stop cut; under systemd (which sets INVOCATION_ID) it
    says that systemd brings the server back, otherwise only to send the request again."""
    import os

    if os.environ.get("INVOCATION_ID"):
        return ServerStoppingError(message, hint="Send the request again once the server is back (systemd "
                                                 "restarts it; see `systemctl status pgpt-serve`).")
    return ServerStoppingError(message)


ADD_TO_COLLECTION = "POST /v1/ingest/file (form field collection)"  # how a client fills a collection


def _keep_alive(value: str | int | float | None) -> float | None:
    """A request's keep_alive (ollama's: "5m", 300, -1) in seconds; None keeps the model's."""
    import argparse

    from pgpt.runtime.arg_types import duration_seconds

    if value is None:
        return None
    try:
        return duration_seconds(str(value))
    except argparse.ArgumentTypeError as exc:
        raise InvalidRequestError(f"keep_alive: {exc}.",
                                  hint="Send seconds, or a duration such as 5m or 1h; -1 for never.")


def chat_messages(body: ChatCompletionRequest) -> list[dict[str, str]]:
    """The conversation as the chat template takes it; refuses what it cannot read."""
    messages = []
    for message in body.messages:
        if message.role not in _ROLES:
            raise InvalidRequestError(f"Messages of role {message.role!r} are not supported (tools are not).",
                              hint="Send system, user and assistant messages.")
        if isinstance(message.content, list) and any(p.type != "text" for p in message.content):
            raise InvalidRequestError("Only text content is supported (no images or audio).",
                              hint="Send the message's content as text.")
        messages.append({"role": _ROLES[message.role], "content": message.text()})
    if not any(m["content"].strip() for m in messages):  # asked nothing, a model invents an answer (the CLI: exit 2)
        raise InvalidRequestError("The messages hold no text: every content is empty or only whitespace.",
                          hint="Put the question in a user message's content.")
    if body.use_context and messages[-1]["role"] != "user":
        raise InvalidRequestError("With use_context the last message must be the user's question.",
                          hint="End the messages with a user message.")
    if body.use_context and not messages[-1]["content"].strip():
        raise InvalidRequestError("With use_context the last user message is the question, and it is empty.",
                          hint="Put the question in the last user message's content.")
    return messages


def _prompt_tokens(engine: Any, messages: list[dict[str, str]], use_context: bool) -> int:
    """Tokens of the prompt (for documents: of the question; the passages are fitted later)."""
    if use_context:
        return len(engine.model.tokenize(messages[-1]["content"]))
    return len(engine.model.tokenize(engine.model.render_prompt(messages)))


def _max_new_tokens(body: ChatCompletionRequest, prompt_tokens: int, model: Any, cap: int, server_context: int) -> int:
    """The request's max_tokens within the cap; when none was asked, what fits up to the default.
    A sequence holds ``server_context`` tokens (--context) or the model's, the smaller."""
    context = min(model.max_context, server_context)
    asked = body.max_tokens or body.max_completion_tokens
    room = context - prompt_tokens
    if asked is None:
        wanted = min(DOCUMENTS_MAX_TOKENS if body.use_context else CHAT_MAX_TOKENS, cap, room)
        if wanted >= 1:
            return wanted
        raise ContextLengthError(f"The prompt has {prompt_tokens} tokens, which leaves no room for an answer: "
                                 f"{model.holds(context)}.", hint="Shorten the messages.")
    wanted = min(asked, cap)
    if prompt_tokens + wanted > context:
        # the value sent, and the cap it was lowered to: "max_tokens is 1024" puzzled a client that sent 10**9
        given = f"{wanted}" if wanted == asked else f"{asked}, lowered to this server's cap of {wanted}"
        raise ContextLengthError(
            f"The prompt has {prompt_tokens} tokens and max_tokens is {given}: {prompt_tokens + wanted} tokens, "
            f"but {model.holds(context)}.",
            hint="Shorten the messages or lower max_tokens.")
    return wanted


def sse(data: dict[str, Any]) -> bytes:
    """One ``data:`` event."""
    return b"data: " + json_bytes(data) + b"\n\n"
