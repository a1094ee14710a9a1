"""The measurements of ``bench.cuda``: node placement, batched vs single-stream answers, the KV
buffer's device, CUDA vs CPU logits, speed of one stream and of a batch, and PyTorch beside it."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from pgpt.bench.cuda import gpu_used_mb, load, text_ids

PROMPTS = ("What is the capital of France?", "Give me three tips for staying healthy.", "Write a haiku about the sea.",
           "Explain what a binary search does.", "Name three colors of the rainbow.", "How do plants make food?",
           "What is 12 times 12?", "Tell me a fun fact about cats.")
NEAR_TIE = 1e-3  # the CPU tests' bound on fp32 logits
CONTEXT = 2048  # a sequence's positions in the benchmark's schedulers (the models allow far more)


def placement(model: Any) -> dict[str, Any]:
    """Which execution provider ran each node of a prompt chunk and 16 decode steps, from ONNX
    Runtime's own profile, and the copies between host and device it inserted."""
    import onnxruntime as ort

    from pgpt.runtime.llm.session import CPU, CUDA, session_options

    options = session_options()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "profile")
    providers = [CUDA, CPU] if model.device == "cuda" else [CPU]
    model.session = ort.InferenceSession(str(model.info.path / "model.onnx"), options, providers=providers)
    ids = text_ids(model, 80)
    model.forward_logits(ids, prompt_len=64)
    events = json.loads(Path(model.session.end_profiling()).read_text())
    nodes: dict[str, set[str]] = defaultdict(set)
    micros: Counter[str] = Counter()
    cpu_ops: dict[str, set[str]] = defaultdict(set)
    copies: Counter[str] = Counter()
    for event in events:
        args = event.get("args", {})
        if event.get("cat") != "Node" or "provider" not in args or not event["name"].endswith("_kernel_time"):
            continue
        provider, op = args["provider"], args.get("op_name", "")
        nodes[provider].add(event["name"])
        micros[provider] += int(event.get("dur", 0))
        if provider == CPU:
            cpu_ops[op].add(event["name"])
        if op.startswith("Memcpy"):
            copies[f"{op} {args.get('output_type_shape')}"] += 1
    return {"providers": model.session.get_providers(), "nodes": {p: len(n) for p, n in nodes.items()},
            "kernel_ms": {p: round(us / 1000, 2) for p, us in micros.items()}, "cpu_nodes": {op: len(n) for op, n in cpu_ops.items()},
            "copies": dict(copies.most_common(12))}


def _single(model: Any, ids: list[int], options: Any) -> list[int]:
    model.release_kv()  # a fresh buffer: the prompt is read from its start, as the scheduler reads it
    return list(model.generate(ids, options))


def batch_equal(model: Any) -> dict[str, Any]:
    """8 greedy answers of 40 tokens through the scheduler (4 at once, 4 joining while they decode,
    one of them a 600-token prompt read in chunks), each against the single-stream answer."""
    from pgpt.runtime.llm.sampling import SamplingOptions
    from pgpt.runtime.llm.serving.scheduler import Scheduler, SchedulerConfig

    greedy = SamplingOptions(max_new_tokens=40, ignore_eos=True)
    prompts = [model.tokenize(model.render_prompt([{"role": "user", "content": p}])) for p in PROMPTS]
    prompts[5] = text_ids(model, 600, offset=11)
    singles = [_single(model, ids, greedy) for ids in prompts]
    scheduler = Scheduler(model, SchedulerConfig(parallel=8, max_queue=8, context=CONTEXT))
    try:
        generations = [scheduler.submit(ids, greedy) for ids in prompts[:4]]
        while len(generations[0].tokens) < 5 and not generations[0].done:
            time.sleep(0.001)
        generations += [scheduler.submit(ids, greedy) for ids in prompts[4:]]
        for generation in generations:
            if not generation.wait(300):
                raise TimeoutError(f"{generation} did not end in 300 s")
        stats = scheduler.stats()
    finally:
        scheduler.close()
    rows = []
    for ids, single, generation in zip(prompts, singles, generations):
        row: dict[str, Any] = {"prompt_tokens": len(ids), "equal": generation.tokens == single,
                               "finish": generation.finish_reason, "error": repr(generation.error or "")}
        if generation.tokens != single:
            first = next(i for i, (a, b) in enumerate(zip(single + [-1], generation.tokens + [-1])) if a != b)
            logits = model.forward_logits(ids + single[:first], prompt_len=len(ids))[-1]
            top2 = np.sort(logits.astype(np.float32))[-2:]
            row.update(first_difference=first, top2_gap=float(top2[1] - top2[0]),
                       near_tie=bool(top2[1] - top2[0] <= NEAR_TIE))
        rows.append(row)
    return {"equal": sum(r["equal"] for r in rows), "of": len(rows), "rows": rows,
            "rows_per_decode_step": round(stats.decode_rows / max(stats.decode_steps, 1), 2)}


def kv_on_device(model: Any) -> dict[str, Any]:
    """Where a 16-slot scheduler's KV buffer lives, and what it took of the GPU's memory."""
    from pgpt.runtime.llm.sampling import SamplingOptions
    from pgpt.runtime.llm.serving.scheduler import Scheduler, SchedulerConfig

    before = gpu_used_mb()
    scheduler = Scheduler(model, SchedulerConfig(parallel=16, max_queue=0, context=CONTEXT))
    try:
        buffer = scheduler.kv_buffer
        assert buffer is not None, "the fused graph did not batch"
        allocated = gpu_used_mb()
        generations = [scheduler.submit(text_ids(model, 300, offset=50 * i), SamplingOptions(max_new_tokens=64,
                                                                                             ignore_eos=True))
                       for i in range(16)]
        for generation in generations:
            generation.wait(300)
        return {"buffer_device": buffer.device, "tensor_devices": sorted(buffer.devices),
                "host_arrays": len(buffer.arrays), "reserved_mb": round(buffer.reserved_bytes / 1e6, 1),
                "resident_mb_after_16": round(buffer.resident_bytes / 1e6, 1), "gpu_used_mb_before": before,
                "gpu_used_mb_allocated": allocated, "gpu_used_mb_after_16": gpu_used_mb(),
                "answers": [g.finish_reason for g in generations].count("length")}
    finally:
        scheduler.close()


def cuda_vs_cpu(work: Path, name: str, provider: str) -> dict[str, Any]:
    """The same export's logits on CUDA and on the CPU EP over 300 tokens (two prompt chunks,
    then 40 decode steps): next-token agreement and the largest difference."""
    ids = text_ids(model=(gpu := load(work, name, provider)), tokens=300)
    on_gpu = gpu.forward_logits(ids, prompt_len=260).astype(np.float32)
    on_cpu = load(work, name, "cpu").forward_logits(ids, prompt_len=260).astype(np.float32)
    return {"positions": len(on_gpu), "top1_agreement": float((on_gpu.argmax(-1) == on_cpu.argmax(-1)).mean()),
            "max_abs_diff": float(np.abs(on_gpu - on_cpu).max()), "logit_std": float(on_cpu.std())}


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 4) if values else 0.0


def single_stream(model: Any, prompt_tokens: int, new_tokens: int = 128, repeats: int = 3) -> dict[str, Any]:
    """TTFT and decode tok/s of one generation (median of ``repeats``, after a warm-up)."""
    from pgpt.runtime.llm.sampling import SamplingOptions

    options = SamplingOptions(max_new_tokens=new_tokens + 1, ignore_eos=True)
    ttfts, rates = [], []
    for attempt in range(repeats + 1):
        model.release_kv()
        ids = text_ids(model, prompt_tokens, offset=attempt * 7)
        started = time.perf_counter()
        stream = model.generate(ids, options)
        next(stream)
        first = time.perf_counter()
        count = sum(1 for _ in stream)
        if attempt:  # the first run pays for CUDA's kernels and allocations
            ttfts.append(first - started)
            rates.append(count / (time.perf_counter() - first))
    return {"prompt_tokens": prompt_tokens, "ttft_s": round(statistics.median(ttfts), 4),
            "decode_tok_s": round(statistics.median(rates), 1)}


def concurrent(model: Any, levels: tuple[int, ...], prompt_tokens: int = 200, new_tokens: int = 128) -> list[dict]:
    """Aggregate tok/s and TTFT of ``n`` generations submitted at once, for each ``n``."""
    from pgpt.runtime.llm.sampling import SamplingOptions
    from pgpt.runtime.llm.serving.scheduler import Scheduler, SchedulerConfig

    options = SamplingOptions(max_new_tokens=new_tokens, ignore_eos=True)
    scheduler = Scheduler(model, SchedulerConfig(parallel=max(levels), max_queue=64, context=CONTEXT))
    rows = []
    try:
        scheduler.submit(text_ids(model, prompt_tokens, offset=3), options).wait(300)  # warm-up
        for level in levels:
            prompts = [text_ids(model, prompt_tokens, offset=1000 * level + 41 * i) for i in range(level)]
            started = time.perf_counter()
            generations = [scheduler.submit(ids, options) for ids in prompts]
            for generation in generations:
                generation.wait(600)
            wall = max(g.ended for g in generations) - started
            ttft = [g.timings["ttft_s"] for g in generations]
            tokens = sum(g.usage.completion_tokens for g in generations)
            rows.append({"clients": level, "tok_s": round(tokens / wall, 1), "ttft_p50_s": _percentile(ttft, 50),
                         "ttft_p95_s": _percentile(ttft, 95), "total_p95_s": _percentile(
                             [g.timings["total_s"] for g in generations], 95)})
    finally:
        scheduler.close()
    for row in rows:
        row["ratio"] = round(row["tok_s"] / rows[0]["tok_s"], 2)
    return rows


def speed(model: Any, levels: tuple[int, ...] = (1, 2, 4, 8, 16), bandwidth_gb_s: float = 0.0) -> dict[str, Any]:
    """One stream (200- and 1000-token prompts) and ``levels`` concurrent streams; the single
    stream's decode against what the memory bandwidth allows."""
    from pgpt.bench.bandwidth import onnx_bytes_per_token

    result: dict[str, Any] = {"provider": model.provider.name,
                              "single": [single_stream(model, 200), single_stream(model, 1000)],
                              "concurrent": concurrent(model, levels), "gpu_used_mb": gpu_used_mb()}
    per_token = onnx_bytes_per_token(model.info.path / "model.onnx")
    result["weight_mb_per_token"] = round(per_token / 1e6, 1)
    if bandwidth_gb_s:
        limit = bandwidth_gb_s * 1e9 / per_token
        result["bandwidth_limit_tok_s"] = round(limit, 1)
        result["share_of_limit"] = round(result["single"][0]["decode_tok_s"] / limit, 3)
    return result


def torch_baseline(shape: tuple[Any, int], device: str) -> dict[str, Any]:
    """PyTorch beside it, in a child process (its CUDA context apart from ONNX Runtime's)."""
    model, vocab = shape
    spec = json.dumps({"arch": model.arch, "layers": model.layers, "hidden": model.hidden, "heads": model.heads,
                       "kv_heads": model.kv_heads, "head_dim": model.head_dim, "intermediate": model.intermediate,
                       "rope_base": model.rope_base, "eps": model.eps, "vocab": vocab, "device": device})
    child = subprocess.run([sys.executable, "-m", "pgpt.bench.cuda.torch_run", spec], capture_output=True,
                           text=True, check=False, timeout=600)
    if child.returncode != 0:
        raise RuntimeError(f"the PyTorch run exited {child.returncode}: {child.stderr[-2000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])
