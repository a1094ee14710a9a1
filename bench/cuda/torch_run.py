"""PyTorch (transformers) beside pgpt on the GPU: a model of the same shape in fp16, as most
users would run it (``generate``, greedy, its default attention and cache), with random weights
(speed does not depend on them). Prints one JSON line: TTFT, one stream's decode tok/s, and the
aggregate tok/s of 8 and 16 prompts decoded as one batch.

    python -m pgpt.bench.cuda.torch_run '{"arch": "qwen2", "layers": 28, ...}'
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any


def _config(spec: dict[str, Any]) -> Any:
    from transformers import LlamaConfig, Qwen2Config

    common = dict(vocab_size=spec["vocab"], hidden_size=spec["hidden"], intermediate_size=spec["intermediate"],
                  num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"],
                  num_key_value_heads=spec["kv_heads"], rope_theta=spec["rope_base"], rms_norm_eps=spec["eps"],
                  tie_word_embeddings=True, max_position_embeddings=4096)
    if spec["arch"] == "qwen2":
        return Qwen2Config(**common)
    return LlamaConfig(head_dim=spec["head_dim"], **common)


def measure(spec: dict[str, Any], prompt_tokens: int = 200, new_tokens: int = 128) -> dict[str, Any]:
    """TTFT (median of 3), decode tok/s of one stream, aggregate tok/s of batches of 8 and 16."""
    import torch
    from transformers import AutoModelForCausalLM

    device = torch.device(spec["device"])
    with device:
        model = AutoModelForCausalLM.from_config(_config(spec), dtype=torch.float16).eval()

    def timed(batch: int, tokens: int) -> float:
        ids = torch.randint(0, 500, (batch, prompt_tokens), device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, min_new_tokens=tokens,
                           do_sample=False, pad_token_id=0, eos_token_id=None)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    timed(1, 4)  # warm-up: kernels, allocator
    ttft = statistics.median(timed(1, 1) for _ in range(3))
    whole = statistics.median(timed(1, new_tokens + 1) for _ in range(2))
    result = {"engine": f"PyTorch {torch.__version__} fp16 (transformers generate)", "ttft_s": round(ttft, 4),
              "decode_tok_s": round(new_tokens / (whole - ttft), 1)}
    for batch in (8, 16):
        result[f"batch{batch}_tok_s"] = round(batch * new_tokens / timed(batch, new_tokens), 1)
    if device.type == "cuda":
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 1e6)
    return result


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
