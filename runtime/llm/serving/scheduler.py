"""Continuous batching: concurrent requests share one loaded model.

One thread per scheduler runs the model. Each turn of its loop lets waiting requests into free
slots, reads one chunk of one new prompt (batch 1: GroupQueryAttention appends a prompt to
existing keys and values only for a single row), then runs one decode step for every sequence
that is answering, as one batched ONNX Runtime call over the slots' shared KV buffer. So
sequences join and leave between steps, and a long prompt is read a chunk at a time between
decode steps instead of freezing the running streams.

Only pgpt's fused graph (in-place KV buffer) batches; with Optimum's graph the scheduler runs one
request at a time (``parallel`` becomes 1), with the same queue, limits and cancel.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pgpt.runtime.errors import Cancelled, ConfigError, EngineClosedError, ServerBusyError
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.sampling import SamplingOptions, TokenPicker
from pgpt.runtime.llm.serving.limits import SchedulerConfig, SchedulerStats, busy_message
from pgpt.runtime.llm.serving.request import FinishReason, Generation, Reservation
from pgpt.runtime.llm.serving.slots import SlotBuffer
from pgpt.runtime.llm.stopping import LoopGuard, StopFilter
from pgpt.runtime.llm.text import IncrementalDecoder

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Sequence:
    """One admitted or waiting request, as the scheduler's thread sees it."""

    gen: Generation
    prompt: list[int]
    options: SamplingOptions
    picker: TokenPicker
    decoder: IncrementalDecoder
    stops: StopFilter
    loop: LoopGuard
    seen: np.ndarray
    slot: int = -1
    length: int = 0  # positions of this sequence in the KV buffer
    next_token: int = -1  # the last picked token, run by the next decode step
    tokens: Iterator[int] | None = None  # one-at-a-time mode: LanguageModel.generate's iterator

    @property
    def reading(self) -> bool:
        """Still reading its prompt."""
        return self.next_token < 0


class Scheduler:
    """Runs many generations on one ``LanguageModel`` with continuous batching (see the module)."""

    def __init__(self, model: LanguageModel, config: SchedulerConfig | None = None, name: str = "") -> None:
        self.model = model
        self.config = config or SchedulerConfig()
        self.context = min(self.config.context or model.max_context, model.max_context)
        self.batched = model.shares_kv
        self.parallel = self.config.parallel if self.batched else 1
        self._slots = (SlotBuffer(model.past_specs, self.parallel, self.context, model.device)
                       if self.batched else None)
        self._lock = threading.Condition()
        self._waiting: collections.deque[_Sequence] = collections.deque()
        self._by_slot: list[_Sequence | None] = [None] * self.parallel
        self._reservations: list[Reservation] = []  # places held for submits to come (see reserve)
        self._closed = False
        self._ids = itertools.count(1)
        self._counts = collections.Counter[str]()
        self._thread = threading.Thread(target=self._run, name=f"pgpt-scheduler {name}".strip(), daemon=True)
        self._thread.start()

    # The callers' side ----------------------------------------------------------------------

    def reserve(self) -> Reservation:
        """Hold a place in the queue for a submit to come (see Reservation).

        Raises:
            ServerBusyError: as ``submit`` would, counting the places held.
        """
        with self._lock:
            self._refuse_when_full()
            reservation = Reservation()
            self._reservations.append(reservation)
            return reservation

    def _refuse_when_full(self) -> None:
        """ServerBusyError when the running, the waiting and the held places fill the queue (lock held)."""
        if self._closed:
            raise EngineClosedError(f"The engine of {self.model.info.name} was shut down.")
        self._reservations = [r for r in self._reservations if r.held]
        held = self.parallel - self._by_slot.count(None) + len(self._waiting) + len(self._reservations)
        if held >= self.parallel + self.config.max_queue:
            # one total: a request that waits for its prompt to be read holds no slot yet, so
            # "1 running (parallel=4) and 19 waiting (max_queue=16)" read as a contradiction
            raise ServerBusyError(busy_message(held, self.parallel, self.config.max_queue),
                                  limit=f"max_queue={self.config.max_queue}", retry_after_s=self.config.retry_after_s)

    def submit(self, prompt_ids: list[int], options: SamplingOptions,
               cancel: threading.Event | None = None, request_id: str = "",
               reservation: Reservation | None = None) -> Generation:
        """Queue a generation and return its handle at once (in the place ``reservation`` holds, if held).

        Raises:
            ServerBusyError: ``parallel`` sequences run and ``max_queue`` requests wait already.
            ContextLengthError: the prompt and ``max_new_tokens`` do not fit ``context``.
            EngineClosedError: the scheduler was closed (its model unloaded).
        """
        if not prompt_ids:
            raise ConfigError("The prompt has no tokens.", hint="Send at least one message with text.")
        if options.max_new_tokens > self.config.max_tokens_cap:
            options = dataclasses.replace(options, max_new_tokens=self.config.max_tokens_cap)
        self.model.check_context(len(prompt_ids), options.max_new_tokens, self.context)
        generation = Generation(request_id or f"gen-{next(self._ids)}", len(prompt_ids),
                                options.max_new_tokens, cancel)
        sequence = _Sequence(generation, list(prompt_ids), options, TokenPicker(options),
                             IncrementalDecoder(self.model.tokenizer), StopFilter(options.stop),
                             LoopGuard(enabled=not options.ignore_eos), np.asarray(prompt_ids, dtype=np.int64))
        with self._lock:
            if reservation is not None and reservation.held:
                reservation.release()  # its place becomes this sequence's
                if self._closed:
                    raise EngineClosedError(f"The engine of {self.model.info.name} was shut down.")
            else:
                self._refuse_when_full()
            self._waiting.append(sequence)
            self._lock.notify_all()
        return generation

    @property
    def kv_buffer(self) -> SlotBuffer | None:
        """The batch's KV buffer (None for a graph that cannot batch), for memory and device reports."""
        return self._slots

    def stats(self) -> SchedulerStats:
        """Queue depth, running and prefilling sequences, and the counters."""
        with self._lock:
            active = [s for s in self._by_slot if s is not None]
            return SchedulerStats(
                queued=len(self._waiting), running=len(active),
                prefilling=sum(1 for s in active if s.reading), parallel=self.parallel,
                max_queue=self.config.max_queue, decode_steps=self._counts["decode_steps"],
                decode_rows=self._counts["decode_rows"], tokens_generated=self._counts["tokens"],
                prompt_tokens=self._counts["prompt_tokens"], reused_tokens=self._counts["reused_tokens"],
                finished={k[9:]: v for k, v in self._counts.items() if k.startswith("finished:")},
                kv_bytes=self._slots.resident_bytes if self._slots is not None else 0)

    @property
    def idle(self) -> bool:
        """Nothing runs or waits."""
        with self._lock:
            return not self._waiting and all(s is None for s in self._by_slot)

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop the thread; what still runs or waits ends with EngineClosedError."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def release_model(self) -> None:
        """After close: drop the model's sessions and hand their memory back (an unloaded or
        replaced version must not stay in the server's RSS); a thread still stopping keeps them."""
        if not self._thread.is_alive():
            from pgpt.runtime.llm.session import release_freed_memory

            self.model.close()
            release_freed_memory()

    # The scheduler's thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or self._waiting or any(self._by_slot))
                if self._closed:
                    break
                self._admit()
                active = [s for s in self._by_slot if s is not None]
            try:
                self._turn(active)
            except Exception as exc:  # ONNX Runtime failed: those sequences end with its error
                log.exception("generation step failed on %s", self.model.info.name)
                for sequence in active:
                    self._end(sequence, "error", exc)
        closed = EngineClosedError(f"The engine of {self.model.info.name} was shut down.")
        with self._lock:
            pending = list(self._waiting) + [s for s in self._by_slot if s is not None]
            self._waiting.clear()
        for sequence in pending:
            self._end(sequence, "error", closed)

    def _admit(self) -> None:
        """Move waiting requests into free slots (lowest first); the caller holds the lock."""
        for sequence in [s for s in self._waiting if s.gen.cancel_event.is_set()]:
            self._waiting.remove(sequence)
            self._end(sequence, "cancelled")
        while self._waiting and None in self._by_slot:
            sequence = self._waiting.popleft()
            free = [row for row, other in enumerate(self._by_slot) if other is None]
            row, reused = free[0], 0
            if self._slots is not None:
                row, reused = self._slots.best_row(free, sequence.prompt, self.config.reuse_prefix)
                if row != free[0] and self._slots.can_move:  # running rows stay at the top
                    self._slots.swap(row, free[0], reused, len(self._slots.kept[free[0]]))
                    row = free[0]
                self._slots.kept[row] = []
            sequence.slot, sequence.length = row, reused
            self._by_slot[row] = sequence
            sequence.gen.admitted, sequence.gen.reused_tokens = time.perf_counter(), reused
            self._counts["reused_tokens"] += reused

    def _turn(self, active: list[_Sequence]) -> None:
        """Cancels, then one prompt chunk, then one decode step of everything answering."""
        for sequence in active:
            if sequence.gen.cancel_event.is_set():
                self._end(sequence, "cancelled")
        active = [s for s in active if not s.gen.done]
        if not self.batched:
            if active:
                self._one_at_a_time(active[0])
            return
        # the least left to read first (admission order among equals): a client's short question waited
        # for another's 3,000-token prompt to be read whole, 17 s with slots free (t74). The long one
        # waits for the short ones reading beside it, at most --parallel - 1 of them at a time.
        reading = sorted((s for s in active if s.reading), key=lambda s: len(s.prompt) - s.length)
        deadline = time.perf_counter() + self.config.prefill_budget_s
        while reading:  # at least one chunk, then more until the budget is spent
            self._read_prompt(reading[0])
            if not reading[0].reading or reading[0].gen.done:
                reading.pop(0)
            if time.perf_counter() >= deadline:
                break
        answering = [s for s in active if not s.reading and not s.gen.done]
        if answering:
            self._decode(answering)

    def _read_prompt(self, sequence: _Sequence) -> None:
        """Run the next chunk of ``sequence``'s prompt on its row (the prefill graph on the CPU)."""
        start = sequence.length
        part = sequence.prompt[start:start + self.config.prefill_chunk]
        total = start + len(part)
        session = self.model.prefill_session or self.model.session
        logits = self._run_rows(session, np.asarray([part], dtype=np.int64), [total], sequence.slot)
        sequence.length = total
        self._count("prompt_tokens", len(part))
        if total == len(sequence.prompt):
            self._accept(sequence, logits[0, -1])

    def _decode(self, answering: list[_Sequence]) -> None:
        """One token for each answering sequence, in one call over rows 0..highest slot.

        Rows between them that are reading a prompt or free run a harmless dummy token: it is
        written at the row's next position, which that row's next write replaces.
        """
        assert self._slots is not None
        rows = max(s.slot for s in answering) + 1
        ids = np.zeros((rows, 1), dtype=np.int64)
        totals = [len(kept) + 1 for kept in self._slots.kept[:rows]]  # free rows: past what they keep
        for row in range(rows):
            other = self._by_slot[row]
            if other is not None:
                totals[row] = other.length + 1
        for sequence in answering:
            ids[sequence.slot, 0] = sequence.next_token
        logits = self._run_rows(self.model.session, ids, totals, 0)
        self._count("decode_steps", 1)
        self._count("decode_rows", len(answering))
        # Rows are read first: ending a sequence may move another one into its row.
        picked = [(sequence, logits[sequence.slot, -1]) for sequence in answering]
        for sequence in answering:
            sequence.length += 1
        for sequence, row in picked:
            self._accept(sequence, row)

    def _run_rows(self, session: Any, ids: np.ndarray, totals: list[int], first_row: int) -> np.ndarray:
        """One ONNX Runtime call on slot rows ``first_row ..`` with their KV bound in place."""
        assert self._slots is not None
        binding = self.model.bind_step(session, ids, totals)
        self._slots.bind(binding, first_row, ids.shape[0], self.model.present_names)
        session.run_with_iobinding(binding)
        for row, total in enumerate(totals):
            self._slots.wrote(first_row + row, total)
        return binding.get_outputs()[0].numpy()

    def _one_at_a_time(self, sequence: _Sequence) -> None:
        """One token of ``sequence`` through ``LanguageModel.generate`` (graphs that cannot batch)."""
        if sequence.tokens is None:
            sequence.tokens = self.model.generate(sequence.prompt, sequence.options, sequence.gen.cancel_event)
            self._count("prompt_tokens", len(sequence.prompt))
        try:
            token = next(sequence.tokens, None)
        except Cancelled:
            self._end(sequence, "cancelled")
            return
        if token is None:
            self._end(sequence, "stop" if sequence.gen.usage.completion_tokens < sequence.gen.max_tokens else "length")
        else:
            self._take(sequence, token)

    def _accept(self, sequence: _Sequence, logits: np.ndarray) -> None:
        """Pick the next token from ``logits`` and hand it on (or end at end-of-text)."""
        options = sequence.options
        penalized = options.repetition_penalty != 1.0
        token = sequence.picker.pick(logits, sequence.seen if penalized else None)
        if token in self.model.eos_ids and not options.ignore_eos:
            self._end(sequence, "stop")
            return
        if penalized:
            sequence.seen = np.append(sequence.seen, token)
        sequence.next_token = token
        self._take(sequence, token)

    def _take(self, sequence: _Sequence, token: int) -> None:
        """Detokenize ``token``, apply stop strings and the loop guard, end at the limit."""
        self._count("tokens", 1)
        piece, stopped = sequence.stops.feed(sequence.decoder.push(token))
        sequence.gen._emit(piece, token)
        if stopped or sequence.loop.feed(piece):
            sequence.gen.repeated = not stopped
            self._end(sequence, "stop")
        elif sequence.gen.usage.completion_tokens >= sequence.gen.max_tokens:
            self._end(sequence, "length")

    def _end(self, sequence: _Sequence, reason: FinishReason, error: BaseException | None = None) -> None:
        """Finish the generation and free its slot, moving the highest row into the hole."""
        if sequence.gen.done:
            return
        if reason in ("stop", "length"):
            sequence.gen._emit(sequence.stops.flush(), None)
        sequence.gen._finish(reason, error)
        self._count(f"finished:{reason}", 1)
        if isinstance(sequence.tokens, Generator):
            sequence.tokens.close()
        with self._lock:
            if sequence.slot < 0 or self._by_slot[sequence.slot] is not sequence:
                return
            hole, sequence.slot = sequence.slot, -1
            self._by_slot[hole] = None
            if self._slots is None:
                self._lock.notify_all()
                return
            run = sequence.prompt + sequence.gen.tokens  # what the row holds: the positions run so far
            self._slots.kept[hole] = run[:sequence.length] if reason != "error" else []
            highest = max((s.slot for s in self._by_slot if s is not None), default=-1)
            if self._slots.can_move and highest > hole:
                # Fewer rows per decode step from now on, for a copy of the used positions.
                moved = self._by_slot[highest]
                assert moved is not None
                self._slots.swap(hole, highest, len(self._slots.kept[hole]), moved.length)
                self._by_slot[hole], self._by_slot[highest], moved.slot = moved, None, hole
            self._lock.notify_all()

    def _count(self, key: str, amount: int) -> None:
        with self._lock:
            self._counts[key] += amount
