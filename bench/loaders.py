"""`pgpt-tui bench`, in the child process: load one engine, warm it up, time its runs, report its memory.

Each loader returns the load time and a ``timed_run(new_tokens)`` that gives the call's start and a
timestamp per generated token; ``measure`` turns those into the row's numbers (see pgpt.bench.engines
for the method, which is the same for every engine).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgpt.runtime.models import ModelInfo


@dataclass(frozen=True)
class Job:
    """One engine run, sent to a child process (picklable)."""

    engine: str
    prompt_ids: list[int]
    new_tokens: int
    repeats: int
    threads: int
    provider: str
    model: ModelInfo | None = None
    gguf: Path | None = None


TimedRun = Callable[[int], tuple[float, list[float]]]  # new tokens -> (start, token timestamps)


def measure(job: Job) -> dict[str, Any]:
    """In the child: load the engine, warm up, time ``repeats`` runs, report medians and peak RSS."""
    loaders = {"pgpt": _load_pgpt, "optimum": _load_optimum, "torch": _load_torch, "llama.cpp": _load_llama}
    try:
        load_s, timed_run = loaders[job.engine](job)
        timed_run(2)  # warm-up: first-run allocations and kernel choices are not what users wait for
        ttfts, rates = [], []
        for _ in range(job.repeats):
            start, stamps = timed_run(job.new_tokens)
            ttfts.append(stamps[0] - start)
            rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0)
    except Exception as exc:  # reported in the row: one engine failing must not stop the others
        first_line = (str(exc).strip().splitlines() or [""])[0][:120]
        return {"status": f"failed: {type(exc).__name__}: {first_line}", "peak_rss_mb": _peak_rss_mb()}
    return {"decode_tok_s": round(statistics.median(rates), 1), "ttft_s": round(statistics.median(ttfts), 3),
            "peak_rss_mb": _peak_rss_mb(), "load_s": round(load_s, 2), "status": "ok"}


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    VmHWM rather than ``ru_maxrss``: Linux folds the parent's high-water mark into the child's
    ru_maxrss at exec, so a large parent (a test session) would inflate every engine's figure.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _load_pgpt(job: Job) -> tuple[float, TimedRun]:
    from pgpt.runtime.llm.generation import LanguageModel
    from pgpt.runtime.llm.sampling import SamplingOptions

    assert job.model is not None
    start = time.perf_counter()
    model = LanguageModel(job.model, provider=job.provider, threads=job.threads)
    load_s = time.perf_counter() - start

    def timed_run(new_tokens: int) -> tuple[float, list[float]]:
        options = SamplingOptions(max_new_tokens=new_tokens, ignore_eos=True)
        # Every run reads the whole prompt, as the other engines do: the buffer the previous run
        # left would hold all but its last token (bench-chat measures that reuse).
        model.release_kv()
        start = time.perf_counter()
        return start, [time.perf_counter() for _ in model.generate(job.prompt_ids, options)]

    return load_s, timed_run


class _TokenClock:
    """A transformers streamer that timestamps every ``put``: the prompt first, then each new token."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def put(self, value: Any) -> None:
        self.stamps.append(time.perf_counter())

    def end(self) -> None:
        pass


def _hf_timed_run(model: Any, prompt_ids: list[int]) -> TimedRun:
    import torch

    ids = torch.tensor([prompt_ids], dtype=torch.long)
    mask = torch.ones_like(ids)

    def timed_run(new_tokens: int) -> tuple[float, list[float]]:
        clock = _TokenClock()
        start = time.perf_counter()
        with torch.inference_mode():
            # min_new_tokens == max_new_tokens masks EOS: a fixed length, like pgpt's ignore_eos.
            model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, streamer=clock, pad_token_id=model.generation_config.eos_token_id)
        return start, clock.stamps[1:]

    return timed_run


def _load_optimum(job: Job) -> tuple[float, TimedRun]:
    from optimum.onnxruntime import ORTModelForCausalLM

    from pgpt.runtime.llm.session import choose_provider, session_options

    assert job.model is not None
    provider = "CUDAExecutionProvider" if choose_provider(job.provider).name == "cuda" else "CPUExecutionProvider"
    start = time.perf_counter()
    # Same folder and session options (threads, graph optimizations) as pgpt; IO binding stays
    # Optimum's default (CUDA only): forcing it on CPU was not faster in a trial here.
    model = ORTModelForCausalLM.from_pretrained(job.model.path, provider=provider,
                                                session_options=session_options(job.threads))
    return time.perf_counter() - start, _hf_timed_run(model, job.prompt_ids)


def _load_torch(job: Job) -> tuple[float, TimedRun]:
    os.environ.setdefault("TQDM_DISABLE", "1")  # this child only: no de-quantizing progress bar on stderr
    import torch
    from transformers import AutoModelForCausalLM

    assert job.gguf is not None
    torch.set_num_threads(job.threads)
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(job.gguf.parent, gguf_file=job.gguf.name, dtype=torch.float32)
    model.eval()
    return time.perf_counter() - start, _hf_timed_run(model, job.prompt_ids)


def _load_llama(job: Job) -> tuple[float, TimedRun]:
    from llama_cpp import Llama

    assert job.gguf is not None
    start = time.perf_counter()
    # Prompt (batch) threads too: llama-cpp-python's n_threads_batch defaults to every logical CPU.
    llm = Llama(model_path=str(job.gguf), n_threads=job.threads, n_threads_batch=job.threads,
                n_ctx=max(2048, len(job.prompt_ids) + job.new_tokens + 1), verbose=False)
    load_s = time.perf_counter() - start

    def timed_run(new_tokens: int) -> tuple[float, list[float]]:
        llm.reset()  # otherwise the matching prompt prefix of the last run is reused and TTFT shrinks
        stamps: list[float] = []
        start = time.perf_counter()
        # Llama.generate yields one token id per step, like pgpt's iterator (create_completion's
        # stream yields detokenized text: chunks held back on partial UTF-8, an extra final one).
        # Greedy; it does not stop at EOS, as pgpt's ignore_eos.
        for _token in llm.generate(job.prompt_ids, temp=0.0, repeat_penalty=1.0):
            stamps.append(time.perf_counter())
            if len(stamps) == new_tokens:
                break
        return start, stamps

    return load_s, timed_run
