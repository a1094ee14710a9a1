"""The loop guard: an answer that repeats itself ends, a list or a song that repeats a line does not."""

from __future__ import annotations

import pytest

from pgpt.runtime.llm.chat import ChatEngine, cut_note
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.serving.scheduler import Scheduler, SchedulerConfig
from pgpt.runtime.models import find_model
from pgpt.runtime.llm.stopping import LoopGuard
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings

TIPS = "".join(f"{n}. Avoid screen number {n} before bed. This can interfere with sleep.\n\n" for n in range(1, 11))
SONG = "".join(f"Verse {n} is about the road to town number {n}.\nWe sing along, we sing along all night long.\n"
               for n in range(1, 5))
CODE = "```python\n" + "    result = compute(value, factor)\n" * 5 + "```\n"


def stops_at(text: str, piece_size: int = 3, enabled: bool = True) -> int | None:
    """The length of ``text`` fed when the guard fired (in pieces the way tokens arrive), or None."""
    guard = LoopGuard(enabled)
    for start in range(0, len(text), piece_size):
        if guard.feed(text[start:start + piece_size]):
            return start + piece_size
    return None


def test_a_sentence_three_times_in_a_row_ends_the_answer_at_the_third() -> None:
    sentence = "The option is used to create a new file. "
    assert stops_at("Intro text here. " + sentence * 2 + "Then something else. ") is None
    fired = stops_at("Intro text here. " + sentence * 6)
    assert fired is not None and len("Intro text here. " + sentence * 3) <= fired < len("Intro text here. " + sentence * 4)


def test_a_short_line_many_times_in_a_row_ends_the_answer() -> None:
    """A server's client got 512 lines of "*" (76 s of decoding): too short for the sentence rule."""
    fired = stops_at("Here is the list:\n" + "*\n" * 200)
    assert fired is not None and fired < len("Here is the list:\n" + "*\n" * (LoopGuard.SHORT_COPIES + 1))
    assert stops_at("Steps:\n" + "".join(f"- step {n}\n" for n in range(40))) is None  # alike, not the same
    assert stops_at("Answers:\n" + "yes\n" * (LoopGuard.SHORT_COPIES - 1) + "no\n") is None


def test_a_run_of_empty_lines_ends_the_answer() -> None:
    """An answer of nothing but newlines ran to the token limit: 512 blank lines in the app (t51)."""
    fired = stops_at("\n" * 600, piece_size=1)
    assert fired is not None and fired <= LoopGuard.SHORT_COPIES
    assert stops_at("".join(f"Part {n} of the guide.\n\n\n\n" for n in range(20))) is None  # paragraphs apart
    assert stops_at("```\n" + "\n" * 40 + "```\n") is None  # blank lines in code are code


def test_a_long_paragraph_twice_in_a_row_ends_the_answer() -> None:
    paragraph = ("The first practical bicycle was built in 1796, but it was not until later that "
                 "practical bicycles began to appear.\n")
    assert len(paragraph) >= LoopGuard.LONG_BLOCK_CHARS
    fired = stops_at(paragraph * 4)
    assert fired is not None and len(paragraph * 2) <= fired < len(paragraph * 3)


@pytest.mark.parametrize("text", [TIPS, SONG, CODE, "Short one.\n" * 3], ids=["list", "chorus", "code", "short"])
def test_repeats_that_are_not_a_loop_go_on(text: str) -> None:
    assert stops_at(text) is None and stops_at(text, piece_size=1) is None


BLOCK = ('The secret codeword of document 7 is a cipher known as the "Ciphertext of the 1944 World War II '
         'Naval Battle of Midway" or more specifically, the "')


def test_a_block_without_a_sentence_end_ends_the_answer_at_its_third_copy() -> None:
    """Probe 6.6: a 35-token block with no sentence end repeated 9 times, up to the token limit."""
    for size in (1, 3, 7):
        fired = stops_at("Intro " + BLOCK * 9, piece_size=size)
        assert fired is not None and len("Intro " + BLOCK * 3) <= fired < len("Intro " + BLOCK * 3) + 2 * size


@pytest.mark.parametrize("text", ["=" * 400, "ha " * 200, "- " * 300, "| --- " * 60 + "|\n",
                                  " ".join(f"item{n}, value {n * 7}" for n in range(120)), "\u2500" * 300],
                         ids=["rule", "laugh", "dashes", "table-rule", "counting", "box-rule"])
def test_runs_that_are_not_a_loop_of_words_go_on(text: str) -> None:
    assert stops_at(text) is None and stops_at(text, piece_size=1) is None


@pytest.mark.parametrize("text", ["Hello there. " + "Leba_" * 60, "#Beer" + "Beer" * 80,
                                  "Hello Ana! " + "\U0001f44f" * 120, "\u54c8" * 120])
def test_a_short_piece_without_spaces_repeated_ends_the_answer(text: str) -> None:
    """A re-test's chat streamed "Leba_Leba_...", "#BeerBeer..." and a tester's "👏👏👏..." (33 s)
    to the 512-token limit."""
    for size in (1, 3):
        fired = stops_at(text, piece_size=size)
        assert fired is not None and fired < len(text) // 2, (text[:20], fired)


def test_a_numbered_list_of_one_item_ends_the_answer() -> None:
    """"28. Apple" ... "103. Apple" ran to the token limit: each line differed by its number (t54)."""
    fruits = "".join(f"{n}. Apple\n" for n in range(28, 104))
    fired = stops_at(fruits)
    assert fired is not None and fruits[:fired].count("Apple") <= LoopGuard.SHORT_COPIES + 1, fired
    distinct = "".join(f"{n}. {name}\n" for n, name in enumerate(
        "Apple Banana Cherry Date Elderberry Fig Grape Honeydew Kiwi Lemon Mango Nectarine Orange Papaya Quince "
        "Raspberry Strawberry Tangerine".split(), start=1))
    assert stops_at(distinct) is None and stops_at(distinct, piece_size=1) is None


def test_a_disabled_guard_never_fires() -> None:
    assert stops_at("The option is used to create a new file. " * 8, enabled=False) is None


def test_the_model_stops_where_its_answer_starts_to_loop(default_models: Settings, settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The default model (fp32, greedy) repeats its explanation of cp -d until the limit: with the
    guard the answer is the same text cut after the repeat, tokens not decoded at all."""
    engine = ChatEngine(settings, "smollm2-135m-instruct-fp32", use_cache=False)
    messages = [{"role": "user", "content": "Explain the -d option of the cp command."}]
    options = SamplingOptions(max_new_tokens=256)
    guarded = engine.stream(messages, options)
    cut = "".join(guarded)
    monkeypatch.setattr(LoopGuard, "feed", lambda self, piece: False)
    unguarded = engine.stream(messages, options)
    full = "".join(unguarded)
    engine.close()
    assert full.startswith(cut) and len(full) > len(cut)
    assert guarded.result.timings["new_tokens"] < unguarded.result.timings["new_tokens"]
    last_paragraph = cut.rstrip().split("\n\n")[-1]
    assert cut.count(last_paragraph) >= 2  # it ended on a repeat
    # ... and says so: a cut answer must not look whole (the app's and the CLI's note)
    assert guarded.result.repeated and guarded.result.finish_reason == "stop"
    assert cut_note(guarded.result) == "cut: the model began repeating itself"
    assert not unguarded.result.repeated and unguarded.result.finish_reason == "length"
    assert cut_note(unguarded.result) == f"cut at the {unguarded.result.timings['new_tokens']}-token limit"


def test_a_scheduled_answer_that_loops_says_so(default_models: Settings) -> None:
    """The server's path: the scheduler's loop guard marks the answer as repeated, as in-process."""
    model = LanguageModel(find_model(default_models, "smollm2-135m-instruct-fp32"), provider="cpu")
    scheduler = Scheduler(model, SchedulerConfig(parallel=2, max_queue=2))
    try:
        engine = ChatEngine.on_scheduler(scheduler, None)
        stream = engine.stream([{"role": "user", "content": "Explain the -d option of the cp command."}],
                               SamplingOptions(max_new_tokens=256))
        text = "".join(stream)
    finally:
        scheduler.close()
    assert stream.result.repeated and stream.result.finish_reason == "stop", text
    assert stream.result.timings["new_tokens"] < 256
