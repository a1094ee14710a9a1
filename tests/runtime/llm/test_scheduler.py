"""Continuous batching on the real default model (int8, with its prefill graph): answers equal to
single-stream generation, sequences joining and leaving between steps, limits, cancel."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from support import BATCH_PROMPTS

from pgpt.runtime.errors import ContextLengthError, EngineClosedError, ServerBusyError
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.llm.serving.request import Generation
from pgpt.runtime.llm.serving.scheduler import Scheduler, SchedulerConfig
from pgpt.runtime.models import find_model

PROMPTS = BATCH_PROMPTS
GREEDY = SamplingOptions(max_new_tokens=40)
NEAR_TIE = 1e-3


@pytest.fixture(scope="module")
def model(default_models) -> LanguageModel:  # type: ignore[no-untyped-def]
    return LanguageModel(find_model(default_models, "smollm2-135m-instruct-int8"), provider="cpu")


@pytest.fixture()
def scheduler(model: LanguageModel) -> Iterator[Scheduler]:
    scheduler = Scheduler(model, SchedulerConfig(parallel=8, max_queue=4))
    yield scheduler
    scheduler.close()


def _ids(model: LanguageModel, text: str) -> list[int]:
    return model.tokenize(model.render_prompt([{"role": "user", "content": text}]))


def _single(model: LanguageModel, ids: list[int], options: SamplingOptions = GREEDY) -> list[int]:
    model.release_kv()  # a fresh buffer: the prompt is read from its start, as the scheduler reads it
    return list(model.generate(ids, options))


def _assert_same_or_near_tie(model: LanguageModel, ids: list[int], single: list[int], batched: list[int]) -> None:
    """Equal tokens, or a first difference where the single stream's top two logits are a near-tie."""
    if batched == single:
        return
    first = next(i for i, (a, b) in enumerate(zip(single + [-1], batched + [-1])) if a != b)
    logits = model.forward_logits(ids + single[:first], prompt_len=len(ids))[-1]
    top2 = np.sort(logits)[-2:]
    assert top2[1] - top2[0] <= NEAR_TIE, f"token {first} differs and is no near-tie: {top2}"


def _wait_all(generations: list[Generation], timeout: float = 300) -> None:
    for generation in generations:
        assert generation.wait(timeout), f"{generation} did not end"


def test_batch_of_8_greedy_answers_equal_single_stream(model: LanguageModel, scheduler: Scheduler) -> None:
    prompts = [_ids(model, text) for text in PROMPTS]
    singles = [_single(model, ids) for ids in prompts]
    generations = [scheduler.submit(ids, GREEDY) for ids in prompts]
    _wait_all(generations)
    for ids, single, generation in zip(prompts, singles, generations):
        assert generation.finish_reason in ("stop", "length") and generation.error is None
        _assert_same_or_near_tie(model, ids, single, generation.tokens)
    exact = sum(g.tokens == s for g, s in zip(generations, singles))
    assert exact >= 6, f"only {exact} of 8 answers are exactly the single-stream ones"
    assert generations[0].text == model.tokenizer.decode(singles[0])
    stats = scheduler.stats()
    assert stats.decode_rows / stats.decode_steps > 4, "the decode steps did not batch the sequences"
    assert scheduler.kv_buffer is not None and scheduler.kv_buffer.devices == {"cpu"}
    assert stats.finished == {"stop": sum(g.finish_reason == "stop" for g in generations),
                              "length": sum(g.finish_reason == "length" for g in generations)}


def test_sequences_join_and_leave_between_steps(model: LanguageModel, scheduler: Scheduler) -> None:
    long_ids, short_ids, late_ids = (_ids(model, PROMPTS[i]) for i in (1, 4, 5))
    long_options = SamplingOptions(max_new_tokens=60, ignore_eos=True)
    short_options = SamplingOptions(max_new_tokens=3, ignore_eos=True)
    # The short one takes row 0 and leaves after 3 tokens: the long one (row 1) moves into its row.
    short = scheduler.submit(short_ids, short_options)
    long = scheduler.submit(long_ids, long_options)
    deadline = time.monotonic() + 120
    while long.usage.completion_tokens < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    late = scheduler.submit(late_ids, GREEDY)  # joins while the long one is answering
    _wait_all([short, long, late])
    assert short.finish_reason == "length" and len(short.tokens) == 3
    assert long.finish_reason == "length" and len(long.tokens) == 60
    for ids, options, generation in ((short_ids, short_options, short), (long_ids, long_options, long),
                                     (late_ids, GREEDY, late)):
        _assert_same_or_near_tie(model, ids, _single(model, ids, options), generation.tokens)
    assert late.admitted > long.first_token  # it joined a running batch
    assert late.first_token < long.last_token  # and answered beside it


@pytest.mark.parametrize("budget", [0.0, SchedulerConfig.prefill_budget_s])
def test_a_long_prompt_is_read_between_decode_steps(model: LanguageModel, budget: float) -> None:
    scheduler = Scheduler(model, SchedulerConfig(parallel=2, prefill_chunk=64, prefill_budget_s=budget))
    try:
        running = scheduler.submit(_ids(model, PROMPTS[3]), SamplingOptions(max_new_tokens=200, ignore_eos=True))
        while running.usage.completion_tokens < 2:
            time.sleep(0.01)
        text = " ".join(f"Line {n}: the ferry leaves the harbour at nine." for n in range(80))
        long_ids = _ids(model, f"{text}\nWhen does the ferry leave?")
        assert len(long_ids) > 800
        before = running.usage.completion_tokens
        reader = scheduler.submit(long_ids, SamplingOptions(max_new_tokens=4))
        _wait_all([reader])
        during = running.usage.completion_tokens - before
        running.cancel()
        # No budget: 13+ chunks of 64 tokens, each followed by a decode step of the running stream.
        # The default budget reads chunks for up to 0.3 s a turn: the stream pauses, never stops.
        least = len(long_ids) // 64 - 1 if budget == 0 else 2
        assert during >= least, f"the running stream got {during} tokens meanwhile"
        _assert_same_or_near_tie(model, long_ids, _single(model, long_ids, SamplingOptions(max_new_tokens=4)),
                                 reader.tokens)
    finally:
        scheduler.close()


def test_a_short_prompt_is_read_before_the_rest_of_a_long_one(model: LanguageModel) -> None:
    """A short question waited until another client's 3,234-token prompt was read whole: 17 s for its
    first token with slots free (t74). One chunk a turn (no budget) makes the order plain."""
    scheduler = Scheduler(model, SchedulerConfig(parallel=2, prefill_chunk=64, prefill_budget_s=0.0))
    try:
        text = " ".join(f"Line {n}: the ferry leaves the harbour at nine." for n in range(80))
        long = scheduler.submit(_ids(model, f"{text}\nWhen does the ferry leave?"), SamplingOptions(max_new_tokens=4))
        while not long.admitted:
            time.sleep(0.005)
        short_ids = _ids(model, PROMPTS[0])
        assert len(short_ids) <= 64
        short = scheduler.submit(short_ids, SamplingOptions(max_new_tokens=4))
        _wait_all([short, long])
        assert short.first_token < long.first_token  # read in the long one's 13 chunks, not after them
        _assert_same_or_near_tie(model, short_ids, _single(model, short_ids, SamplingOptions(max_new_tokens=4)),
                                 short.tokens)
    finally:
        scheduler.close()


def test_full_queue_is_refused_at_once_and_accepted_requests_finish(model: LanguageModel) -> None:
    scheduler = Scheduler(model, SchedulerConfig(parallel=1, max_queue=1, retry_after_s=2))
    try:
        ids = _ids(model, PROMPTS[0])
        running = scheduler.submit(ids, SamplingOptions(max_new_tokens=30, ignore_eos=True))
        waiting = scheduler.submit(ids, SamplingOptions(max_new_tokens=5, ignore_eos=True))
        started = time.perf_counter()
        with pytest.raises(ServerBusyError, match=r"parallel=1.*max_queue=1") as refused:
            scheduler.submit(ids, GREEDY)
        assert time.perf_counter() - started < 0.1
        assert refused.value.limit == "max_queue=1" and refused.value.retry_after_s == 2
        while scheduler.stats().running == 0:  # the scheduler's thread admits the first one
            time.sleep(0.005)
        assert (scheduler.stats().queued, scheduler.stats().running) == (1, 1)
        _wait_all([running, waiting])
        assert [g.finish_reason for g in (running, waiting)] == ["length", "length"]
        assert len(waiting.tokens) == 5 and waiting.timings["queued_s"] > 0
    finally:
        scheduler.close()


def test_cancel_frees_the_slot_within_one_decode_step(model: LanguageModel) -> None:
    scheduler = Scheduler(model, SchedulerConfig(parallel=1, max_queue=2))
    try:
        ids = _ids(model, PROMPTS[2])
        running = scheduler.submit(ids, SamplingOptions(max_new_tokens=500, ignore_eos=True))
        waiting = scheduler.submit(ids, SamplingOptions(max_new_tokens=3, ignore_eos=True))
        while running.usage.completion_tokens < 5:
            time.sleep(0.005)
        steps = scheduler.stats().decode_steps
        running.cancel()
        assert running.wait(30)
        assert scheduler.stats().decode_steps - steps <= 1
        assert running.finish_reason == "cancelled" and len(running.tokens) < 500
        _wait_all([waiting])
        assert waiting.finish_reason == "length"
        cancelled_early = scheduler.submit(ids, SamplingOptions(max_new_tokens=3), cancel=threading.Event())
        cancelled_early.cancel()
        assert cancelled_early.wait(30) and cancelled_early.finish_reason == "cancelled"
    finally:
        scheduler.close()


def test_max_tokens_is_capped_and_too_long_prompts_name_both_numbers(model: LanguageModel) -> None:
    scheduler = Scheduler(model, SchedulerConfig(parallel=2, max_tokens_cap=5, context=96))
    try:
        capped = scheduler.submit(_ids(model, PROMPTS[1]), SamplingOptions(max_new_tokens=50, ignore_eos=True))
        assert capped.max_tokens == 5
        _wait_all([capped])
        assert capped.finish_reason == "length" and len(capped.tokens) == 5
        with pytest.raises(ContextLengthError, match="The prompt has 93 tokens.*holds 96 tokens") as error:
            scheduler.submit([1] * 93, SamplingOptions(max_new_tokens=5))
        assert (error.value.prompt_tokens, error.value.max_tokens, error.value.context) == (93, 5, 96)
    finally:
        scheduler.close()
    with pytest.raises(EngineClosedError):
        scheduler.submit([1, 2, 3], GREEDY)


def test_async_readers_get_the_same_pieces(model: LanguageModel, scheduler: Scheduler) -> None:
    ids = [_ids(model, text) for text in PROMPTS[:3]]

    async def read_all() -> list[str]:
        async def read(generation: Generation) -> str:
            return "".join([piece async for piece in generation])
        return list(await asyncio.gather(*(read(scheduler.submit(i, GREEDY)) for i in ids)))

    texts = asyncio.run(read_all())
    assert texts == [model.tokenizer.decode(_single(model, i)) for i in ids]


def test_stop_strings_end_the_answer_and_free_the_row(model: LanguageModel, scheduler: Scheduler) -> None:
    ids = _ids(model, PROMPTS[0])
    full = scheduler.submit(ids, GREEDY)
    _wait_all([full])
    stop = full.text.split()[3]
    cut = scheduler.submit(ids, SamplingOptions(max_new_tokens=40, stop=(stop,)))
    _wait_all([cut])
    assert cut.finish_reason == "stop" and cut.text == full.text[:full.text.index(stop)]
    assert scheduler.idle and scheduler.stats().running == 0


def test_a_conversations_next_turn_reads_only_what_is_new(model: LanguageModel, scheduler: Scheduler) -> None:
    """A server gets the whole conversation again; the row the first answer left is reused, and the
    answer is the one the in-process chat gives with its kept buffer (the same positions read)."""
    # The prompt alone holds reuse_prefix (64) tokens: how long the first answer is depends on the
    # CPU's arithmetic (20 tokens on an AVX2-only EPYC, where 37 + 20 fell short and nothing was reused).
    turn = [{"role": "system", "content": "You are a travel guide for visitors who read your answers on a small "
             "phone screen while they walk between stations, museums and cafes. Answer in one short sentence "
             "that names one city, and never add a list, a table or a greeting."},
            {"role": "user", "content": "Name a large city in France."}]
    first_ids = model.tokenize(model.render_prompt(turn))
    assert len(first_ids) > scheduler.config.reuse_prefix
    first = scheduler.submit(first_ids, GREEDY)
    _wait_all([first])
    turn += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "And one in Spain?"}]
    next_ids = model.tokenize(model.render_prompt(turn))
    follow = scheduler.submit(next_ids, GREEDY)
    _wait_all([follow])
    assert follow.reused_tokens >= len(first_ids) + len(first.tokens) - 1
    assert follow.timings["reused_prompt_tokens"] == follow.reused_tokens
    model.release_kv()
    assert list(model.generate(first_ids, GREEDY)) == first.tokens
    in_process = list(model.generate(next_ids, GREEDY))  # reads after the prefix its buffer kept
    assert model.last_reused_tokens == follow.reused_tokens and follow.tokens == in_process
    assert scheduler.stats().reused_tokens == follow.reused_tokens


def _resident_share(array: np.ndarray) -> float:
    """The share of ``array``'s pages that are in memory (mincore(2))."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    start = array.ctypes.data // page * page
    pages = (array.ctypes.data + array.nbytes - start + page - 1) // page
    vector = (ctypes.c_ubyte * pages)()
    result = libc.mincore(ctypes.c_void_p(start), ctypes.c_size_t(pages * page), vector)
    assert result == 0, ctypes.get_errno()
    return sum(v & 1 for v in vector) / pages


def test_the_kv_buffer_is_in_memory_from_the_start(model: LanguageModel) -> None:
    # ONNX Runtime's GroupQueryAttention touches a row's whole capacity on first use; faulted in
    # then, the page faults stalled every running stream (0.1-1 s a row on the 2-core VM)
    scheduler = Scheduler(model, SchedulerConfig(parallel=3, context=512))
    try:
        slots = scheduler._slots
        assert slots is not None and slots.capacity == 512
        assert all(_resident_share(array) == 1.0 for array in slots.arrays.values())
        assert scheduler.stats().kv_bytes == slots.reserved_bytes == 3 * 512 * slots.position_bytes
    finally:
        scheduler.close()


def test_a_burst_of_prompts_is_read_before_the_next_decode_step(model: LanguageModel) -> None:
    # Four prompts arrive at once. Within the prompt budget all four are read first and then
    # decoded in lockstep (7 steps for 8 tokens: the first comes from the prompt); with no
    # budget each turn reads one prompt and runs a decode step, 3 steps more.
    for budget, steps in ((10.0, 7), (0.0, 10)):
        scheduler = Scheduler(model, SchedulerConfig(parallel=4, context=512, prefill_budget_s=budget))
        try:
            with scheduler._lock:  # all four wait before the scheduler's thread admits any
                burst = [scheduler.submit(_ids(model, prompt), SamplingOptions(max_new_tokens=8, ignore_eos=True))
                         for prompt in PROMPTS[:4]]
            _wait_all(burst)
            assert all(len(g.tokens) == 8 for g in burst)
            assert scheduler.stats().decode_steps == steps, (budget, scheduler.stats())
        finally:
            scheduler.close()


def test_a_held_place_counts_as_queued_until_its_submit_uses_it(model: LanguageModel) -> None:
    """A documents answer searches before it submits: a burst passed the queue's check at arrival and was
    refused after its search, inside a stream already answered 200 (t75). Its place is held from arrival."""
    scheduler = Scheduler(model, SchedulerConfig(parallel=1, max_queue=1))
    try:
        first, second = scheduler.reserve(), scheduler.reserve()
        with pytest.raises(ServerBusyError, match=r"parallel=1.*max_queue=1"):
            scheduler.reserve()  # refused at arrival, before any search
        ids = _ids(model, PROMPTS[0])
        with pytest.raises(ServerBusyError):
            scheduler.submit(ids, GREEDY)  # a plain chat does not take a held place
        running = scheduler.submit(ids, SamplingOptions(max_new_tokens=4), reservation=first)
        second.release()  # a cached answer, or one found without the model: the place is given back
        waiting = scheduler.submit(ids, SamplingOptions(max_new_tokens=4))
        first.release()  # used already: harmless
        _wait_all([running, waiting])
        assert running.tokens and waiting.tokens
    finally:
        scheduler.close()
