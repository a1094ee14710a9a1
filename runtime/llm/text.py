"""Tokenizer loading, incremental detokenization and sandboxed chat templates."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import ContextLengthError, ModelIntegrityError, TemplateError


def load_tokenizer(folder: Path) -> Any:
    """Load ``tokenizer.json`` with the `tokenizers` library (no transformers at run time)."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on a bad file
        from pgpt.runtime.manifest import gone_or_damaged

        raise gone_or_damaged(folder, f"{path} cannot be loaded as a tokenizer ({exc}).") from None


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object file; a missing file is an empty dict."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ModelIntegrityError(f"{path} is not valid JSON ({exc}).") from None
    return data if isinstance(data, dict) else {}


def token_text(value: Any) -> str:
    """A special token from tokenizer_config.json: a string or an AddedToken dict."""
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return str(value or "")


class IncrementalDecoder:
    """Turns a growing list of token ids into text pieces, never splitting a UTF-8 character.

    Decoding each token alone breaks multi-byte characters and byte-level spaces, so we
    decode a small window (the ``prefix`` tokens already printed plus the new ones) and
    emit only the new suffix once it no longer ends in a replacement character.
    """

    def __init__(self, tokenizer: Any, skip_special_tokens: bool = True) -> None:
        self._tokenizer = tokenizer
        self._skip = skip_special_tokens
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def push(self, token_id: int) -> str:
        """Add one token and return the text it completes (possibly empty)."""
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        full_text = self._decode(self._ids[self._prefix :])
        if len(full_text) > len(prefix_text) and not full_text.endswith("\ufffd"):
            piece = full_text[len(prefix_text) :]
            self._prefix = self._read
            self._read = len(self._ids)
            return piece
        return ""

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=self._skip) if ids else ""


TEMPLATE_SECONDS = 2.0  # a real chat template renders in about a millisecond
TEMPLATE_MAX_CHARS = 2_000_000  # far beyond any model's context, far below a memory problem


class _TooSlow(Exception):
    """Raised inside the template's code when its time is up."""


def render_chat(template: str, messages: list[dict[str, str]], special: dict[str, str]) -> str:
    """Render a chat template in an immutable Jinja sandbox (templates come with models), within
    TEMPLATE_SECONDS and TEMPLATE_MAX_CHARS.

    A template without a system role (Gemma's refuses one) gets the system text at the start of
    the first user message instead, as Gemma 3's own template places it.

    Raises:
        TemplateError: when the template is broken, tries an unsafe operation, runs too long or
            makes too much text.
    """
    given = sum(len(str(m.get("content") or "")) for m in messages)
    if given > TEMPLATE_MAX_CHARS:  # the messages, not the template, are too long: say so
        raise ContextLengthError(f"The messages hold {given:,} characters, far more than any model's context "
                                 "(about 4 characters a token).", hint="Shorten the messages.")
    try:
        return _render(template, messages, special)
    except TemplateError:
        if not messages or messages[0].get("role") != "system":
            raise
        return _render(template, fold_system_message(messages), special)


def fold_system_message(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The conversation with its leading system message merged into the first user message."""
    system, rest = messages[0], list(messages[1:])
    for index, message in enumerate(rest):
        if message.get("role") == "user":
            rest[index] = {**message, "content": f"{system['content']}\n\n{message['content']}"}
            return rest
    return [{"role": "user", "content": system["content"]}, *rest]


def _render(template: str, messages: list[dict[str, str]], special: dict[str, str]) -> str:
    from jinja2 import TemplateError as JinjaError
    from jinja2.exceptions import SecurityError

    try:
        compiled = _compiled(template)
        with _time_limit(TEMPLATE_SECONDS):
            text = compiled.render(messages=messages, add_generation_prompt=True, **special)
    except _TooSlow:
        raise TemplateError(f"The chat template ran for more than {TEMPLATE_SECONDS:g} s and was stopped "
                            "(a loop that does not end?).") from None
    except SecurityError as exc:
        raise TemplateError(f"The chat template tried an unsafe operation ({exc}).") from None
    except (OverflowError, MemoryError, RecursionError) as exc:  # range(10**9), a huge string, endless macros
        raise TemplateError(f"The chat template asked for too much ({type(exc).__name__}: {exc}).") from None
    except JinjaError as exc:
        raise TemplateError(f"The chat template failed to render ({exc}).") from None
    if len(text) > TEMPLATE_MAX_CHARS:
        raise TemplateError(f"The chat template made a prompt of {len(text)} characters (the limit is "
                            f"{TEMPLATE_MAX_CHARS}).")
    return text


def _raise_exception(message: str) -> None:
    raise TemplateError(f"The chat template refused the conversation: {message}")


@functools.lru_cache(maxsize=8)
def _compiled(template: str) -> Any:
    """The compiled template (compiling takes ~10 ms, rendering ~0.4 ms: a chat renders every turn)."""
    env = _limited_sandbox()
    env.globals["raise_exception"] = _raise_exception
    return env.from_string(template)


def _limited_sandbox() -> Any:
    """The immutable sandbox, with ``*`` and ``**`` checked before they build a huge value."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class LimitedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(right, int) and abs(right) > 64:
                raise OverflowError(f"a power of {right} is not computed")
            if operator == "*":
                count, item = (right, left) if isinstance(right, int) else (left, right)
                if isinstance(count, int) and isinstance(item, (str, list, tuple)) and \
                        len(item) * count > TEMPLATE_MAX_CHARS:
                    raise OverflowError(f"a repetition of {len(item) * count} items is not built")
            return super().call_binop(context, operator, left, right)

    return LimitedSandbox(trim_blocks=True, lstrip_blocks=True, autoescape=False)


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Stop the template's code after ``seconds``: a trace function on this thread checks the clock.

    Why tracing: a Jinja loop (two nested ``range(99999)``) runs as plain Python in this thread;
    a thread cannot be stopped from outside and signals reach only the main thread. Only the
    template's own frames are traced (a few milliseconds for a real template).
    """
    deadline = time.monotonic() + seconds
    steps = 0

    def in_template(frame: Any, event: str, arg: Any) -> Any:
        nonlocal steps
        steps += 1
        if steps % 512 == 0 and time.monotonic() > deadline:
            raise _TooSlow()
        return in_template

    def on_call(frame: Any, event: str, arg: Any) -> Any:
        return in_template if frame.f_code.co_filename == "<template>" else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)
