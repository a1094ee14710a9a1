"""A conversation's next turn reuses the KV buffer the previous answer left: only the new tokens are
read, and the answer is the one PyTorch gives for the whole conversation."""

from __future__ import annotations

import itertools
import threading

import pytest

from pgpt.runtime.llm.chat import ChatEngine
from pgpt.runtime.errors import Cancelled
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.kv_cache import HEADROOM
from pgpt.runtime.models import find_model
from pgpt.runtime.llm.sampling import SamplingOptions

GREEDY = SamplingOptions(max_new_tokens=12)


@pytest.fixture(scope="module")
def model(default_models) -> LanguageModel:  # type: ignore[no-untyped-def]
    return LanguageModel(find_model(default_models, "smollm2-135m-instruct-fp32"), provider="cpu")


def _turn(model: LanguageModel, text: str) -> list[int]:
    return model.tokenize(model.render_prompt([{"role": "user", "content": text}]))


def _follow_up(model: LanguageModel, text: str) -> list[int]:
    """The tokens a chat template adds for a next user message (SmolLM2's ChatML)."""
    return model.tokenize(f"<|im_end|>\n<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n")


def _torch_greedy(torch_llm, ids: list[int], new_tokens: int) -> list[int]:  # type: ignore[no-untyped-def]
    import torch

    with torch.no_grad():
        out = torch_llm.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=new_tokens, do_sample=False)
    return out[0, len(ids):].tolist()


def _answer(model: LanguageModel, ids: list[int], options: SamplingOptions = GREEDY) -> list[int]:
    return list(model.generate(ids, options))


def test_next_turn_reads_only_new_tokens_and_answers_like_pytorch(model: LanguageModel, torch_llm) -> None:  # type: ignore[no-untyped-def]
    first = _turn(model, "Name a large city in France.")
    answer = _answer(model, first, SamplingOptions(max_new_tokens=8, ignore_eos=True))
    second = first + answer + _follow_up(model, "Why is it famous?")
    tokens = _answer(model, second)
    # every token of the first turn but the last answer token (generated, never run) is reused
    assert model.last_reused_tokens == len(first) + len(answer) - 1
    assert tokens == _torch_greedy(torch_llm, second, len(tokens)) and len(tokens) >= 5


def test_a_cancelled_answer_leaves_only_what_was_computed(model: LanguageModel, torch_llm) -> None:  # type: ignore[no-untyped-def]
    first = _turn(model, "Write a short poem about the sea.")
    cancel, produced = threading.Event(), []
    with pytest.raises(Cancelled):
        for token in model.generate(first, SamplingOptions(max_new_tokens=50, ignore_eos=True), cancel):
            produced.append(token)
            if len(produced) == 4:
                cancel.set()
    second = first + produced + _follow_up(model, "Now one about the mountains.")
    tokens = _answer(model, second)
    assert model.last_reused_tokens == len(first) + 3
    assert tokens == _torch_greedy(torch_llm, second, len(tokens))


def test_a_longer_next_turn_grows_the_buffer(model: LanguageModel, torch_llm) -> None:  # type: ignore[no-untyped-def]
    first = _turn(model, "Say hello.")
    answer = _answer(model, first, SamplingOptions(max_new_tokens=4, ignore_eos=True))
    pasted = " ".join(["The licence grants a perpetual, worldwide, royalty-free copyright licence."] * 30)
    second = first + answer + _follow_up(model, f"Summarize this: {pasted}")
    assert len(second) > len(first) + 4 + HEADROOM  # more than the first buffer holds
    tokens = _answer(model, second, SamplingOptions(max_new_tokens=8))
    assert model.last_reused_tokens == len(first) + len(answer) - 1
    assert tokens == _torch_greedy(torch_llm, second, len(tokens))


def test_a_different_conversation_starts_fresh_where_it_differs(model: LanguageModel) -> None:
    _answer(model, _turn(model, "What is the capital of Italy?"))
    other = _turn(model, "Explain photosynthesis briefly.")
    reused = _answer(model, other)
    assert 0 < model.last_reused_tokens < len(other)  # the template's system text only
    model.release_kv()  # a cold start, for the reference answer
    assert _answer(model, other) == reused and model.last_reused_tokens == 0


def test_generations_side_by_side_never_share_a_buffer(model: LanguageModel) -> None:
    a, b = _turn(model, "Count from one to five."), _turn(model, "List three colours.")
    alone = (_answer(model, a), _answer(model, b))
    together: tuple[list[int], list[int]] = ([], [])
    # both generators run at once, interleaved token by token
    for x, y in itertools.zip_longest(model.generate(a, GREEDY), model.generate(b, GREEDY)):
        together[0].extend([] if x is None else [x])
        together[1].extend([] if y is None else [y])
    assert together == alone


def test_chat_timings_report_the_reused_tokens(settings) -> None:  # type: ignore[no-untyped-def]
    engine = ChatEngine(settings, "smollm2-135m-instruct-int8", use_cache=False)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    stream = engine.stream(messages, SamplingOptions(max_new_tokens=16))
    messages.append({"role": "assistant", "content": "".join(stream)})
    assert stream.result.timings["reused_prompt_tokens"] == 0
    messages.append({"role": "user", "content": "And of Spain?"})
    stream = engine.stream(messages, SamplingOptions(max_new_tokens=16))
    answer = "".join(stream)
    timings = stream.result.timings
    assert timings["prompt_tokens"] - timings["reused_prompt_tokens"] < 16  # the new message only
    assert timings["reused_prompt_tokens"] > 20 and "Madrid" in answer


def test_a_cancel_stops_a_long_prompt_between_chunks_and_leaves_a_sound_buffer(model: LanguageModel,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1.5B model read its whole prompt for 8 s after Ctrl-C (t53): a cancel now stops between
    256-token chunks, and the buffer claims only the tokens it holds for certain."""
    pasted = " ".join(["The licence grants a perpetual, worldwide, royalty-free copyright licence."] * 60)
    prompt = _turn(model, f"Summarize this: {pasted}")
    assert len(prompt) > 600  # three chunks at least
    cancel, runs = threading.Event(), []
    real_run = model._run

    def first_chunk_then_cancel(*args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(1)
        cancel.set()  # as Ctrl-C would, while the first chunk is read
        return real_run(*args, **kwargs)

    monkeypatch.setattr(model, "_run", first_chunk_then_cancel)
    with pytest.raises(Cancelled):
        next(model.generate(prompt, GREEDY, cancel))
    assert len(runs) == 1
    monkeypatch.undo()
    after = _answer(model, prompt)  # reuses only what the buffer holds for certain
    model.release_kv()
    assert _answer(model, prompt) == after
