"""The HTTP routes: thin wrappers that parse, call the service and shape the answer."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from pgpt.runtime.errors import Cancelled, InvalidRequestError, ModelNotFoundError, RequestRefusedError
from pgpt.serve import documents
from pgpt.serve.completions import start_completion
from pgpt.serve.limits import cancelled_when_gone
from pgpt.serve.request_fields import check_arguments
from pgpt.serve.responses import CompletionStream, complete, until_disconnected
from pgpt.serve.schemas import (ChatCompletionRequest, ChunksRequest, CompletionRequest, EmbeddingsRequest,
                                IngestTextRequest)
from pgpt.serve.service import Service
from pgpt.serve.upload_progress import progress_id

router = APIRouter()
MAX_EMBEDDING_INPUTS = 2048  # OpenAI's own limit per request


def service_of(request: Request) -> Service:
    """The service this app was built with (no globals: each app has its own)."""
    return request.app.state.service  # type: ignore[no-any-return]


def log_fields(request: Request) -> dict[str, Any]:
    """The dict the access log reads when the response is done (model, tokens, TTFT)."""
    return request.scope.setdefault("state", {}).setdefault("pgpt_log", {})  # type: ignore[no-any-return]


@router.get("/health")
async def health() -> dict[str, str]:
    """Alive (no key needed): the process answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """200 once the default chat model has loaded (also while it is unloaded after its keep-alive), 503
    before and after a failed load."""
    service = service_of(request)
    service.retry_failed_load()  # models exported after the start are found without a restart
    if service.ready:  # "loaded": false after an idle unload: the next request loads it again
        return JSONResponse({"status": "ready", "loaded": service.pool.ready(),
                             "models": [m["id"] for m in service.models()]})
    reason = f"loading failed: {service.load_error}" if service.load_error else "loading"
    return JSONResponse({"status": reason}, status_code=503, headers={"Retry-After": "2"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format (the gauges read from the model pool now)."""
    service = service_of(request)
    await asyncio.to_thread(service.refresh_gauges)
    body, content_type = service.metrics.exposition()
    return Response(body, media_type=content_type)


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    """The models this server serves: loaded, version, size, when they unload."""
    return {"object": "list", "data": service_of(request).models()}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    """One model of GET /v1/models, by its id (OpenAI's ``models.retrieve``)."""
    models = service_of(request).models()
    name, _, version = model_id.partition("@")
    for model in models:
        if model_id == model["id"] or (model_id == "default" and model.get("default")):
            return model
        # its active version by a unique prefix, as chat completions and `models --use` take it (t63)
        if version and name == model["id"] and _version_of(request, name, version) == model.get("version"):
            return model
    raise ModelNotFoundError(f"This server serves no model {model_id!r}; it serves "
                             f"{', '.join(m['id'] for m in models) or 'none yet'}.", hint="See GET /v1/models.")


def _version_of(request: Request, name: str, prefix: str) -> str:
    """The version of ``name`` that ``prefix`` starts (among its kept versions), or '' when none or several do."""
    from pgpt.runtime.errors import PgptError
    from pgpt.runtime.versions import find_version

    try:
        return find_version(service_of(request).settings, name, prefix).version
    except PgptError:
        return ""


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    """OpenAI's chat completions (stream or not), with PrivateGPT's use_context and sources."""
    return await _answer(body, request)


@router.post("/v1/completions", response_model=None)
async def completions(body: CompletionRequest, request: Request) -> Any:
    """OpenAI's legacy completions, as ollama and PrivateGPT serve them: the prompt asked as one
    user message (the chat template applies), answered as ``text_completion`` objects."""
    return await _answer(body.as_chat(), request, legacy=True)


async def _answer(body: ChatCompletionRequest, request: Request, legacy: bool = False) -> Any:
    heartbeat = request.headers.get("x-pgpt-heartbeat") == "1"  # pgpt's client: see Completion.heartbeat
    completion = await start_completion(service_of(request), body, log_fields(request), legacy, heartbeat,
                                        server_url(request))
    if body.stream:
        return CompletionStream(completion)
    try:
        return await until_disconnected(request.receive, complete(completion))
    finally:
        completion.close()  # the lease, also when the work never started


def server_url(request: Request) -> str:
    """This server's address as the request reached it (its Host header, which HostGuard checked), for
    a command that a message names; "URL" when it is no plain address (none given, or odd characters)."""
    url = str(request.base_url).rstrip("/")  # without a Host header: the bound address, maybe 0.0.0.0
    return url if request.headers.get("host") and _PLAIN_URL.fullmatch(url) else "URL"


_PLAIN_URL = re.compile(r"https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*")


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request) -> dict[str, Any]:
    """OpenAI's embeddings with the server's embedding model (float lists or base64)."""
    service = service_of(request)
    embedder = await service.embedder()
    if body.model not in ("default", "", embedder.info.name):
        await asyncio.to_thread(_refuse_chat_model, service, body.model, embedder.info.name)
        raise ModelNotFoundError(f"This server embeds with {embedder.info.name}, not {body.model[:80]!r}.",
                                 hint="Ask for model 'default' or see GET /v1/models.")
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts:
        raise InvalidRequestError("input is an empty list: there is nothing to embed.",
                                  hint="Send one text, or a list of 1 to 2048 texts.")
    if not all(isinstance(t, str) for t in texts):
        raise InvalidRequestError("input must be a text or a list of texts (token ids are not supported).")
    if empty := [n for n, t in enumerate(texts) if not t.strip()]:  # OpenAI refuses them too
        raise InvalidRequestError(f"input {empty[0]} is empty or only whitespace; an empty text has no meaning "
                                  "to embed.", hint="Leave empty texts out of the request.")
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequestError(f"{len(texts)} inputs in one request; the limit is {MAX_EMBEDDING_INPUTS}.")
    async with service.embedding_jobs.turn(), cancelled_when_gone(request.receive, service.stopping) as cancel:
        if not body.truncate:
            await asyncio.to_thread(_refuse_long_inputs, embedder, texts)
        vectors = await asyncio.to_thread(_embed_in_batches, embedder, texts, cancel)
    if body.dimensions not in (None, vectors.shape[1]):  # silently 384 where 64 were asked broke a vector store
        raise InvalidRequestError(f"dimensions={body.dimensions}: {embedder.info.name} gives vectors of "
                                  f"{vectors.shape[1]} dimensions and cannot shorten them.",
                                  hint=f"Leave out dimensions, or send {vectors.shape[1]}.")
    tokens = sum(len(e.ids) for e in embedder.tokenizer.encode_batch(texts))
    log_fields(request).update(model=embedder.info.ref, prompt_tokens=tokens)
    return {"object": "list", "model": embedder.info.name,
            "data": [{"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
                     for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _embed_in_batches(embedder: Any, texts: list[str], cancel: Any) -> Any:
    """The texts' vectors, EMBED_BATCH at a time, stopping between batches once ``cancel`` is set:
    2,048 long inputs take two minutes of both cores, which went on after the client left (t52)."""
    parts = []
    for start in range(0, len(texts), EMBED_BATCH):
        if cancel.is_set():
            raise Cancelled("The client closed the connection before its embeddings were done.")
        parts.append(embedder.embed(texts[start:start + EMBED_BATCH]))
    return np.concatenate(parts)


EMBED_BATCH = 64


def _refuse_long_inputs(embedder: Any, texts: list[str]) -> None:
    """400 for a text longer than the embedder reads, as OpenAI answers: its vector would stand for
    the first paragraph only (2 MB gave a 200 and the vector of its first 256 word pieces)."""
    for number, text in enumerate(texts):
        # characters bound the pieces from above: most texts need no count at all
        if len(text) > embedder.max_tokens - 2 and (tokens := embedder.count_tokens(text)) > embedder.max_tokens:
            raise InvalidRequestError(
                f"input {number} has {tokens:,} word pieces; {embedder.info.name} reads at most "
                f"{embedder.max_tokens}, so its vector would stand for the first part only.",
                hint="Split the text into passages (as ingestion does), or send \"truncate\": true to embed "
                     "its beginning.")


def _refuse_chat_model(service: Service, name: str, served: str) -> None:
    """UsageError (400) when ``name`` is one of the exported chat models: the same words as a chat
    completion naming an embedding model. Only model names are looked up, never a client's path."""
    from pgpt.runtime.models import list_models, require_kind

    for info in list_models(service.settings):
        if info.name == name:
            require_kind(info, "embedding", hint=f"This server embeds with {served}: ask for model 'default' "
                                                 f"or {served!r} (GET /v1/models gives each model's kind).")


def _encode(vector: np.ndarray, encoding: str) -> Any:
    if encoding == "base64":  # what the openai client asks for by default: little-endian float32
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


@router.post("/v1/chunks")
async def chunks(body: ChunksRequest, request: Request) -> dict[str, Any]:
    """PrivateGPT: the passages closest to a text (no language model runs)."""
    if not body.text.strip():
        raise InvalidRequestError("text is empty: there is nothing to search for.",
                                  hint="Send the question or words to find in the documents.")
    filters = body.context_filter.docs_ids if body.context_filter else None
    return await documents.chunks(service_of(request), body.text, filters, body.limit, body.prev_next_chunks,
                                  body.collection)


@router.post("/v1/ingest")  # PrivateGPT's older name, still served by it and called by its SDK's ingest()
@router.post("/v1/ingest/file")
async def ingest_file(request: Request, file: UploadFile = File(...), collection: str = Form(""),
                      file_name: str = Form("")) -> dict[str, Any]:
    """PrivateGPT: index an uploaded file (multipart field ``file``); pgpt's ``file_name`` field
    names it with its folders (``docs/guide/README.md``), as ``pgpt-tui ingest`` sends a folder."""
    form = await request.form()  # parsed once: FastAPI read the same form
    check_arguments(f"POST {request.url.path}", list(form.keys()), ["file", "collection", "file_name"], "form fields")
    _check_query(request)
    files = form.getlist("file")
    if len(files) > 1:  # FastAPI binds one; the others were dropped without a word
        raise InvalidRequestError(f"The request holds {len(files)} files; each upload takes one (form field file).",
                                  hint="Send one request per file (pgpt-tui ingest PATH does so for a folder).")
    chosen = _collection(collection, request.query_params.get("collection"), "form field")
    return await documents.ingest_upload(service_of(request), file_name or file.filename, file.file, chosen,
                                         request.receive, progress_id(request.headers))


@router.post("/v1/ingest/text")
async def ingest_text(body: IngestTextRequest, request: Request) -> dict[str, Any]:
    """PrivateGPT: index a text under a file name."""
    _check_query(request)
    # named as text, before it is stored: the readers' words are about files ("binary file")
    if not body.text.strip():
        raise InvalidRequestError("text is empty: there is nothing to index.", hint="Send the document's text.")
    if "\x00" in body.text:
        raise InvalidRequestError("text holds NUL characters, which no document text has (binary data?).",
                                  hint="Send text; upload a binary document (PDF, .docx) to /v1/ingest/file.")
    chosen = _collection(body.collection or "", request.query_params.get("collection"), "body field")
    return await documents.ingest_text(service_of(request), body.file_name, body.text, chosen, request.receive,
                                       progress_id(request.headers))


@router.get("/v1/ingest/progress/{key}")
async def ingest_progress(key: str, request: Request) -> dict[str, Any]:
    """pgpt: how far the upload sent with ``X-Pgpt-Progress-Id: KEY`` is (upload_progress.py); 404
    before it arrives and once it is answered."""
    found = service_of(request).upload_progress.get(key.lower())
    if found is None:
        raise RequestRefusedError("No upload with this progress id is being indexed (it was answered, or has not "
                                  "arrived).", status=404,
                                  hint="Send the upload with the header X-Pgpt-Progress-Id: 32 hex digits.")
    return {"object": "ingest.progress", **found}


def _check_query(request: Request) -> None:
    """Refuse a misspelled query parameter of an ingest route (``?colection=``), log any other."""
    check_arguments(f"POST {request.url.path}", list(request.query_params.keys()), ["collection"],
                    "query parameters")


def _collection(given: str, query: str | None, field: str) -> str:
    """The collection an upload goes into: from the request's own field or the query string (the
    two ingest routes once read different places, and a collection in the other one was ignored)."""
    if given and query is not None and query != given:
        raise InvalidRequestError(f"The collection is given twice, as {given[:80]!r} ({field}) and {query[:80]!r} "
                                  "(?collection=).", hint="Give it once.")
    return given or query or "default"


@router.get("/v1/ingest/list")
async def ingest_list(request: Request) -> dict[str, Any]:
    """PrivateGPT: the indexed documents and their ids; pgpt's ``?collection=`` lists one collection
    (it was ignored, and a script listing one team's documents got everybody's, t46)."""
    check_arguments(f"GET {request.url.path}", list(request.query_params.keys()), ["collection"], "query parameters")
    return await documents.list_documents(service_of(request), request.query_params.get("collection"))


@router.delete("/v1/ingest")
@router.delete("/v1/ingest/")  # an empty id was a 307 to /v1/ingest, then a 405
async def ingest_delete_without_id() -> Response:
    """No document named: a 404 that says what to send."""
    raise RequestRefusedError("DELETE names no document: send DELETE /v1/ingest/{doc_id}.", status=404,
                              hint="GET /v1/ingest/list lists the documents and their ids.")


@router.delete("/v1/ingest/{doc_id}")
async def ingest_delete(doc_id: str, request: Request) -> Response:
    """PrivateGPT: forget one document."""
    await documents.delete_document(service_of(request), doc_id)
    # JSON null, as PrivateGPT (FastAPI) answers: its SDK parses every 2xx body as JSON.
    return Response(b"null", status_code=200, media_type="application/json")
