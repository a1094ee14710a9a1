"""Plain chat on the real default model: a long conversation leaves out its oldest turns to fit the
context (the app's Chat mode), and an answer with no text is not cached."""

from __future__ import annotations

import pytest

from pgpt.runtime.errors import ContextLengthError, app_message
from pgpt.runtime.llm.chat import ChatEngine, fit_turns
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings

CONTEXT = 400  # the model's 8,192 tokens made to look small: the same trimming, read in a second


def conversation(turns: int, words: int) -> list[dict[str, str]]:
    """A system prompt, ``turns`` questions of about ``words`` tokens with their answers, then a question."""
    messages = [{"role": "system", "content": "You are brief."}]
    for number in range(turns):
        messages += [{"role": "user", "content": f"Question {number}: " + "harbor " * words},
                     {"role": "assistant", "content": f"Answer {number}: " + "ferry " * words}]
    return messages + [{"role": "user", "content": "What is two plus two?"}]


def test_a_long_chat_leaves_out_its_oldest_turns_and_keeps_the_system_prompt_and_the_question(
        settings: Settings) -> None:
    engine = ChatEngine(settings, use_cache=False)
    try:
        engine.model.max_context = CONTEXT
        messages, options = conversation(4, 60), SamplingOptions(max_new_tokens=64)
        kept, ids, left_out = fit_turns(engine.model, messages, options.max_new_tokens)
        assert 1 <= left_out < 4 and len(ids) + options.max_new_tokens <= CONTEXT
        assert kept[0] == messages[0] and kept[-1] == messages[-1]
        assert kept[1:] == messages[1 + 2 * left_out:]  # whole turns, the newest ones, user first
        assert ids == engine.model.tokenize(engine.model.render_prompt(kept))

        stream = engine.stream(messages, options, fit=True)
        stream.start()
        assert stream.result.left_out_turns == left_out
        with pytest.raises(ContextLengthError):  # without fit (a server's request) it is refused, as before
            engine.stream(messages, options).start()
    finally:
        engine.close()


def test_a_question_too_long_alone_is_refused_without_naming_max_tokens_in_the_app(settings: Settings) -> None:
    engine = ChatEngine(settings, use_cache=False)
    try:
        engine.model.max_context = CONTEXT
        messages = conversation(2, 20)
        messages[-1]["content"] = "harbor " * CONTEXT
        with pytest.raises(ContextLengthError) as refused:
            engine.stream(messages, SamplingOptions(max_new_tokens=64), fit=True).start()
        text = app_message(refused.value).text
        assert "--max-tokens" not in text and "Ctrl+N" not in text and text.startswith("The prompt has ")
        assert text.endswith("Shorten the question: by itself it leaves the answer no room in the model's context "
                             "(older turns are already left out).")
    finally:
        engine.close()


def test_an_answer_with_no_text_is_not_cached(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty answer was cached and replayed as "cached" for the same prompt, saying nothing."""
    engine = ChatEngine(settings)
    try:
        options = SamplingOptions(max_new_tokens=8)
        with monkeypatch.context() as patch:  # the model ends at once: its first token is the end token
            patch.setattr(engine.model, "generate", lambda *args, **kwargs: iter(()))
            assert engine.ask("Say nothing.", options).answer == ""
        again = engine.ask("Say nothing.", options)
        assert not again.cached and again.answer.strip()
        assert engine.ask("Say nothing.", options).cached  # an answer with text still is
    finally:
        engine.close()
