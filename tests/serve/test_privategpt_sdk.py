"""PrivateGPT's own Python SDK (`pgpt-python`, its API's official client) against a real pgpt-serve:
every resource it offers, sync and async. Until this test its completion calls all failed validation
(it accepts only PrivateGPT's "completion" objects) and its delete raised on the empty body."""

from __future__ import annotations

import asyncio
import io

import pytest

from serve_support import RunningServer

HARBOUR = ("Ferry timetable. The ferry to Tresco leaves the quay at 9:15 every morning. "
           "Tickets are sold at the harbour office.")
QUESTION = "When does the ferry to Tresco leave?"


def test_the_sdk_ingests_lists_retrieves_answers_embeds_and_deletes(server: RunningServer) -> None:
    from pgpt_python.client import PrivateGPTApi
    from pgpt_python.types import ContextFilter, OpenAiMessage

    client = PrivateGPTApi(base_url=server.url, timeout=300)
    assert client.health.health().status == "ok"
    added = client.ingestion.ingest_text(file_name="harbour", text=HARBOUR).data[0]
    uploaded = client.ingestion.ingest(file=("plums.md", io.BytesIO(b"# Orchard\n\nThe old tree gave 17 plums.")))
    assert uploaded.data[0].doc_metadata["file_name"] == "plums.md"  # the older /v1/ingest route
    listed = {d.doc_id for d in client.ingestion.list_ingested().data}
    assert {added.doc_id, uploaded.data[0].doc_id} <= listed

    only = ContextFilter(docs_ids=[added.doc_id])
    chunks = client.context_chunks.chunks_retrieval(text=QUESTION, context_filter=only).data
    assert chunks and "9:15" in chunks[0].text and chunks[0].document.doc_id == added.doc_id
    # PrivateGPT's score is the similarity to the question: the same with or without other documents
    wide = client.context_chunks.chunks_retrieval(text=QUESTION).data
    same = next(c for c in wide if c.document.doc_id == added.doc_id)
    assert 0 < chunks[0].score == pytest.approx(same.score, abs=1e-3)

    answer = client.contextual_completions.prompt_completion(
        prompt=QUESTION, use_context=True, include_sources=True, context_filter=only)
    assert answer.object == "completion" and answer.choices[0].message.content
    assert answer.choices[0].sources and answer.choices[0].sources[0].document.doc_id == added.doc_id
    question = [OpenAiMessage(role="user", content="What is the capital of France? One word.")]
    chat = client.contextual_completions.chat_completion(messages=question)
    assert "Paris" in chat.choices[0].message.content
    pieces = list(client.contextual_completions.chat_completion_stream(messages=question))
    assert {p.object for p in pieces} == {"completion.chunk"}
    streamed = "".join(p.choices[0].delta.content or "" for p in pieces if p.choices and p.choices[0].delta)
    assert streamed == chat.choices[0].message.content  # greedy: the same answer, token by token
    prompted = list(client.contextual_completions.prompt_completion_stream(prompt="What is the capital of France? "
                                                                                  "One word."))
    assert "Paris" in "".join(p.choices[0].delta.content or "" for p in prompted if p.choices and p.choices[0].delta)

    vectors = client.embeddings.embeddings_generation(input=["harbour", "ferry"]).data
    assert [v.index for v in vectors] == [0, 1] and len(vectors[0].embedding) == 384
    assert client.ingestion.delete_ingested(doc_id=uploaded.data[0].doc_id) is None
    assert uploaded.data[0].doc_id not in {d.doc_id for d in client.ingestion.list_ingested().data}


def test_the_async_sdk_answers_too(server: RunningServer) -> None:
    from pgpt_python.client import AsyncPrivateGPTApi
    from pgpt_python.types import OpenAiMessage

    async def ask() -> str:
        client = AsyncPrivateGPTApi(base_url=server.url, timeout=300)
        reply = await client.contextual_completions.chat_completion(
            messages=[OpenAiMessage(role="user", content="What is the capital of France? One word.")])
        return reply.choices[0].message.content or ""

    assert "Paris" in asyncio.run(ask())


def test_openai_clients_keep_openai_shapes(server: RunningServer) -> None:
    """The PrivateGPT shapes go only to requests without "model", which every OpenAI client sends."""
    client = server.openai()
    chat = client.chat.completions.create(model="default", max_tokens=4,
                                          messages=[{"role": "user", "content": "Say hi."}])
    legacy = client.completions.create(model="default", prompt="Say hi.", max_tokens=4)
    assert chat.object == "chat.completion" and legacy.object == "text_completion" and legacy.choices[0].text


def test_the_sdk_reaches_a_server_with_a_key_through_its_http_client(keyed_server: RunningServer) -> None:
    """The SDK has no key parameter: the README's way, an httpx client that sends the header (t46)."""
    import httpx
    from pgpt_python.client import PrivateGPTApi
    from pgpt_python.core.api_error import ApiError

    with pytest.raises(ApiError) as refused:
        PrivateGPTApi(base_url=keyed_server.url, timeout=60).ingestion.list_ingested()
    assert refused.value.status_code == 401
    keyed = PrivateGPTApi(base_url=keyed_server.url, httpx_client=httpx.Client(
        headers={"Authorization": f"Bearer {keyed_server.key}"}, timeout=60))
    assert keyed.ingestion.list_ingested().data is not None
