"""Request bodies of the API: OpenAI's chat completions and embeddings, PrivateGPT's extensions,
chunks and ingestion. A close misspelling of a field is refused, other unknown fields are ignored
(serve/request_fields.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pgpt.serve.request_fields import RequestBody


class ContentPart(BaseModel):
    """A part of a message's content; only text parts are understood."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text (text parts joined; other parts are refused by the route)."""
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    """OpenAI's ``stream_options``."""

    include_usage: bool = False


class ContextFilter(BaseModel):
    """PrivateGPT's filter: answer from these documents only (ids from /v1/ingest/list)."""

    docs_ids: list[str] | None = None


class ChatCompletionRequest(RequestBody):
    """``POST /v1/chat/completions``: OpenAI's fields plus PrivateGPT's ``use_context``,
    ``context_filter`` and ``include_sources`` (ollama's ``keep_alive`` and llama.cpp's ``top_k``,
    ``repeat_penalty`` too)."""

    route = "/v1/chat/completions"
    model: str = "default"
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # allow_inf_nan: NaN was refused as "less than or equal to 2", which is not its fault
    temperature: float | None = Field(default=None, ge=0.0, le=2.0, allow_inf_nan=False)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0, allow_inf_nan=False)
    top_k: int | None = Field(default=None, ge=0)
    repeat_penalty: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    # vLLM's and Hugging Face's name (the CLI's --repetition-penalty): the same multiplicative penalty
    # on the logits of tokens already seen; it was ignored as a foreign field
    repetition_penalty: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    keep_alive: str | int | float | None = None
    ignore_eos: bool = False  # vLLM's: decode exactly max_tokens (benchmarks)
    use_context: bool = False
    context_filter: ContextFilter | None = None
    include_sources: bool = True
    # pgpt's own, as `pgpt-tui ask` takes them: one collection, passages read, their sentences read
    collection: str | None = None
    passages: int | None = Field(default=None, ge=1, le=20)
    sentences: int | None = Field(default=None, ge=0, le=200)
    # OpenAI's fields this server does not implement are refused, not ignored: a client asking for
    # JSON mode, tool calls or log probabilities would take plain text for what it asked.
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None  # the tools of OpenAI's older API
    tool_choice: str | dict[str, Any] | None = None
    function_call: str | dict[str, Any] | None = None
    logprobs: int | bool | None = None
    # audio output: a client asking for it got text alone with a 200 (t46)
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    # OpenAI's penalties this sampler has no counterpart for: a value that changes nothing is accepted,
    # as clients (LangChain) send 0 and {} by default; any other would be silently ignored
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None

    @field_validator("collection")
    @classmethod
    def _plain_collection(cls, value: str | None) -> str | None:
        return plain_collection(value)

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:  # "Input should be less than or equal to 1" did not say why (t80)
            raise ValueError(f"{value} choices are not supported: this server answers with one; send n=1 or leave "
                             "it out")
        return value

    @field_validator("response_format")
    @classmethod
    def _plain_text_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value and value.get("type", "text") != "text":
            raise ValueError(f"type {str(value.get('type'))[:40]!r} is not supported: this server answers in plain "
                             "text only (no JSON mode or schema)")
        return value

    @field_validator("modalities", "audio")
    @classmethod
    def _text_out_only(cls, value: Any, info: Any) -> Any:
        if value and (info.field_name == "audio" or any(kind != "text" for kind in value)):
            raise ValueError("audio output is not supported by this server: it answers in text; send the request "
                             'without audio, with modalities ["text"] or none')
        return value

    @field_validator("tools", "functions")
    @classmethod
    def _no_tools(cls, value: list[Any] | None, info: Any) -> list[Any] | None:
        if value:
            kind = "tool" if info.field_name == "tools" else "function"
            raise ValueError(f"{kind} calls are not supported by this server; send the request without "
                             f"{info.field_name}")
        return value

    @field_validator("tool_choice", "function_call")
    @classmethod
    def _no_tool_choice(cls, value: Any, info: Any) -> Any:
        if value not in (None, "none"):
            raise ValueError("tool calls are not supported by this server; send the request without "
                             f"{info.field_name}, or with {info.field_name} \"none\"")
        return value

    @field_validator("frequency_penalty", "presence_penalty", "logit_bias")
    @classmethod
    def _no_penalties(cls, value: Any, info: Any) -> Any:
        if value:  # 0, 0.0 and {} change nothing
            raise ValueError(f"{info.field_name} is not supported by this server's sampler; send it without "
                             f"{info.field_name} (or as {'{}' if info.field_name == 'logit_bias' else '0'}); "
                             "repeat_penalty (or repetition_penalty) discourages repeated tokens")
        return value

    @model_validator(mode="after")
    def _one_repeat_penalty(self) -> ChatCompletionRequest:
        both = (self.repeat_penalty, self.repetition_penalty)
        if None not in both and both[0] != both[1]:
            raise ValueError(f"repeat_penalty ({both[0]}) and repetition_penalty ({both[1]}) are one setting "
                             "given twice with different values; send one of them")
        return self

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: int | bool | None) -> int | bool | None:
        if value:
            raise ValueError("log probabilities are not returned by this server; send it without logprobs")
        return value

    def stop_strings(self) -> tuple[str, ...]:
        """``stop`` as a tuple (OpenAI allows one string or up to 4)."""
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop[:4])


class CompletionRequest(ChatCompletionRequest):
    """``POST /v1/completions`` (OpenAI's legacy completions, as ollama and PrivateGPT serve them):
    the prompt is asked as one user message, after PrivateGPT's ``system_prompt`` when given; every
    other field is chat completions'. ``echo``, ``suffix`` and ``best_of`` are refused (a 400 naming
    them), as chat's unsupported fields are: a client asking for them would take the answer for them."""

    route = "/v1/completions"
    messages: list[ChatMessage] = Field(default_factory=list)
    prompt: str | list[str]
    system_prompt: str | None = None
    echo: bool | None = None
    suffix: str | None = None
    best_of: int | None = None

    @field_validator("echo", "suffix", "best_of")
    @classmethod
    def _not_supported(cls, value: Any, info: Any) -> Any:
        harmless = value is None or value is False or value == "" or (info.field_name == "best_of" and value == 1)
        if not harmless:  # (True == 1: "not in (None, False, '', 1)" let echo=true through)
            raise ValueError(f"{info.field_name} is not supported by this server; send the request without it")
        return value

    @field_validator("prompt")
    @classmethod
    def _has_text(cls, value: str | list[str]) -> str | list[str]:
        if not any(p.strip() for p in ([value] if isinstance(value, str) else value)):
            raise ValueError("the prompt is empty: there is nothing to complete")
        return value

    def as_chat(self) -> ChatCompletionRequest:
        """The same request as a chat completion."""
        prompts = [self.prompt] if isinstance(self.prompt, str) else self.prompt
        if len(prompts) != 1:
            from pgpt.runtime.errors import InvalidRequestError

            raise InvalidRequestError(f"prompt holds {len(prompts)} texts; this server answers one per request.",
                                      hint="Send one prompt (a string) per request.")
        messages = ([ChatMessage(role="system", content=self.system_prompt)] if self.system_prompt else [])
        fields = self.model_dump(exclude={"prompt", "system_prompt", "messages"}, exclude_unset=True)
        return ChatCompletionRequest(**fields, messages=[*messages, ChatMessage(role="user", content=prompts[0])])


class EmbeddingsRequest(RequestBody):
    """``POST /v1/embeddings``."""

    route = "/v1/embeddings"
    input: str | list[Any]  # token ids are named in the route: "input must be a text or a list of texts"
    model: str = "default"
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    truncate: bool = False  # ollama's: embed the beginning of a text longer than the embedder reads


class ChunksRequest(RequestBody):
    """``POST /v1/chunks`` (PrivateGPT): the passages closest to ``text``, no model run."""

    route = "/v1/chunks"
    text: str
    context_filter: ContextFilter | None = None
    limit: int = Field(default=10, ge=1, le=100)
    prev_next_chunks: int = Field(default=0, ge=0, le=10)
    collection: str | None = None  # pgpt's own: search this collection only

    @field_validator("collection")
    @classmethod
    def _plain_collection(cls, value: str | None) -> str | None:
        return plain_collection(value)


def plain_collection(value: str | None) -> str | None:
    """A collection name as the CLI and uploads take it: "../x" was "no documents in '../x'"."""
    import argparse

    from pgpt.runtime.arg_types import collection_name

    try:
        return value if value is None else collection_name(value)
    except argparse.ArgumentTypeError as error:
        raise ValueError(str(error)) from None


class IngestTextRequest(RequestBody):
    """``POST /v1/ingest/text`` (PrivateGPT): a text stored and indexed under ``file_name``."""

    route = "/v1/ingest/text"
    file_name: str = Field(min_length=1, max_length=255)
    text: str
    collection: str | None = None  # pgpt's own: also taken as ?collection=, as it was first


def sampling_fields(body: ChatCompletionRequest) -> dict[str, Any]:
    """The request's sampling settings that were given, under SamplingOptions' names."""
    given = {"temperature": body.temperature, "top_p": body.top_p, "top_k": body.top_k,
             "repetition_penalty": body.repeat_penalty or body.repetition_penalty, "seed": body.seed,
             "ignore_eos": body.ignore_eos or None}
    return {name: value for name, value in given.items() if value is not None}
