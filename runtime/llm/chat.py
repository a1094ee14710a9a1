"""Chat on an exported model: prompt, answer cache, streaming, timings. Used by CLI and TUI."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pgpt.runtime.llm.answer_cache import AnswerCache, cache_key
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.models import ModelInfo, active_chat_model, find_model
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.runtime.llm.text import IncrementalDecoder


@dataclass
class ChatResult:
    """The outcome of one answer, as printed by `chat --json`."""

    answer: str = ""
    model: str = ""
    provider: str = ""
    cached: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    # "stop" (end of text, a stop string, a loop cut) or "length" (max new tokens reached)
    finish_reason: str = "stop"

    def as_json(self) -> dict[str, Any]:
        """The documented JSON shape."""
        return {
            "answer": self.answer,
            "model": self.model,
            "provider": self.provider,
            "cached": self.cached,
            "timings": self.timings,
        }


class ChatEngine:
    """A loaded chat model plus the answer cache."""

    def __init__(self, settings: Settings, model_name: str = "", use_cache: bool = True) -> None:
        info: ModelInfo = find_model(settings, model_name) if model_name else active_chat_model(settings)
        started = time.perf_counter()
        self.model = LanguageModel(info, settings.provider, settings.threads)
        self.load_s = time.perf_counter() - started
        self.cache = AnswerCache(settings.answer_cache_dir, settings.cache_size_mb) if use_cache else None

    @property
    def provider(self) -> str:
        """cuda or cpu."""
        return self.model.provider.name

    def stream(
        self,
        messages: list[dict[str, str]],
        options: SamplingOptions,
        cancel: threading.Event | None = None,
    ) -> "ChatStream":
        """Start an answer; iterate the returned stream for text pieces, then read ``.result``."""
        return ChatStream(self, messages, options, cancel)

    def ask(self, prompt: str, options: SamplingOptions) -> ChatResult:
        """Answer one user prompt without streaming."""
        stream = self.stream([{"role": "user", "content": prompt}], options)
        for _ in stream:
            pass
        return stream.result

    def close(self) -> None:
        """Release the cache's database."""
        if self.cache is not None:
            self.cache.close()


@contextlib.contextmanager
def engine_loading_beside(settings: Settings, model_name: str = "",
                          use_cache: bool = True) -> Iterator[Callable[[], ChatEngine]]:
    """Load a ChatEngine in a background thread while the caller prepares the rest; yields a
    function that waits for it (and raises what loading raised). The engine is closed at the end.

    Why: a headless ``ask`` spends about 2 s importing LanceDB and 2 s building the model's
    sessions, and ONNX Runtime builds them mostly without holding the GIL: measured on 2 cores,
    embedder + index + chat model took 4.2-4.5 s one after the other and 2.4-2.9 s side by side.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="pgpt-load") as pool:
        loading = pool.submit(ChatEngine, settings, model_name, use_cache)
        try:
            yield loading.result
        finally:
            if loading.exception() is None:  # waits: the model is never left half-built
                loading.result().close()


class ChatStream:
    """Iterates text pieces of one answer; fills ``result`` (timings, cached) when done."""

    def __init__(self, engine: ChatEngine, messages: list[dict[str, str]], options: SamplingOptions,
                 cancel: threading.Event | None) -> None:
        self._engine = engine
        self._messages = messages
        self._options = options
        self._cancel = cancel
        self.result = ChatResult(model=engine.model.info.name, provider=engine.provider)

    def __iter__(self) -> Iterator[str]:
        started = time.perf_counter()
        model = self._engine.model
        prompt = model.render_prompt(self._messages)
        key = cache_key(model=model.model_id, prompt=prompt, params=self._options.as_key())
        cache = self._engine.cache
        hit = cache.get(key) if cache is not None else None
        if hit is not None and isinstance(hit.get("answer"), str):
            self.result.answer, self.result.cached = hit["answer"], True
            self.result.finish_reason = str(hit.get("finish_reason", "stop"))
            self.result.timings = {"ttft_s": 0.0, "decode_tok_s": 0.0,
                                   "total_s": time.perf_counter() - started,
                                   "prompt_tokens": hit.get("prompt_tokens", 0), "new_tokens": 0}
            yield hit["answer"]
            return
        prompt_ids = model.tokenize(prompt)
        yield from self._generate(prompt_ids, started)
        if cache is not None:
            cache.put(key, {"answer": self.result.answer, "prompt_tokens": len(prompt_ids),
                            "finish_reason": self.result.finish_reason})

    def _generate(self, prompt_ids: list[int], started: float) -> Iterator[str]:
        model, options = self._engine.model, self._options
        decoder = IncrementalDecoder(model.tokenizer)
        stops = StopFilter(options.stop)
        loop = LoopGuard(enabled=not options.ignore_eos)  # benchmarks ask for a fixed length
        first = last = 0.0
        count = 0
        cut = False  # a stop string or the loop guard ended the answer
        for token in model.generate(prompt_ids, options, self._cancel):
            last = time.perf_counter()
            first = first or last
            count += 1
            piece, done = stops.feed(decoder.push(token))
            self.result.answer += piece
            if piece:
                yield piece
            if done or loop.feed(piece):
                cut = True
                break
        self.result.finish_reason = "length" if count >= options.max_new_tokens and not cut else "stop"
        tail = stops.flush()
        self.result.answer += tail
        if tail:
            yield tail
        decode_s = last - first
        self.result.timings = {
            "ttft_s": round((first or time.perf_counter()) - started, 4),
            "decode_tok_s": round((count - 1) / decode_s, 2) if count > 1 and decode_s > 0 else 0.0,
            "total_s": round(time.perf_counter() - started, 4),
            "prompt_tokens": len(prompt_ids),
            # prompt tokens whose keys and values the previous answer left in the KV buffer
            "reused_prompt_tokens": model.last_reused_tokens,
            "new_tokens": count,
        }

    async def __aiter__(self) -> AsyncIterator[str]:
        """The same pieces, produced in a worker thread so the event loop stays free."""
        iterator = iter(self)
        done = object()
        while True:
            piece = await asyncio.to_thread(next, iterator, done)
            if piece is done:
                return
            yield piece  # type: ignore[misc]


class StopFilter:
    """Holds back text that may be the start of a stop string; cuts the answer at one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """Return the text safe to show and whether a stop string was reached."""
        if not self._stops:
            return piece, False
        self._pending += piece
        for stop in self._stops:
            index = self._pending.find(stop)
            if index >= 0:
                out, self._pending = self._pending[:index], ""
                return out, True
        keep = max((len(s) - 1 for s in self._stops), default=0)
        keep = next((n for n in range(min(keep, len(self._pending)), 0, -1)
                     if any(s.startswith(self._pending[-n:]) for s in self._stops)), 0)
        out = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(out):]
        return out, False

    def flush(self) -> str:
        """Text still held back when generation ended without a stop string."""
        out, self._pending = self._pending, ""
        return out


class LoopGuard:
    """Ends an answer that has fallen into a loop: the same sentences three times in a row
    (twice for a block of ``LONG_BLOCK_CHARS`` or more).

    Why: small models often repeat one sentence or paragraph until the token limit ("The -d
    option is used to create a new file. ..." over and over), which costs seconds of decoding
    and adds nothing. Only a run of copies one after another counts, so a list whose items
    share a sentence, or a song's chorus between verses, goes on; the repeated block must be at
    least ``MIN_CHARS`` long, and code blocks are left alone (code repeats lines on purpose).
    """

    MIN_CHARS = 24
    COPIES = 3
    LONG_BLOCK_CHARS = 80  # a block this long repeated at once is a loop already
    LONGEST_BLOCK = 8  # sentences or lines
    _UNIT_END = re.compile(r"[.!?](?=\s)|\n")

    def __init__(self, enabled: bool = True) -> None:
        self._enabled = enabled
        self._pending = ""
        self._in_code = False
        self._units: list[str] = []

    def feed(self, piece: str) -> bool:
        """Take the next shown text; True when it ends in copies of one block (see the class)."""
        if not self._enabled:
            return False
        self._pending += piece
        while (end := self._UNIT_END.search(self._pending)) is not None:
            unit = " ".join(self._pending[:end.end()].split())
            self._pending = self._pending[end.end():]
            if unit.startswith("```"):
                self._in_code, self._units = not self._in_code, []
            elif unit and not self._in_code:
                self._units.append(unit)
                if self._looping():
                    return True
        return False

    def _looping(self) -> bool:
        units = self._units
        for size in range(1, min(self.LONGEST_BLOCK, len(units) // 2) + 1):
            block = units[-size:]
            chars = sum(map(len, block))
            copies = 2 if chars >= self.LONG_BLOCK_CHARS else self.COPIES
            if chars >= self.MIN_CHARS and len(units) >= size * copies and all(
                    units[-size * (copy + 1):len(units) - size * copy] == block for copy in range(1, copies)):
                return True
        return False
