"""Chat templates in the sandbox, incremental detokenization, stop strings, sampling options."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pgpt.runtime.llm.stopping import StopFilter
from pgpt.runtime.errors import TemplateError
from pgpt.runtime.llm.sampling import SamplingOptions, TokenPicker
from pgpt.runtime.llm.text import IncrementalDecoder, load_tokenizer, render_chat


def test_template_renders_messages() -> None:
    template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
    out = render_chat(template, [{"role": "user", "content": "hi"}], {"bos_token": "<s>"})
    assert out == "<user>hi<assistant>"


def test_template_injection_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    payload = "{{ cycler.__init__.__globals__.os.popen('touch " + str(tmp_path / "pwned") + "').read() }}"
    with pytest.raises(TemplateError):
        render_chat(payload, [{"role": "user", "content": "hi"}], {})
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("template, words", [
    ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}hi", "more than 2 s"),
    ("{% set s = 'ab' * 40000 %}{% for c in s %}{% for d in s %}{% endfor %}{% endfor %}", "more than 2 s"),
    ("{{ range(10**9)|list|length }}", "too much"),
    ("{{ 'a' * 10**9 }}", "too much"),
    ("{{ 7 ** 100000000 }}", "too much"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "too much"),
    ("{% for i in range(99999) %}{{ 'x' * 99 }}{% endfor %}", "characters"),
], ids=["nested-loops", "nested-string-loops", "huge-range", "huge-string", "huge-power", "recursion", "huge-output"])
def test_a_hostile_template_is_stopped_in_time(template: str, words: str) -> None:
    """Probe 4.15: nested loops of range(99999) hung `chat`; range(10**9) was "a bug in pgpt"."""
    started = time.perf_counter()
    with pytest.raises(TemplateError, match="chat template") as caught:
        render_chat(template, [{"role": "user", "content": "hi"}], {})
    assert words in str(caught.value) and time.perf_counter() - started < 6


def test_the_limits_leave_real_templates_as_they_were(settings) -> None:  # type: ignore[no-untyped-def]
    """The default model's own template renders the same text as plain Jinja's sandbox, and a
    tracer set before (a debugger, coverage) is back afterwards."""
    import sys

    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from pgpt.runtime.models import find_model

    template = (find_model(settings, "smollm2-135m-instruct-fp32").path / "chat_template.jinja").read_text()
    messages = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"message {n}"} for n in range(40)]
    special = {"bos_token": "", "eos_token": "<|im_end|>"}
    plain = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(template)
    tracer = lambda *args: None  # noqa: E731
    sys.settrace(tracer)
    try:
        text = render_chat(template, messages, special)
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)
    assert text == plain.render(messages=messages, add_generation_prompt=True, **special)


def test_incremental_decoder_keeps_multibyte_characters(settings) -> None:  # type: ignore[no-untyped-def]
    from pgpt.runtime.models import find_model

    tokenizer = load_tokenizer(find_model(settings, "smollm2-135m-instruct-fp32").path)
    text = "Déjà vu: 東京 is big 🙂 and so is Zürich."
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    decoder = IncrementalDecoder(tokenizer)
    pieces = [decoder.push(i) for i in ids]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_stop_filter_cuts_and_holds_back() -> None:
    stop = StopFilter(("<|im_end|>",))
    shown = []
    for piece in ["Paris", " is", " nice<|im", "_end|> tail"]:
        out, done = stop.feed(piece)
        shown.append(out)
        if done:
            break
    assert "".join(shown) == "Paris is nice" and done


def test_greedy_and_seeded_sampling() -> None:
    logits = np.array([0.1, 3.0, 2.9, -1.0], dtype=np.float32)
    assert TokenPicker(SamplingOptions()).pick(logits) == 1
    sampled = [TokenPicker(SamplingOptions(temperature=1.0, seed=7)).pick(logits) for _ in range(3)]
    assert len(set(sampled)) == 1  # same seed, same choice
    options = SamplingOptions(temperature=1.0, top_k=1, seed=1)
    assert all(TokenPicker(options).pick(logits) == 1 for _ in range(5))
    penalized = TokenPicker(SamplingOptions(repetition_penalty=2.0)).pick(logits, np.array([1]))
    assert penalized == 2
