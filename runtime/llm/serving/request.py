"""The handle of one scheduled generation: its text pieces (sync or async), cancel, end state."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(frozen=True)
class Usage:
    """Token counts of one generation, as OpenAI's ``usage`` reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt and completion together."""
        return self.prompt_tokens + self.completion_tokens


class Reservation:
    """A place in the scheduler's queue, held from a request's arrival until it submits (or gives the
    place back): a documents answer searches first, and its queue was checked only at arrival, so a
    burst overfilled it after the search, and the refusal came inside a stream already answered 200 (t75)."""

    TTL_S = 120.0  # a place never used nor given back (a bug, a lost request) frees itself then

    def __init__(self) -> None:
        self._held = True  # False once used by a submit or given back
        self._made = time.monotonic()

    @property
    def held(self) -> bool:
        """Whether the place is still held for its submit."""
        return self._held and time.monotonic() - self._made < self.TTL_S

    def release(self) -> None:
        """Give the place back (harmless when used or given back already)."""
        self._held = False


class Generation:
    """One request's answer as the scheduler produces it.

    Iterate it (``for`` or ``async for``) for text pieces; the iteration ends when the answer
    does (``finish_reason`` then says why) and raises the error when the model failed. The
    scheduler's thread feeds it; any thread or event loop may read it, once.
    """

    def __init__(self, request_id: str, prompt_tokens: int, max_tokens: int,
                 cancel: threading.Event | None = None) -> None:
        self.id = request_id
        self.max_tokens = max_tokens
        self.cancel_event = cancel or threading.Event()
        self.finish_reason: FinishReason | None = None
        self.repeated = False  # the loop guard ended it ("stop"): the model began repeating itself
        self.error: BaseException | None = None
        self.text = ""
        self.tokens: list[int] = []  # the generated token ids (end-of-text is not one of them)
        self.usage = Usage(prompt_tokens, 0)
        self.submitted = time.perf_counter()
        self.admitted = 0.0
        self.reused_tokens = 0  # prompt tokens whose keys and values a free row held already
        self.first_token = 0.0
        self.last_token = 0.0
        self.ended = 0.0
        self._pieces: collections.deque[str] = collections.deque()
        self._changed = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def cancel(self) -> None:
        """Ask the scheduler to stop this generation; its slot is free after the current step."""
        self.cancel_event.set()
        with self._changed:
            self._notify()

    @property
    def done(self) -> bool:
        """Whether the generation ended (any reason)."""
        return self.finish_reason is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the generation ends; False when ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self.finish_reason is not None, timeout)

    @property
    def timings(self) -> dict[str, float]:
        """queued_s (waiting for a slot), ttft_s and total_s from submission, decode_tok_s, tokens."""
        end = self.ended or time.perf_counter()
        count = self.usage.completion_tokens
        decode_s = self.last_token - self.first_token
        return {
            "queued_s": round((self.admitted or end) - self.submitted, 4),
            "ttft_s": round((self.first_token or end) - self.submitted, 4),
            "decode_tok_s": round((count - 1) / decode_s, 2) if count > 1 and decode_s > 0 else 0.0,
            "total_s": round(end - self.submitted, 4),
            "prompt_tokens": self.usage.prompt_tokens,
            "reused_prompt_tokens": self.reused_tokens,
            "new_tokens": count,
        }

    # The scheduler's side -------------------------------------------------------------------

    def _emit(self, piece: str, token: int | None) -> None:
        """A new piece of text (possibly empty), after the generated ``token`` (None: no new token)."""
        now = time.perf_counter()
        with self._changed:
            if token is not None:
                self.first_token = self.first_token or now
                self.last_token = now
                self.tokens.append(token)
                self.usage = Usage(self.usage.prompt_tokens, self.usage.completion_tokens + 1)
            if piece:
                self.text += piece
                self._pieces.append(piece)
                self._notify()

    def _finish(self, reason: FinishReason, error: BaseException | None = None) -> None:
        with self._changed:
            if self.finish_reason is not None:
                return
            self.ended = time.perf_counter()
            self.error, self.finish_reason = error, reason
            self._notify()

    def _notify(self) -> None:
        """Wake blocked readers; the caller holds ``_changed``."""
        self._changed.notify_all()
        for loop, event in self._waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the reader's loop is closed: nobody is waiting there any more
                pass

    # The reader's side ----------------------------------------------------------------------

    def _take(self) -> tuple[list[str], bool]:
        """Pieces not read yet, and whether the generation has ended; the caller holds the lock."""
        pieces = list(self._pieces)
        self._pieces.clear()
        return pieces, self.finish_reason is not None

    def _raise_if_failed(self) -> None:
        if self.finish_reason == "error" and self.error is not None:
            raise self.error

    def __iter__(self) -> Iterator[str]:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pieces) or self.finish_reason is not None)
                pieces, ended = self._take()
            yield from pieces
            if ended:
                self._raise_if_failed()
                return

    async def __aiter__(self) -> AsyncIterator[str]:
        """The same pieces on an event loop: the scheduler wakes this loop, no thread waits."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._changed:
            self._waiters.append(waiter)
        try:
            while True:
                event.clear()
                with self._changed:
                    pieces, ended = self._take()
                for piece in pieces:
                    yield piece
                if ended:
                    self._raise_if_failed()
                    return
                if not pieces:
                    await event.wait()
        finally:
            with self._changed:
                self._waiters.remove(waiter)

    def __repr__(self) -> str:
        return f"Generation({self.id!r}, finish_reason={self.finish_reason!r}, tokens={self.usage.completion_tokens})"

