"""Request fields that a body's schema does not know, and form fields or query parameters that a route
does not read: a close misspelling of a known one is refused with a 400 naming both ("max_token"
silently gave an answer of the default length); any other is ignored, as OpenAI-compatible servers
do (UIs send vendor fields), and logged by name, never value."""

from __future__ import annotations

import logging
import re
import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

log = logging.getLogger("pgpt.serve")

UNRECOGNIZED = "unrecognized_argument"
_SURROGATE = re.compile("[\ud800-\udfff]")
CLOSE_RATIO = 0.8  # difflib's: max_token, temprature, colection; not frequency_penalty for repeat_penalty
_SHOWN_NAMES = 10
# Fields of OpenAI's API and of other servers (vLLM, llama.cpp, ollama, TGI, OpenRouter) that this server
# ignores: a real API's name is no misspelling (top_logprobs is not logprobs, min_tokens not max_tokens).
FOREIGN_FIELDS = frozenset({
    "top_logprobs", "user", "metadata", "store",
    "parallel_tool_calls", "prediction",
    "reasoning_effort", "service_tier", "web_search_options", "verbosity", "safety_identifier",
    "prompt_cache_key", "min_p", "min_tokens", "length_penalty", "stop_token_ids",
    "skip_special_tokens", "chat_template_kwargs", "n_predict", "num_predict", "typical_p", "tfs_z", "mirostat",
    "cache_prompt", "n_probs", "max_new_tokens", "do_sample", "top_a", "models", "options", "format", "think",
    "input_type",
})
# OpenAI's fields that label or store a request and change nothing in its answer: clients send them
# always ("user"), and a warning on every request buried the real ones in the journal (t46)
BOOKKEEPING = frozenset({"user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key",
                         "parallel_tool_calls"})


class RequestBody(BaseModel):
    """A JSON request body of the API, served at ``route``: see the module's docstring."""

    model_config = ConfigDict(extra="ignore")
    route: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        # before the fields: a misspelled "mesages" is named as such, not as "messages: Field required"
        if not isinstance(data, dict):
            return data
        # null is "the default" for a field that has one, as in OpenAI's API: clients that send every
        # unset field ("n": null, "stream": null) got "n: Input should be a valid integer" (t46)
        if where := unpaired_surrogate(data):
            # JSON's "\ud800" escape decodes to a str that no tokenizer or UTF-8 writer takes: every
            # text route answered 500 "a bug in pgpt" with a traceback in the log (t52)
            raise PydanticCustomError("unpaired_surrogate", "{text}", {"text": (
                f"{where} holds an unpaired surrogate escape (\\ud800-\\udfff), which is no text; send the "
                "text as UTF-8, or pair the escape with its other half")})
        data = {name: value for name, value in data.items()
                if value is not None or name not in cls.model_fields or cls.model_fields[name].is_required()}
        unknown = unknown_fields(cls, data)
        if misspelled := [(name, meant) for name, meant in unknown if meant]:
            raise PydanticCustomError(UNRECOGNIZED, "{text}", {"text": _refusal(misspelled), "name": misspelled[0][0]})
        log_ignored(f"POST {cls.route}", "request fields", [name for name, _ in unknown if name not in BOOKKEEPING])
        return data


def unpaired_surrogate(value: Any, where: str = "") -> str:
    """The first field (``messages.0.content``) of a JSON value whose text holds a lone surrogate, or ''."""
    if isinstance(value, str):
        return (where or "the body") if _SURROGATE.search(value) else ""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        name = f"{where}.{key}" if where else str(key)
        if isinstance(key, str) and _SURROGATE.search(key):
            return f"a field name in {where or 'the body'}"
        if found := unpaired_surrogate(item, name):
            return found
    return ""


def check_arguments(route: str, given: list[str], known: list[str], what: str) -> None:
    """Refuse a misspelling of a ``known`` form field or query parameter among the ``given`` names,
    as a JSON body's ("-F colection=team" went to the collection default with a 200); log the others.

    Raises:
        InvalidRequestError: 400 naming the misspelled argument and the one it probably means.
    """
    unknown = [(name, close_field(name, known)) for name in dict.fromkeys(given) if name not in known]
    if misspelled := [(name, meant) for name, meant in unknown if meant]:
        from pgpt.runtime.errors import InvalidRequestError

        raise InvalidRequestError(f"{_refusal(misspelled)}.", param=misspelled[0][0][:40], hint="")
    log_ignored(route, what, [name for name, _ in unknown])


def _refusal(misspelled: list[tuple[str, str]]) -> str:
    """OpenAI's "unrecognized request argument", each misspelled name with the one it probably means."""
    from pgpt.runtime.sanitize import strip_controls

    words = ", ".join(f"{strip_controls(name)[:40]} (did you mean {meant}?)" for name, meant in misspelled)
    return f"unrecognized request argument{'s' if len(misspelled) > 1 else ''} {words}"


def log_ignored(route: str, what: str, names: list[str]) -> None:
    """One log line naming the ignored ``names`` (never their values: a value may hold a prompt or a key)."""
    if not names:
        return
    from pgpt.runtime.sanitize import shown_name

    # one line whatever the name holds: a JSON key with newlines forged log records (t52)
    shown = [shown_name(name)[:40] for name in names]
    more = f" and {len(shown) - _SHOWN_NAMES} more" if len(shown) > _SHOWN_NAMES else ""
    # info, into the log file only: a UI that sends a vendor field with every request put a line per request
    # in the journal, which is for start-up, warnings and errors (t56); a close misspelling is a 400 anyway
    log.info("%s: ignored %s that it does not know: %s%s", route, what, ", ".join(shown[:_SHOWN_NAMES]), more)


def unknown_fields(model: type[BaseModel], data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """The fields of ``data`` (and of its nested request objects, as ``context_filter.docs_id``)
    that ``model`` does not know, each with the known field it probably means, or ''."""
    found: list[tuple[str, str]] = []
    for name, value in data.items():
        field = model.model_fields.get(name)
        if field is None:
            foreign = not prefix and name in FOREIGN_FIELDS
            meant = "" if foreign else close_field(str(name), list(model.model_fields))
            found.append((f"{prefix}{name}", f"{prefix}{meant}" if meant else ""))
        elif isinstance(value, dict) and (nested := _checked_model(field.annotation)) is not None:
            found += unknown_fields(nested, value, f"{prefix}{name}.")
    return found


def close_field(name: str, known: list[str]) -> str:
    """The known field that ``name`` probably misspells, or '' (as a misspelled setting's name)."""
    from pgpt.runtime.environment import close_name

    return close_name(name, known, CLOSE_RATIO)


def _checked_model(annotation: Any) -> type[BaseModel] | None:
    """The request object a field holds (``ContextFilter | None``); not one that keeps any field
    (a message's ``name`` or a content part's ``image_url`` are a client's own)."""
    for kind in typing.get_args(annotation) or (annotation,):
        if isinstance(kind, type) and issubclass(kind, BaseModel) and kind.model_config.get("extra") != "allow":
            return kind
    return None


def unrecognized(errors: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The 400's message and ``param`` (the first) for misspelled fields among a request's validation
    errors, or None: OpenAI's "Unrecognized request argument", with the field each probably means."""
    error = next((e for e in errors if e.get("type") == UNRECOGNIZED), None)
    if error is None:
        return None
    context = error.get("ctx") or {}
    return f"Invalid request: {context.get('text', '')}.", str(context.get("name", ""))[:40]
