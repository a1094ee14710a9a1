"""This machine's memory bandwidth, and how close a decode speed comes to the limit it sets.

At 1.5B parameters and more, generating one token reads every weight of the model once (the
embedding table excepted: one row of it), and the weights no longer fit in any cache. So decode
tok/s can never exceed bandwidth / weight bytes per token. A STREAM-like numpy measurement gives
the bandwidth: each thread sums (read) or copies (read + write) its own slice of an array far
larger than the last-level cache; numpy releases the GIL in both, so the threads run in parallel
as ONNX Runtime's and llama.cpp's do. The best of a few repeats is kept, as STREAM does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

# Far above the last-level cache: a VM may see its whole socket's (480 MB on this project's VM).
ARRAY_MB = 2000
REPEATS = 5
# Tensors a decode step reads one row of, not all of: the embedding table, the rotary tables.
_PARTLY_READ = ("embed_tokens", "cos_cache", "sin_cache", "token_embd")


def measure_bandwidth(threads: int, size_mb: int = ARRAY_MB, repeats: int = REPEATS) -> dict[str, float]:
    """Read and copy bandwidth in GB/s with ``threads`` threads over a ``size_mb`` array.

    Returns:
        ``read_gb_s`` (bytes summed per second), ``copy_gb_s`` (bytes read + written per second,
        as STREAM counts its copy, over half the array into a second one) and the ``threads`` and
        ``size_mb`` used.
    """
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    threads = max(1, threads)
    # int64 ones: every page really allocated, and an integer sum is a plain vector add (a float
    # sum is pairwise and may run slower than memory on a weak core)
    source = np.ones(size_mb * 1_000_000 // 8, dtype=np.int64)
    half = source[: len(source) // 2]
    target = np.empty_like(half)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        def best(work: Any, length: int) -> float:
            parts = [slice(i * length // threads, (i + 1) * length // threads) for i in range(threads)]
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                list(pool.map(work, parts))
                times.append(time.perf_counter() - start)
            return min(times)

        best(lambda part: source[part].sum(), len(source))  # warm-up: threads started, pages touched
        read_s = best(lambda part: source[part].sum(), len(source))
        copy_s = best(lambda part: np.copyto(target[part], half[part]), len(half))
    return {"read_gb_s": round(source.nbytes / read_s / 1e9, 2), "copy_gb_s": round(2 * half.nbytes / copy_s / 1e9, 2),
            "threads": threads, "size_mb": size_mb}


def onnx_bytes_per_token(model_path: Path) -> int:
    """Weight bytes one decode step of an ONNX graph reads: its initializers, the partly read ones
    (embedding, rotary tables) left out. Read from the graph alone, without loading the weights."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    total = 0
    for tensor in model.graph.initializer:
        if tensor.name.startswith(_PARTLY_READ):
            continue
        length = next((int(e.value) for e in tensor.external_data if e.key == "length"), None)
        total += length if length is not None else _inline_bytes(tensor)
    return total


def _inline_bytes(tensor: Any) -> int:
    """Size of a tensor stored in the graph itself."""
    from onnx import numpy_helper

    if tensor.raw_data:
        return len(tensor.raw_data)
    return int(numpy_helper.to_array(tensor).nbytes)


def gguf_bytes_per_token(path: Path) -> int:
    """Weight bytes one llama.cpp decode step reads: every tensor of the GGUF but the embedding table."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    return sum(int(t.n_bytes) for t in reader.tensors if not t.name.startswith(_PARTLY_READ))


def bandwidth_limit(bytes_per_token: int, read_gb_s: float) -> float:
    """The decode tok/s that the bandwidth allows at most: GB/s over GB read per token."""
    return read_gb_s * 1e9 / bytes_per_token if bytes_per_token else 0.0


def set_limits(plan: list[tuple[dict[str, Any], Any]], bandwidth: dict[str, float]) -> None:
    """Give each row that will run its weight MB read per token and the tok/s the bandwidth allows.

    A row's job names an ONNX export (``job.model``: its main graph, the one decode runs) or a
    GGUF file (``job.gguf``: llama.cpp reads it as it is; PyTorch's fp32 copy is not counted).
    """
    for row, job in plan:
        if job is None:
            continue
        per_token = None
        if job.model is not None:
            per_token = onnx_bytes_per_token(job.model.path / "model.onnx")
        elif job.gguf is not None and job.engine == "llama.cpp":
            per_token = gguf_bytes_per_token(job.gguf)
        row["read_gb_s"] = bandwidth["read_gb_s"]
        if per_token:
            row["weights_mb_per_token"] = round(per_token / 1e6, 1)
            row["bandwidth_limit_tok_s"] = round(bandwidth_limit(per_token, bandwidth["read_gb_s"]), 1)
