"""`pgpt-tui bench-serve`: many concurrent clients against a real `pgpt-serve` (and llama.cpp's server).

Each engine runs as its own server process on a free 127.0.0.1 port; clients are threads using
the official ``openai`` client with streaming, as any user's script would. For each number of
concurrent clients, every client sends ``rounds`` chats (a prompt of about ``prompt_tokens``
tokens, unique per request so no cache answers it, exactly ``new_tokens`` new tokens: end of
text ignored) and then one documents question (PrivateGPT's ``use_context``; pgpt only), one
request after the other.

Measured per request: TTFT (request sent -> first content chunk), total latency, and the new
tokens the server reports in ``usage``. Per level: aggregate chat tokens/s (all chats' new
tokens / the wall time from the first chat sent to the last one answered), its ratio to one
client, p50/p95 of TTFT and of total latency (chats and documents questions apart).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgpt.runtime.errors import ConfigError
from pgpt.runtime.footprint import DEFAULT_CONTEXT
from pgpt.runtime.settings import Settings

ENGINES = ("pgpt", "llama.cpp")
FILLER = ("The harbour ferry timetable lists departures to the three islands, the fares for adults, children "
          "and bicycles, and the rules for dogs on board. ")
LLAMA_NOT_FOUND = ("not found: put llama.cpp's `llama-server` on PATH (or set LLAMA_SERVER), or install "
                   "llama-cpp-python[server] (that server runs one request at a time)")


@dataclass(frozen=True)
class ServeBenchOptions:
    """What `pgpt-tui bench-serve` measures.

    Attributes:
        clients: Numbers of concurrent clients, one level each.
        rounds: Chats per client per level (then one documents question each).
        prompt_tokens: Tokens of each chat prompt, chat template included (about).
        new_tokens: New tokens per chat (end of text ignored).
        parallel: The servers' running sequences (pgpt-serve --parallel, llama-server --parallel).
        engines: Servers to run, a subset of ``ENGINES``.
        model: pgpt model (default: the active one); llama.cpp runs its GGUF source.
        documents: Each client asks its documents question after its chats (pgpt only: its
            ~1000-token prompt overlaps the other clients' chats); False: chats only, the same
            load on both servers.
    """

    clients: tuple[int, ...] = (1, 2, 4, 8, 16)
    rounds: int = 2
    prompt_tokens: int = 200
    new_tokens: int = 128
    parallel: int = 8
    engines: tuple[str, ...] = ENGINES
    model: str = ""
    documents: bool = True

    def __post_init__(self) -> None:
        unknown = [e for e in self.engines if e not in ENGINES]
        if unknown:  # before: any name but pgpt silently ran llama.cpp
            raise ConfigError(f"Unknown engine {', '.join(unknown)} for bench-serve.",
                              hint=f"Choose from {', '.join(ENGINES)}.")


@dataclass
class _Result:
    kind: str  # chat or docs
    sent: float
    first: float = 0.0
    done: float = 0.0
    new_tokens: int = 0
    error: str = ""


@dataclass
class _Level:
    clients: int
    results: list[_Result] = field(default_factory=list)


def run_serve_bench(settings: Settings, options: ServeBenchOptions,
                    progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every engine's server and every level of clients; returns rows for the table."""
    from pgpt.runtime.models import active_chat_model, find_model

    model = find_model(settings, options.model) if options.model else active_chat_model(settings)
    prompts = _Prompts(model.path, options.prompt_tokens)
    rows: list[dict[str, Any]] = []
    for engine in options.engines:
        server = _pgpt_server if engine == "pgpt" else _llama_server
        try:
            with server(settings, model, options, progress) as (base_url, served_model, docs):
                rows += _run_levels(engine, base_url, served_model, docs, prompts, options, progress)
        except _Unavailable as reason:
            rows.append({"engine": engine, "skipped": str(reason)})
    return {"model": model.ref, "options": {k: getattr(options, k) for k in options.__dataclass_fields__},
            "rows": rows}


class _Unavailable(Exception):
    """An engine that cannot run here (the table says why)."""


class _Prompts:
    """Unique prompts of about ``tokens`` tokens (counted with the model's own tokenizer)."""

    def __init__(self, folder: Path, tokens: int) -> None:
        from pgpt.runtime.llm.text import load_tokenizer

        self._tokenizer = load_tokenizer(folder)
        self._tokens = tokens
        self._count = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        """A new prompt: a number that makes it unique, then filler cut to the token budget."""
        with self._lock:
            self._count += 1
            number = self._count
        text = f"Request {number}. Read this and say what it is about.\n" + FILLER * 20
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids[: max(self._tokens - 30, 10)]
        return self._tokenizer.decode(ids)  # the chat template adds about 30 tokens


def _run_levels(engine: str, base_url: str, model: str, docs: list[str], prompts: _Prompts,
                options: ServeBenchOptions, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    import openai

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="bench", max_retries=0, timeout=600)
    _chat(client, model, prompts.next(), 8)  # warm-up: the first requests load the model, embedder and index
    if docs:
        list(_docs_stream(client, model, docs[-1]))
    rows, single = [], 0.0
    questions = iter(docs)
    for clients in options.clients:
        level = _Level(clients)
        asked = [next(questions, "") for _ in range(clients)]
        threads = [threading.Thread(target=_client, args=(client, model, prompts, options, level, asked[i]))
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        row = _summary(engine, level)
        single = single or row["chat_tok_s"]
        row["ratio_to_1"] = round(row["chat_tok_s"] / single, 2) if single else 0.0
        progress(f"{engine}: {clients} client{'' if clients == 1 else 's'}: {row['chat_tok_s']} tok/s, p95 TTFT {row['chat_ttft_p95_s']} s")
        rows.append(row)
    return rows


def _client(client: Any, model: str, prompts: _Prompts, options: ServeBenchOptions, level: _Level,
            question: str) -> None:
    for _ in range(options.rounds):
        level.results.append(_timed(lambda: _chat_stream(client, model, prompts.next(), options.new_tokens), "chat"))
    if question:
        level.results.append(_timed(lambda: _docs_stream(client, model, question), "docs"))


def _timed(request: Callable[[], Iterator[tuple[str, int]]], kind: str) -> _Result:
    result = _Result(kind, time.perf_counter())
    try:
        for text, tokens in request():
            if text and not result.first:
                result.first = time.perf_counter()
            result.new_tokens = tokens or result.new_tokens
    except Exception as exc:  # a failed request is counted and shown, not fatal to the benchmark
        result.error = f"{type(exc).__name__}: {exc}"[:200]
    result.done = time.perf_counter()
    return result


def _chat_stream(client: Any, model: str, prompt: str, new_tokens: int) -> Iterator[tuple[str, int]]:
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=new_tokens, temperature=0.0,
        stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
    for chunk in stream:
        text = chunk.choices[0].delta.content or "" if chunk.choices else ""
        yield text, chunk.usage.completion_tokens if chunk.usage else 0


def _docs_stream(client: Any, model: str, question: str) -> Iterator[tuple[str, int]]:
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], max_tokens=128, temperature=0.0,
        stream=True, stream_options={"include_usage": True}, extra_body={"use_context": True,
                                                                        "include_sources": True})
    for chunk in stream:
        text = chunk.choices[0].delta.content or "" if chunk.choices else ""
        yield text, chunk.usage.completion_tokens if chunk.usage else 0


def _chat(client: Any, model: str, prompt: str, new_tokens: int) -> None:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                   max_tokens=new_tokens, temperature=0.0)


def _summary(engine: str, level: _Level) -> dict[str, Any]:
    chats = [r for r in level.results if r.kind == "chat" and not r.error]
    docs = [r for r in level.results if r.kind == "docs" and not r.error]
    wall = (max(r.done for r in chats) - min(r.sent for r in chats)) if chats else 0.0
    tokens = sum(r.new_tokens for r in chats)
    return {"engine": engine, "clients": level.clients, "chats": len(chats),
            "failed": sum(1 for r in level.results if r.error),
            "errors": sorted({r.error for r in level.results if r.error})[:3],
            "chat_tok_s": round(tokens / wall, 1) if wall else 0.0,
            "chat_ttft_p50_s": _percentile([r.first - r.sent for r in chats], 50),
            "chat_ttft_p95_s": _percentile([r.first - r.sent for r in chats], 95),
            "chat_total_p50_s": _percentile([r.done - r.sent for r in chats], 50),
            "chat_total_p95_s": _percentile([r.done - r.sent for r in chats], 95),
            "docs": len(docs),
            "docs_ttft_p50_s": _percentile([r.first - r.sent for r in docs if r.first], 50),
            "docs_total_p95_s": _percentile([r.done - r.sent for r in docs], 95)}


def _percentile(values: list[float], percent: int) -> float:
    """Nearest-rank percentile (what a p95 over few requests honestly is: one of them)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))
    return round(ordered[rank - 1], 3)


def format_results(results: dict[str, Any]) -> str:
    """The README table: one line per engine and number of clients."""
    lines = [f"model: {results['model']}",
             "| engine | clients | chats | chat tok/s | x one client | TTFT p50 / p95 | total p50 / p95 "
             "| docs TTFT p50 | failed |",
             "|---|---:|---:|---:|---:|---|---|---:|---:|"]
    for row in results["rows"]:
        if "skipped" in row:
            lines.append(f"| {row['engine']} | {row['skipped']} |||||||")
            continue
        lines.append(
            f"| {row['engine']} | {row['clients']} | {row['chats']} | {row['chat_tok_s']} | {row['ratio_to_1']} "
            f"| {row['chat_ttft_p50_s']} / {row['chat_ttft_p95_s']} s "
            f"| {row['chat_total_p50_s']} / {row['chat_total_p95_s']} s | {row['docs_ttft_p50_s'] or '-'} "
            f"| {row['failed']} |")
    return "\n".join(lines)


# The servers ----------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    """Poll ``url`` until it answers 200; raise when the process exits or time runs out."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise _Unavailable(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise _Unavailable(f"no answer from {url} after {timeout_s:.0f} s")


@contextmanager
def _process(command: list[str], env: dict[str, str], health: str, log: Path) -> Iterator[None]:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_http(health, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def _pgpt_server(settings: Settings, model: Any, options: ServeBenchOptions,
                 progress: Callable[[str], None]) -> Iterator[tuple[str, str, list[str]]]:
    """pgpt-serve on the model, with the benchmark corpus ingested in a fresh home."""
    from pgpt.bench.corpora import QUESTION_SETS, build_corpus

    with tempfile.TemporaryDirectory(prefix="pgpt-bench-serve-") as work:
        home = Path(work) / "home"
        env = {**os.environ, "PGPT_HOME": str(home), "PGPT_MODEL_CACHE": str(settings.model_cache),
               "PGPT_PROVIDER": settings.provider, "HF_HUB_OFFLINE": "1"}
        progress("pgpt: ingesting the documents corpus")
        files = build_corpus(Path(work) / "corpus")
        subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "ingest", *map(str, files)], env=env,
                       check=True, capture_output=True)
        port = free_port()
        command = [sys.executable, "-m", "pgpt.serve.cli", "--port", str(port), "--model", model.name,
                   "--parallel", str(options.parallel), "--max-queue", "256", "--context", str(DEFAULT_CONTEXT),
                   "--max-tokens-cap", str(max(options.new_tokens, 128))]
        progress(f"pgpt: starting pgpt-serve on port {port}")
        with _process(command, env, f"http://127.0.0.1:{port}/health", Path(work) / "server.log"):
            questions = [q["question"] for q in QUESTION_SETS["named"].load()] if options.documents else []
            yield f"http://127.0.0.1:{port}", model.name, questions


@contextmanager
def _llama_server(settings: Settings, model: Any, options: ServeBenchOptions,
                  progress: Callable[[str], None]) -> Iterator[tuple[str, str, list[str]]]:
    """llama.cpp's server on the GGUF the model was exported from (chats only)."""
    source = model.manifest.get("source", {})
    gguf = Path(str(source.get("path", "")))
    if source.get("type") != "gguf" or not gguf.is_file():
        raise _Unavailable("the model was not exported from a GGUF file on this machine")
    port = free_port()
    binary = os.environ.get("LLAMA_SERVER") or shutil.which("llama-server")
    threads = str(os.cpu_count() or 1)
    if binary:
        command = [binary, "-m", str(gguf), "--port", str(port), "--host", "127.0.0.1", "--parallel",
                   str(options.parallel), "-c", str(options.parallel * DEFAULT_CONTEXT), "-t", threads, "--cont-batching"]
    else:
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llama_cpp.server") is None:
            raise _Unavailable(LLAMA_NOT_FOUND)
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--port", str(port),
                   "--host", "127.0.0.1", "--n_ctx", "2048", "--n_threads", threads]
    progress(f"llama.cpp: starting {Path(command[0]).name} on port {port}")
    with tempfile.TemporaryDirectory(prefix="pgpt-bench-llama-") as work:
        with _process(command, dict(os.environ), f"http://127.0.0.1:{port}/v1/models", Path(work) / "server.log"):
            yield f"http://127.0.0.1:{port}", gguf.name, []
