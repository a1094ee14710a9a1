"""How a completion is answered: as a server-sent event stream (with heartbeats while it waits) or
as one JSON object; and a plain request cancelled when its client disconnects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from pgpt.runtime.errors import Cancelled
from pgpt.serve.completions import HEARTBEAT_S, Completion, sse
from pgpt.serve.errors import describe_error


async def event_stream(completion: Completion) -> AsyncIterator[bytes]:
    """The SSE body: a role chunk, text chunks, a final chunk with finish_reason (plus cached,
    timings and sources), usage when asked, ``[DONE]``; an error after the start is sent as an
    ``{"error": ...}`` event, which the openai client raises as an APIError."""
    if not completion.text_choices:  # chat's first chunk names the role; a text completion has none
        yield completion.chunk({"role": "assistant", "content": ""})
    try:
        async for piece in _beating(completion.pieces(), HEARTBEAT_S if completion.heartbeat else None):
            if piece is None:
                yield completion.heartbeat_line()
                continue
            # a documents answer's one piece comes once it is checked: its sources are known, and
            # PrivateGPT's scripts read them from the content chunks (they were only on the last: t73)
            with_sources = completion.sources() if completion.body.use_context else None
            yield completion.chunk({"content": piece}, None, {"sources": with_sources} if with_sources else None)
    except Exception as exc:  # headers are gone: the error travels inside the stream
        status, payload, _ = describe_error(exc)
        completion.log["status"] = status
        yield sse(payload) + b"data: [DONE]\n\n"
        return
    sources = completion.sources()
    yield completion.chunk({}, completion.stream.result.finish_reason,
                           {"sources": sources} if sources is not None else None, **completion.extras())
    options = completion.body.stream_options
    if options is not None and options.include_usage:
        yield completion.chunk(None, usage=completion.usage())
    yield b"data: [DONE]\n\n"


async def _beating(pieces: AsyncIterator[str], every_s: float | None) -> AsyncIterator[str | None]:
    """``pieces``, with None after each ``every_s`` seconds without one (None: never). The next
    piece is awaited as a task, not under a timeout, which would cancel the generator."""
    if every_s is None:
        async for piece in pieces:
            yield piece
        return
    waiting: asyncio.Future[str] | None = None
    try:
        while True:
            waiting = waiting or asyncio.ensure_future(pieces.__anext__())
            done, _ = await asyncio.wait({waiting}, timeout=every_s)
            if not done:
                yield None
                continue
            try:
                piece = waiting.result()
            except StopAsyncIteration:
                return
            waiting = None
            yield piece
    finally:  # the stream ended or its client left: the generation stops, its slot is given back
        if waiting is not None and not waiting.done():
            waiting.cancel()
            with contextlib.suppress(BaseException):
                await waiting
        await pieces.aclose()  # type: ignore[attr-defined]


class CompletionStream(StreamingResponse):
    """The SSE response of a completion; however it ends (done, client gone before or during the
    stream), the sequence is stopped and its queue place or slot given back."""

    def __init__(self, completion: Completion) -> None:
        super().__init__(event_stream(completion), media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.completion = completion

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import anyio

        try:
            await super().__call__(scope, receive, send)
        finally:
            self.completion.cancel.set()
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
            self.completion.close()


async def complete(completion: Completion) -> dict[str, Any]:
    """The whole answer as one ``chat.completion`` object (``text_completion`` for /v1/completions)."""
    text = "".join([piece async for piece in completion.pieces()])
    result = completion.stream.result
    content: dict[str, Any] = ({"text": result.answer or text} if completion.text_choices else
                               {"message": {"role": "assistant", "content": result.answer or text}})
    choice: dict[str, Any] = {"index": 0, **content, "logprobs": None, "finish_reason": result.finish_reason}
    sources = completion.sources()
    if sources is not None:
        choice["sources"] = sources
    return {"id": completion.id, "object": completion.object_name(chunk=False), "created": completion.created,
            "model": completion.model, "system_fingerprint": completion.lease.version,
            "choices": [choice], "usage": completion.usage(), **completion.extras()}


async def until_disconnected(receive: Any, work: Any) -> Any:
    """Run the coroutine ``work`` unless the client disconnects first (then it is cancelled and
    Cancelled is raised): vLLM's ``with_cancellation``, since a plain response never notices."""
    from pgpt.serve.limits import client_gone

    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(client_gone(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise Cancelled("The client closed the connection before the answer was complete.")
    return task.result()
