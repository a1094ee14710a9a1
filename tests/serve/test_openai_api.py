"""The OpenAI-compatible endpoints of a real pgpt-serve, through the official openai client."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from pgpt.runtime.settings import Settings
from serve_support import RunningServer

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def engine(served_settings: Settings):  # type: ignore[no-untyped-def]
    """The same chat model in this process, without a cache: what the server must match."""
    from pgpt.runtime.llm.chat import ChatEngine

    engine = ChatEngine(served_settings, use_cache=False)
    yield engine
    engine.close()


def test_models_lists_the_chat_model_and_the_embedder(server: RunningServer) -> None:
    models = {m.id: m for m in server.openai().models.list()}
    assert "smollm2-135m-instruct-int8" in models and "all-minilm-l6-v2-int8" in models
    chat = models["smollm2-135m-instruct-int8"].model_extra
    assert chat["kind"] == "llm" and chat["loaded"] is True and len(chat["version"]) == 12
    # when it was exported (its manifest's time), not the server's start for every model (t62)
    from pgpt.runtime.models import find_model

    exported = find_model(server.settings, "smollm2-135m-instruct-int8").manifest["created"]
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(models["smollm2-135m-instruct-int8"].created)) == exported
    # by its version too, whole or a unique prefix, as chat completions take it (a prefix was a 404, t63)
    for version in (chat["version"], chat["version"][:6]):
        assert server.openai().models.retrieve(f"smollm2-135m-instruct-int8@{version}").id == "smollm2-135m-instruct-int8"
    import openai

    with pytest.raises(openai.NotFoundError):
        server.openai().models.retrieve("smollm2-135m-instruct-int8@zz")


def test_a_greedy_answer_is_the_in_process_answer(server: RunningServer, engine) -> None:  # type: ignore[no-untyped-def]
    from pgpt.runtime.llm.sampling import SamplingOptions

    reply = server.openai().chat.completions.create(model="default", messages=QUESTION, max_tokens=16,
                                                    temperature=0)
    local = engine.ask(QUESTION[0]["content"], SamplingOptions(max_new_tokens=16))
    assert reply.choices[0].message.content == local.answer and local.answer
    assert reply.model.startswith("smollm2-135m-instruct-int8@")
    assert reply.usage.completion_tokens == local.timings["new_tokens"]
    assert reply.usage.prompt_tokens == local.timings["prompt_tokens"]


def test_a_stream_gives_the_same_text_then_length_and_usage(server: RunningServer) -> None:
    client = server.openai()
    messages = [{"role": "user", "content": "Write a long story about a dragon."}]
    chunks = list(client.chat.completions.create(model="default", messages=messages, max_tokens=8, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "length"
    assert finals[0].model_extra["timings"]["new_tokens"] == 8
    assert not chunks[-1].choices and chunks[-1].usage.completion_tokens == 8
    whole = client.chat.completions.create(model="default", messages=messages, max_tokens=8)
    assert whole.choices[0].message.content == text and whole.choices[0].finish_reason == "length"


def test_a_stop_string_ends_the_answer_before_it(server: RunningServer) -> None:
    client = server.openai()
    full = client.chat.completions.create(model="default", messages=QUESTION, max_tokens=16).choices[0].message.content
    word = full.split()[-1]
    cut = client.chat.completions.create(model="default", messages=QUESTION, max_tokens=16, stop=[word])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == full[: full.index(word)]


def test_a_seed_repeats_a_sampled_answer(server: RunningServer) -> None:
    story = [{"role": "user", "content": "Tell me a story."}]

    def sample(seed: int, tokens: int) -> str:  # another max_tokens: not the cached answer
        return server.openai().chat.completions.create(model="default", messages=story, max_tokens=tokens,
                                                       temperature=1.0, top_p=0.95, seed=seed).choices[0].message.content

    first, longer, other = sample(7, 10), sample(7, 14), sample(8, 10)
    assert longer.startswith(first) and len(longer) > len(first)
    assert other != first


def test_embeddings_are_the_in_process_vectors(server: RunningServer, served_settings: Settings) -> None:
    from pgpt.runtime.llm.embeddings import default_embedder

    texts = ["The ferry leaves at nine.", "Ein ganz anderer Satz."]
    expected = default_embedder(served_settings).embed(texts)
    client = server.openai()
    as_base64 = client.embeddings.create(model="default", input=texts)  # the client's default encoding
    as_floats = client.embeddings.create(model="all-minilm-l6-v2-int8", input=texts, encoding_format="float")
    for response in (as_base64, as_floats):
        got = np.array([d.embedding for d in response.data], dtype=np.float32)
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert as_floats.usage.prompt_tokens > 4
    raw = server.http().post("/v1/embeddings", json={"input": "x", "encoding_format": "base64"}).json()
    assert np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), "<f4").shape == (expected.shape[1],)
    # dimensions: the embedder's own is fine, another is refused (it was ignored: 384 where 64 were asked)
    same = client.embeddings.create(model="default", input=texts[:1], dimensions=expected.shape[1])
    assert len(same.data[0].embedding) == expected.shape[1]
    with pytest.raises(openai.BadRequestError, match="dimensions=64: all-minilm-l6-v2-int8 gives vectors of 384"):
        client.embeddings.create(model="default", input=texts[:1], dimensions=64)


def test_empty_embedding_inputs_and_an_empty_search_are_named(server: RunningServer) -> None:
    """[] was "input must be a text or a list of texts (token ids ...)", "" got a vector, and an empty
    /v1/chunks text an empty list."""
    http = server.http()
    cases = {("/v1/embeddings", '{"input": []}'): "input is an empty list",
             ("/v1/embeddings", '{"input": ["ferry", " "]}'): "input 1 is empty or only whitespace",
             ("/v1/embeddings", '{"input": ""}'): "input 0 is empty",
             ("/v1/chunks", '{"text": "  "}'): "text is empty: there is nothing to search for",
             # pydantic's union branches ("input.list[list[int]]: Input should be a valid list") said once
             ("/v1/embeddings", '{"input": 123}'): "input must be a text or a list (got a number)",
             ("/v1/embeddings", '{"input": [1, 2]}'): "token ids are not supported",
             ("/v1/completions", '{"prompt": [1, 2]}'): "prompt must be a text or a list of texts (got a list)"}
    for (route, body), expected in cases.items():
        answer = http.post(route, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and expected in answer.json()["error"]["message"], (route, answer.text)


def test_embeddings_naming_a_chat_model_is_a_bad_request(server: RunningServer) -> None:
    """The same words as a chat completion naming the embedder, the other way round."""
    with pytest.raises(openai.BadRequestError) as caught:
        server.openai().embeddings.create(model="smollm2-135m-instruct-int8", input="x")
    message = caught.value.body["message"]
    assert "smollm2-135m-instruct-int8 is a chat model, not an embedding model" in message
    assert "This server embeds with all-minilm-l6-v2-int8" in message
    with pytest.raises(openai.NotFoundError, match="embeds with all-minilm-l6-v2-int8, not 'no-such-model'"):
        server.openai().embeddings.create(model="no-such-model", input="x")  # 404, as chat's unknown model


def test_a_text_longer_than_the_embedder_reads_is_refused_unless_truncate_is_asked(server: RunningServer) -> None:
    """2 MB was a 200 and the vector of its first 256 word pieces; OpenAI refuses such an input."""
    long_text = "The harbour ferry leaves early. " * 200
    client = server.openai()
    with pytest.raises(openai.BadRequestError, match=r"input 1 has 1,\d{3} word pieces; .* reads at most 256"):
        client.embeddings.create(model="default", input=["short", long_text])
    cut = client.embeddings.create(model="default", input=long_text, extra_body={"truncate": True})
    assert cut.usage.prompt_tokens == 256 and len(cut.data[0].embedding) == 384


def test_a_path_as_model_loads_nothing_from_the_disk(server: RunningServer, tmp_path: Path) -> None:
    """A request's "model": "/tmp/x/chatcopy" loaded any folder holding a pgpt manifest."""
    import shutil

    copy = tmp_path / "chatcopy"
    shutil.copytree(server.settings.model_cache / "smollm2-135m-instruct-int8", copy)
    for name in (str(copy), f"../{copy.name}", "smollm2-135m-instruct-int8/../smollm2-135m-instruct-int8"):
        with pytest.raises(openai.NotFoundError, match="no model called"):
            server.openai().chat.completions.create(model=name, messages=QUESTION, max_tokens=2)
    loaded = server.openai().models.list().data
    assert all("chatcopy" not in m.id for m in loaded)


@pytest.mark.parametrize(("request_fields", "status", "words"), [
    ({"model": "no-such-model"}, 404, ["smollm2-135m-instruct-int8", "no-such-model", "GET /v1/models lists"]),
    # the model exists but is no chat model: the request is wrong (it said 404, "not found")
    ({"model": "all-minilm-l6-v2-int8"}, 400, ["all-minilm-l6-v2-int8 is an embedding model, not a chat model",
                                               "GET /v1/models"]),
    ({"n": 2}, 400, ["n", "2 choices are not supported"]),
    ({"temperature": -1}, 400, ["temperature"]),
    # refused, not silently ignored: the client would take plain text for JSON mode or a tool call
    ({"response_format": {"type": "json_object"}}, 400, ["response_format", "plain text only"]),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, 400, ["tools", "not supported"]),
    ({"logprobs": True}, 400, ["logprobs", "not returned"]),
    ({"extra_body": {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}}, 400,
     ["audio output is not supported"]),  # it answered text alone with a 200 (t46)
    # it said "No documents are indexed in the collection '../x'"; the name is what is wrong
    ({"extra_body": {"use_context": True, "collection": "../x"}}, 400, ["collection", "refused"]),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400, ["text"]),
    ({"messages": [{"role": "user", "content": "word " * 9000}], "max_tokens": 10}, 400,
     ["9", "10", "4096", "--context", "8192"]),
    # a 2 MB prompt is the user's, not the chat template's fault (it said "Chat template error", 500)
    ({"messages": [{"role": "user", "content": "word " * 420_000}]}, 400, ["Prompt too long", "2,100,000 characters"]),
    # a max_tokens over the cap is named as sent, then as lowered: "max_tokens is 1024" was never sent (t46)
    ({"messages": [{"role": "user", "content": "word " * 3500}], "max_tokens": 10**9}, 400,
     ["max_tokens is 1000000000, lowered to this server's cap of 1024"]),
    # no max_tokens and no room left: it said "max_tokens is 1", which nobody had asked for
    ({"messages": [{"role": "user", "content": "word " * 4200}]}, 400, ["leaves no room for an answer", "4096"]),
    ({"messages": [{"role": "user", "content": ""}]}, 400, ["no text"]),
    # it was a 404 saying 'default' is no exported model and is the active one
    ({"model": "default@abc123"}, 400, ["'default' follows the active chat model and takes no version"]),
    ({"messages": [{"role": "user", "content": None}]}, 400, ["no text"]),
    ({"messages": [{"role": "system", "content": " "}, {"role": "user", "content": [{"type": "text", "text": "\n"}]}]},
     400, ["no text"]),
    ({"messages": [{"role": "user", "content": " "}], "extra_body": {"use_context": True}}, 400, ["no text"]),
    # a documents question too long for the sequence: a 400 before the stream, not an error inside a 200 (t80)
    ({"messages": [{"role": "user", "content": "word " * 3000}], "stream": True, "extra_body": {"use_context": True}},
     400, ["Prompt too long", "a documents question may have up to"]),
    ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                   {"role": "user", "content": ""}], "extra_body": {"use_context": True}}, 400, ["question", "empty"]),
])
def test_bad_requests_get_a_json_error_naming_the_cause(server: RunningServer, request_fields: dict,
                                                         status: int, words: list[str]) -> None:
    body = {"model": "default", "messages": QUESTION, **request_fields}
    with pytest.raises(openai.APIStatusError) as caught:
        server.openai().chat.completions.create(**body)
    error = caught.value
    assert error.status_code == status
    assert error.body["type"] and all(w in error.body["message"] for w in words), error.body
    # OpenAI's code for a prompt that does not fit, which its clients look for (it was "400")
    too_long = error.body["message"].startswith(("Prompt too long:", "Answer length too large:"))
    assert (error.body["code"] == "context_length_exceeded") == too_long, error.body
    # a name, never the status as a string ("404" beside "not_found", t71); OpenAI's own for a model it lacks
    assert not error.body["code"].isdigit() and (error.body["code"] == "model_not_found") == (status == 404), error.body
    if set(request_fields) & {"n", "temperature"}:  # the field at fault in OpenAI's param, too (it was null)
        assert error.body["param"] == next(iter(request_fields)), error.body


@pytest.mark.parametrize(("extra", "param", "words"), [
    # each gave a 200 as if it were not there: 121 tokens of the defaults, every collection searched
    ({"max_token": 5, "temprature": 0.9}, "max_token", ["arguments max_token (did you mean max_tokens?), "
                                                        "temprature (did you mean temperature?)"]),
    ({"use_context": True, "colection": "licences"}, "colection", ["colection (did you mean collection?)"]),
    ({"maxTokens": 5}, "maxTokens", ["maxTokens (did you mean max_tokens?)"]),
    ({"context_filter": {"docs_id": ["x"]}}, "context_filter.docs_id", ["(did you mean context_filter.docs_ids?)"]),
])
def test_a_misspelled_field_is_refused_naming_the_field_it_means(server: RunningServer, extra: dict, param: str,
                                                                  words: list[str]) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        server.openai().chat.completions.create(model="default", messages=QUESTION, extra_body=extra)
    body = caught.value.body
    assert body["param"] == param and body["type"] == "invalid_request_error", body
    assert all(w in body["message"] for w in words) and "unrecognized request argument" in body["message"], body


def test_misspellings_are_refused_by_completions_and_embeddings_too(server: RunningServer) -> None:
    client = server.openai()
    with pytest.raises(openai.BadRequestError, match=r"sytem_prompt \(did you mean system_prompt\?\)"):
        client.completions.create(model="default", prompt="Hi", max_tokens=2, extra_body={"sytem_prompt": "Be brief."})
    with pytest.raises(openai.BadRequestError, match=r"truncte \(did you mean truncate\?\)") as caught:
        client.embeddings.create(model="default", input="ferry", extra_body={"truncte": True})
    assert caught.value.body["param"] == "truncte"


def test_other_unknown_fields_are_ignored_and_logged_by_name_only(server: RunningServer) -> None:
    """UIs send vendor fields: refusing them all would break them. Real fields of other APIs that look
    like pgpt's (top_logprobs, min_tokens) are no misspellings. Their values (a prompt, a key) stay out of the log."""
    extra = {"vendor_session": "secret-value-4711", "top_logprobs": 0, "min_tokens": 1, "length_penalty": 0.5}
    reply = server.openai().chat.completions.create(model="default", messages=QUESTION, max_tokens=2,
                                                    extra_body=extra)
    assert reply.choices[0].message.content
    log = server.settings.log_file.read_text()  # (log_text() adds the terminal's copy of each warning)
    lines = [line for line in log.splitlines() if "vendor_session" in line]
    # an info line, in the log file only: as a warning it went to the journal for every request (t56)
    assert len(lines) == 1 and "POST /v1/chat/completions" in lines[0] and " INFO " in lines[0], lines
    assert all(name in lines[0] for name in extra) and "secret-value-4711" not in server.log_text()
    # OpenAI's bookkeeping fields come with every request of some clients: no warning each time (t46);
    # and null is the default of a field that has one, as in OpenAI's API ("n": null was a 400)
    nulls = {"user": "u-17", "store": False, "metadata": {"k": "v"}, "n": None, "stream": None,
             "ignore_eos": None, "include_sources": None}
    reply = server.openai().chat.completions.create(model="default", messages=QUESTION, max_tokens=2, extra_body=nulls)
    assert reply.choices[0].message.content
    assert not [line for line in server.settings.log_file.read_text().splitlines() if "ignored request" in line
                and ("user" in line.split("know:")[-1] or "store" in line)]


def test_repetition_penalty_is_repeat_penalty_and_idle_penalties_are_refused(server: RunningServer) -> None:
    """vLLM's repetition_penalty, OpenAI's frequency_penalty, presence_penalty and logit_bias, and
    functions and tool_choice (while tools is refused) were accepted and changed nothing."""
    client = server.openai()
    echo = [{"role": "user", "content": "Say the word ferry ten times."}]

    def answer(**extra: Any) -> str:
        reply = client.chat.completions.create(model="default", messages=echo, max_tokens=16, **extra)
        return reply.choices[0].message.content or ""

    penalized = answer(extra_body={"repeat_penalty": 1.8})
    assert penalized != answer()  # the prompt is one that a penalty changes
    assert answer(extra_body={"repetition_penalty": 1.8}) == penalized
    assert answer(frequency_penalty=0, presence_penalty=0.0, logit_bias={}, tool_choice="none")  # clients' defaults
    function = {"name": "weather", "parameters": {"type": "object", "properties": {}}}
    for given, param, words in (({"frequency_penalty": 1.5}, "frequency_penalty", "not supported"),
                                ({"presence_penalty": -0.5}, "presence_penalty", "not supported"),
                                ({"logit_bias": {"42": -100}}, "logit_bias", "not supported"),
                                ({"functions": [function]}, "functions", "function calls are not supported"),
                                ({"tool_choice": "auto"}, "tool_choice", "tool calls are not supported"),
                                ({"extra_body": {"repeat_penalty": 1.2, "repetition_penalty": 1.8}}, None,
                                 "given twice")):
        with pytest.raises(openai.BadRequestError) as caught:
            answer(**given)
        body = caught.value.body
        assert body["param"] == param and words in body["message"], body


def test_a_nan_temperature_is_named_as_such(server: RunningServer) -> None:
    """JSON's NaN (Python's json writes it; the openai client refuses to) was refused as "Input
    should be less than or equal to 2", which is not its fault."""
    body = '{"model": "default", "messages": [{"role": "user", "content": "Hi"}], "temperature": NaN}'
    with server.http() as client:
        answer = client.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert "temperature: Input should be a finite number" in answer.json()["error"]["message"]


def test_any_whole_number_is_a_seed(server: RunningServer) -> None:
    """A negative seed gave HTTP 500 ("a bug in pgpt") and a reset keep-alive connection; OpenAI's API
    allows any 64-bit seed. It is kept modulo 2**64: -3 and 2**64 - 3 are the same sampler."""
    ask = {"model": "default", "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 8,
           "temperature": 1}
    with server.http() as client:  # one keep-alive connection for all of them
        low = client.post("/v1/chat/completions", json={**ask, "seed": -3})
        high = client.post("/v1/chat/completions", json={**ask, "seed": 2**64 - 3})
        huge = client.post("/v1/chat/completions", json={**ask, "seed": 10**30})
        with client.stream("POST", "/v1/chat/completions", json={**ask, "seed": -(2**63), "stream": True}) as stream:
            events = [line for line in stream.iter_lines() if line.startswith("data: ")]
        fraction = client.post("/v1/chat/completions", json={**ask, "seed": 1.5})
    assert [r.status_code for r in (low, high, huge)] == [200, 200, 200], low.text
    assert low.json()["choices"][0]["message"]["content"] == high.json()["choices"][0]["message"]["content"]
    assert stream.status_code == 200 and events[-1] == "data: [DONE]" and '"finish_reason":"length"' in events[-2]
    assert fraction.status_code == 400 and "seed" in fraction.json()["error"]["message"]


def test_empty_system_or_assistant_messages_beside_a_question_are_fine(server: RunningServer) -> None:
    """A request whose messages hold no text is refused (400, as the CLI refuses an empty prompt), but
    only then: empty messages of other roles beside a user's question are answered."""
    messages = [{"role": "system", "content": ""}, {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": ""}, {"role": "user", "content": "Name a colour."}]
    reply = server.openai().chat.completions.create(model="default", messages=messages, max_tokens=4)
    assert reply.choices[0].message.content


def test_a_sampled_answer_without_a_seed_is_drawn_afresh_not_cached(server: RunningServer) -> None:
    """With temperature above 0 and no seed every request got the first one's answer from the
    cache ("regenerate" never changed anything); with a seed the cache answers a repeat."""
    ask = {"model": "default", "messages": [{"role": "user", "content": "Invent a name for a cat."}],
           "max_tokens": 12, "temperature": 1.5}
    with server.http() as client:
        unseeded = [client.post("/v1/chat/completions", json=ask).json() for _ in range(4)]
        seeded = [client.post("/v1/chat/completions", json={**ask, "seed": 11}).json() for _ in range(2)]
    assert not any(r["cached"] for r in unseeded)
    assert len({r["choices"][0]["message"]["content"] for r in unseeded}) > 1  # four draws at 1.5: not all alike
    assert [r["cached"] for r in seeded] == [False, True]
    assert seeded[0]["choices"][0]["message"]["content"] == seeded[1]["choices"][0]["message"]["content"]


def test_one_model_by_id_and_plain_words_for_a_body_that_is_not_json(server: RunningServer) -> None:
    """openai's models.retrieve() got 404 "Not Found"; a body that is not JSON got "Invalid request:
    14: JSON decode error." or, without a Content-Type, "body: Input should be a valid dictionary"."""
    client = server.openai()
    listed = {m.id: m for m in client.models.list().data}
    chat = client.models.retrieve("smollm2-135m-instruct-int8")
    assert chat.id == "smollm2-135m-instruct-int8" and chat.model_dump() == listed[chat.id].model_dump()
    assert client.models.retrieve("default").id == chat.id
    assert client.models.retrieve(f"{chat.id}@{chat.model_extra['version']}").id == chat.id
    with pytest.raises(openai.NotFoundError, match="serves no model 'gpt-4o'; it serves .*smollm2-135m-instruct-int8"):
        client.models.retrieve("gpt-4o")
    with server.http() as http:
        broken = http.post("/v1/chat/completions", content=b'{"messages": [}',
                           headers={"Content-Type": "application/json"})
        untyped = http.post("/v1/chat/completions", content=b"messages=hello",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        wrong_method = http.put("/v1/models")
    assert broken.status_code == 400 and "not valid JSON (near character" in broken.json()["error"]["message"]
    assert untyped.status_code == 400 and "Content-Type: application/json" in untyped.json()["error"]["message"]
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["type"] == "invalid_request_error"


def test_legacy_completions_answer_a_prompt_as_one_user_message(server: RunningServer) -> None:
    """/v1/completions (ollama's, vLLM's, PrivateGPT's) was a 404: now the official client's
    completions.create() gets the same greedy answer as a chat with that one message, streamed or
    not, with PrivateGPT's system_prompt and use_context."""
    client = server.openai()
    prompt = "Name three colours of the rainbow."
    chat = client.chat.completions.create(model="default", max_tokens=16,
                                          messages=[{"role": "user", "content": prompt}])
    whole = client.completions.create(model="default", prompt=prompt, max_tokens=16)
    assert whole.object == "text_completion" and whole.choices[0].text == chat.choices[0].message.content
    assert whole.choices[0].finish_reason == chat.choices[0].finish_reason and whole.usage.completion_tokens >= 1
    pieces = list(client.completions.create(model="default", prompt=prompt, max_tokens=16, stream=True))
    assert "".join(p.choices[0].text for p in pieces if p.choices) == whole.choices[0].text
    assert pieces[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    system = client.completions.create(model="default", prompt=prompt, max_tokens=16,
                                       extra_body={"system_prompt": "Answer in one word."})
    framed = client.chat.completions.create(model="default", max_tokens=16, messages=[
        {"role": "system", "content": "Answer in one word."}, {"role": "user", "content": prompt}])
    assert system.choices[0].text == framed.choices[0].message.content
    with server.http() as http:
        ferry = {"file_name": "ferry.txt", "text": "The ferry to Tresco leaves at 9:15."}
        added = http.post("/v1/ingest/text", json=ferry)
        doc_id = added.json()["data"][0]["doc_id"]
        try:
            documents = client.completions.create(model="default", prompt="When does the ferry to Tresco leave?",
                                                  max_tokens=24, extra_body={"use_context": True})
        finally:
            assert http.delete(f"/v1/ingest/{doc_id}").status_code == 200
    assert documents.choices[0].text and documents.model_extra["grounding"]["kind"] in ("answer", "quote", "not_found")
    assert documents.choices[0].model_extra["sources"][0]["document"]["doc_metadata"]["file_name"] == "ferry.txt"
    with pytest.raises(openai.BadRequestError, match="one per request"):
        client.completions.create(model="default", prompt=["a", "b"], max_tokens=4)
    # refused, not ignored (as chat's unsupported fields); an empty prompt was "the messages hold no text"
    for field, value in (("echo", True), ("suffix", "x"), ("best_of", 3)):
        with pytest.raises(openai.BadRequestError, match=f"{field}: {field} is not supported"):
            client.completions.create(model="default", prompt="Hi", max_tokens=2, **{field: value})
    with pytest.raises(openai.BadRequestError, match="the prompt is empty"):
        client.completions.create(model="default", prompt=" ", max_tokens=2)
