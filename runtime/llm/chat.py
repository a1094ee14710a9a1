"""Chat on an exported model: prompt, answer cache, streaming, timings. Used by CLI and TUI."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pgpt.runtime.errors import Cancelled, StorageError, user_message
from pgpt.runtime.llm.answer_cache import AnswerCache, cache_key
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.models import ModelInfo, active_chat_model, find_model
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.runtime.llm.stopping import LoopGuard, StopFilter
from pgpt.runtime.llm.text import IncrementalDecoder

if TYPE_CHECKING:
    from pgpt.runtime.llm.serving.request import Generation
    from pgpt.runtime.llm.serving.scheduler import Scheduler


@dataclass
class ChatResult:
    """The outcome of one answer, as printed by `chat --json`."""

    answer: str = ""
    model: str = ""
    provider: str = ""
    cached: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    version: str = ""  # the export that answered (pgpt.runtime.versions)
    finish_reason: str = "stop"  # stop, or length when max_new_tokens ended the answer
    repeated: bool = False  # the loop guard ended it (finish_reason "stop"): it began repeating itself
    left_out_turns: int = 0  # the oldest turns not sent, to fit the context (``stream(fit=True)``)

    def as_json(self) -> dict[str, Any]:
        """The documented JSON shape."""
        return {
            "answer": self.answer,
            "model": self.model,
            "version": self.version,
            "provider": self.provider,
            "cached": self.cached,
            "finish_reason": self.finish_reason,
            "repeated": self.repeated,
            "timings": self.timings,
        }


def cut_note(result: Any) -> str:
    """Why an answer (a ChatResult or a documents answer) ended before the model finished it, for
    the user; "" when it finished. A cut answer must not look whole."""
    if getattr(result, "repeated", False):
        return "cut: the model began repeating itself"
    if result.finish_reason == "length":
        count = int(result.timings.get("new_tokens", 0) or 0)
        return f"cut at the {count}-token limit" if count else "cut at the token limit"
    return ""


class ChatEngine:
    """A loaded chat model plus the answer cache; answers run on the model directly, or through a
    scheduler shared with other requests (``on_scheduler``, what a server's model pool builds)."""

    def __init__(self, settings: Settings, model_name: str = "", use_cache: bool = True) -> None:
        info: ModelInfo = find_model(settings, model_name) if model_name else active_chat_model(settings)
        started = time.perf_counter()
        model = LanguageModel(info, settings.provider, settings.threads)
        self._warnings: list[str] = []
        cache = self._open_cache(settings) if use_cache else None
        self._setup(model, cache, None, time.perf_counter() - started, owns_cache=True)

    @classmethod
    def on_scheduler(cls, scheduler: "Scheduler", cache: AnswerCache | None) -> "ChatEngine":
        """An engine whose answers go through ``scheduler`` (batched with other requests) and
        share ``cache``, which the caller owns and closes."""
        engine = cls.__new__(cls)
        engine._warnings = []
        engine._setup(scheduler.model, cache, scheduler, 0.0, owns_cache=False)
        return engine

    def _setup(self, model: LanguageModel, cache: AnswerCache | None, scheduler: "Scheduler | None",
               load_s: float, owns_cache: bool) -> None:
        self.model, self.cache, self.scheduler, self.load_s = model, cache, scheduler, load_s
        self._owns_cache = owns_cache

    def _open_cache(self, settings: Settings) -> AnswerCache | None:
        """The answer cache, or None with a warning when its folder cannot be written: answers
        still work without it."""
        try:
            cache = AnswerCache(settings.answer_cache_dir, settings.cache_size_mb)
        except StorageError as fault:
            message = user_message(fault)
            self._warnings.append(f"{message.title}: {message.text} Answers are not cached until then "
                                  "(--no-cache hides this warning).")
            return None
        return cache

    def take_warnings(self) -> list[str]:
        """What the user should be told and was not yet (the cache folder is read-only, a damaged
        cache was moved aside), each once."""
        found = self._warnings + (self.cache.warnings if self.cache is not None else [])
        self._warnings = []
        if self.cache is not None:
            self.cache.warnings = []
        return found

    @property
    def provider(self) -> str:
        """cuda or cpu."""
        return self.model.provider.name

    def cache_for(self, options: SamplingOptions) -> Any:
        """The answer cache when ``options`` give the same answer to the same prompt (greedy, or
        sampled with a seed); None for a sampled answer without a seed, which is drawn afresh."""
        return self.cache if options.cacheable else None

    def stream(
        self,
        messages: list[dict[str, str]],
        options: SamplingOptions,
        cancel: threading.Event | None = None,
        fit: bool = False,
        cache_tag: str | None = None,
        reservation: Any = None,
    ) -> "ChatStream":
        """Start an answer; iterate the returned stream for text pieces, then read ``.result``.

        ``fit``: leave the oldest whole turns out until the prompt and the answer fit the context (a
        chat app's long conversation); without it a prompt too long is refused, as a server must.
        ``cache_tag``: the answer cache's tag for it (DOCUMENTS for a draft from document passages,
        which a forget drops).
        """
        stream = ChatStream(self, messages, options, cancel, fit, cache_tag)
        stream.reservation = reservation  # the queue place a server held for it since it arrived
        return stream

    def ask(self, prompt: str, options: SamplingOptions) -> ChatResult:
        """Answer one user prompt without streaming."""
        stream = self.stream([{"role": "user", "content": prompt}], options)
        for _ in stream:
            pass
        return stream.result

    @property
    def context(self) -> int:
        """The tokens one sequence holds here: the model's window, or a server's smaller --context (its
        scheduler's): documents answers fitted to the window overflowed `pgpt-serve --context 512` (t80)."""
        return self.scheduler.context if self.scheduler is not None else self.model.max_context

    def close(self) -> None:
        """Release the cache's database and the model (when this engine loaded them); an engine
        on a scheduler leaves both to the pool that owns them."""
        if self.cache is not None and self._owns_cache:
            self.cache.close()
        if self.scheduler is None:
            from pgpt.runtime.llm.session import release_freed_memory

            self.model.close()
            release_freed_memory()


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


def fit_turns(model: LanguageModel, messages: list[dict[str, str]],
              max_new_tokens: int) -> tuple[list[dict[str, str]], list[int], int]:
    """The newest turns of ``messages`` whose prompt leaves ``max_new_tokens`` of the context free.

    The system messages and the last question are always kept; the oldest question is left out
    with its answer, so the template still sees user and assistant alternate. A last question
    that does not fit alone is left to ``check_context`` to refuse.

    Returns:
        The messages kept, their prompt's token ids, and how many questions were left out.
    """
    kept, left_out = list(messages), 0
    while True:
        ids = model.tokenize(model.render_prompt(kept))
        turn = oldest_turn(kept)
        if len(ids) + max_new_tokens <= model.max_context or turn is None:
            return kept, ids, left_out
        del kept[turn]
        left_out += 1


def oldest_turn(messages: list[dict[str, str]]) -> slice | None:
    """Where the oldest question and its answers stand, or None when only the last question is left
    (``fit_turns``, and a client of pgpt-serve, whose server refuses a conversation too long)."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    first = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    if len(users) < 2 or first >= users[-1]:
        return None
    return slice(first, next(i for i in users if i > first))


def cached_answer_tokens(model: LanguageModel, record: dict[str, Any]) -> int:
    """The completion tokens of a cached answer: the count stored with it, or (entries written
    before counts were stored, and the similar-question cache, which keeps none) its text's tokens.

    Args:
        model: The chat model that wrote the answer (its tokenizer counts the text).
        record: The cache entry; ``answer`` is its text.
    """
    stored = record.get("new_tokens")
    if isinstance(stored, int) and not isinstance(stored, bool) and stored >= 0:
        return stored
    return len(model.tokenize(str(record.get("answer", ""))))


class ChatStream:
    """Iterates text pieces of one answer; fills ``result`` (timings, cached) when done.

    ``start()`` (called by the iteration when not called before) checks the answer cache and,
    through a scheduler, submits the generation: so a server gets ServerBusyError or
    ContextLengthError before it starts its response. Through a scheduler, a cancelled answer
    raises ``Cancelled`` like a direct one, and ``generation`` is the scheduler's handle.
    """

    def __init__(self, engine: ChatEngine, messages: list[dict[str, str]], options: SamplingOptions,
                 cancel: threading.Event | None, fit: bool = False, cache_tag: str | None = None) -> None:
        self._engine = engine
        self._messages = messages
        self._fit = fit
        self._options = options
        self._cancel = cancel or threading.Event()
        self._started = 0.0
        self._key = ""
        self._cache_tag = cache_tag
        self._prompt_ids: list[int] = []
        self.generation: "Generation | None" = None
        self.reservation: Any = None  # a scheduler's Reservation: submitted in its place
        self.result = ChatResult(model=engine.model.info.name, provider=engine.provider,
                                 version=engine.model.info.version)

    def cancel(self) -> None:
        """Stop the answer (between two tokens)."""
        self._cancel.set()
        if self.generation is not None:
            self.generation.cancel()

    def start(self) -> None:
        """Look the answer up in the cache; on a miss check the context and, through a scheduler,
        submit the generation (once; blocking for a moment: the cache is a SQLite file).

        Raises:
            ContextLengthError: the prompt and answer do not fit.
            ServerBusyError: the scheduler's queue is full.
        """
        if self._started:
            return
        self._started = time.perf_counter()
        model = self._engine.model
        if self._fit:
            self._messages, self._prompt_ids, self.result.left_out_turns = fit_turns(
                model, self._messages, self._options.max_new_tokens)
        prompt = model.render_prompt(self._messages)
        self._key = cache_key(model=model.model_id, prompt=prompt, params=self._options.as_key())
        cache = self._engine.cache_for(self._options)
        hit = cache.get(self._key) if cache is not None else None
        if hit is not None and isinstance(hit.get("answer"), str):
            self.result.answer, self.result.cached = hit["answer"], True
            self.result.finish_reason = str(hit.get("finish_reason", "stop"))  # "length" stays "length"
            self.result.repeated = hit.get("repeated") is True
            self.result.timings = {"ttft_s": 0.0, "decode_tok_s": 0.0,
                                   "total_s": time.perf_counter() - self._started,
                                   "prompt_tokens": hit.get("prompt_tokens", 0), "reused_prompt_tokens": 0,
                                   "new_tokens": cached_answer_tokens(model, hit)}
            return
        self._prompt_ids = self._prompt_ids or model.tokenize(prompt)
        if self._engine.scheduler is None:
            model.check_context(len(self._prompt_ids), self._options.max_new_tokens)
        else:
            self.generation = self._engine.scheduler.submit(self._prompt_ids, self._options, self._cancel,
                                                            reservation=self.reservation)

    def _remember(self) -> None:
        cache = self._engine.cache_for(self._options)
        # An empty answer is not kept: replayed, it looked like an answer ("cached") that said nothing.
        if cache is not None and self.result.answer.strip() and self.result.finish_reason in ("stop", "length"):
            cache.put(self._key, {"answer": self.result.answer, "prompt_tokens": len(self._prompt_ids),
                                  "new_tokens": int(self.result.timings.get("new_tokens", 0)),
                                  "finish_reason": self.result.finish_reason, "repeated": self.result.repeated},
                      tag=self._cache_tag)

    def __iter__(self) -> Iterator[str]:
        self.start()
        if self.result.cached:
            yield self.result.answer
            return
        if self.generation is None:
            yield from self._generate(self._prompt_ids, self._started)
        else:
            try:
                for piece in self.generation:
                    self.result.answer += piece
                    yield piece
            finally:  # the reader went away (closed this iterator): free the slot
                if not self.generation.done:
                    self.generation.cancel()
            self._scheduled_end()
        self._remember()

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
                cut, self.result.repeated = True, not done
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

    def _scheduled_end(self) -> None:
        """Fill ``result`` from the scheduler's handle; a cancelled answer raises Cancelled."""
        generation = self.generation
        assert generation is not None
        self.result.finish_reason = generation.finish_reason or ""
        self.result.repeated = generation.repeated
        self.result.timings = {
            **generation.timings, "ttft_s": round((generation.first_token or time.perf_counter()) - self._started, 4),
            "total_s": round(time.perf_counter() - self._started, 4)}
        if generation.finish_reason == "cancelled":
            raise Cancelled("Generation stopped.")

    async def __aiter__(self) -> AsyncIterator[str]:
        """The same pieces on an event loop. Through a scheduler the loop is woken per piece;
        a direct answer is produced in a worker thread so the loop stays free."""
        if self._engine.scheduler is None:
            iterator = iter(self)
            done = object()
            while True:
                piece = await asyncio.to_thread(next, iterator, done)
                if piece is done:
                    return
                yield piece  # type: ignore[misc]
        if not self._started:
            await asyncio.to_thread(self.start)
        if self.result.cached:
            yield self.result.answer
            return
        assert self.generation is not None
        try:
            async for piece in self.generation:
                self.result.answer += piece
                yield piece
        finally:  # the client went away (the server closed this iterator): free the slot
            if not self.generation.done:
                self.generation.cancel()
        self._scheduled_end()
        await asyncio.to_thread(self._remember)
