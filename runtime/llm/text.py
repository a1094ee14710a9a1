"""Tokenizer loading, incremental detokenization and sandboxed chat templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import ModelIntegrityError, TemplateError


def load_tokenizer(folder: Path) -> Any:
    """Load ``tokenizer.json`` with the `tokenizers` library (no transformers at run time)."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on a bad file
        raise ModelIntegrityError(f"{path} cannot be loaded as a tokenizer ({exc}).") from None


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


def render_chat(template: str, messages: list[dict[str, str]], special: dict[str, str]) -> str:
    """Render a chat template in an immutable Jinja sandbox (templates come with models).

    Raises:
        TemplateError: when the template is broken or tries an unsafe operation.
    """
    from jinja2 import TemplateError as JinjaError
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(f"The chat template refused the conversation: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(
            messages=messages, add_generation_prompt=True, **special
        )
    except SecurityError as exc:
        raise TemplateError(f"The chat template tried an unsafe operation ({exc}).") from None
    except JinjaError as exc:
        raise TemplateError(f"The chat template failed to render ({exc}).") from None
