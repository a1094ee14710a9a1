"""What an exported model costs: parameters, size on disk and the memory it needs once loaded.

The expected memory is what `pgpt-tui bench` measures as peak RSS, predicted before loading:
the weights (the ONNX files, which ONNX Runtime reads or maps whole), the KV buffer at a context
length, and the runtime itself (Python, ONNX Runtime, tokenizer; measured, ``RUNTIME_MB``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgpt.runtime.models import ModelInfo

# Context the expected memory is given for: a conversation or a documents question with its
# passages fits in it, and every supported model holds at least this many tokens.
DEFAULT_CONTEXT = 4096
# Peak RSS of a `pgpt-tui chat` process beside its model's weights and KV buffer: Python,
# numpy, ONNX Runtime, tokenizers, jinja2 and the session's working memory for a 256-token
# prompt chunk (measured with the default model, see tests/runtime/test_footprint.py).
RUNTIME_MB = 150
_GRAPH_FILES = (".onnx", ".onnx.data", ".onnx_data", ".data")
_KV_BYTES = 4  # the KV buffer is float32


@dataclass(frozen=True)
class Footprint:
    """Sizes of one exported model.

    Attributes:
        parameters: Weights of the model (its source's count when the manifest has it).
        size_bytes: Every file of the export.
        weight_bytes: The graph files (ONNX and external data), the part that is loaded.
        kv_bytes_per_token: KV buffer bytes per token of context (0 for an embedding model).
        context: Tokens of context ``expected_bytes`` is given for.
        expected_bytes: Expected resident memory once loaded with ``context`` tokens of KV buffer.
    """

    parameters: int
    size_bytes: int
    weight_bytes: int
    kv_bytes_per_token: int
    context: int
    expected_bytes: int


def footprint(info: ModelInfo, context: int = DEFAULT_CONTEXT) -> Footprint:
    """The footprint of ``info`` with a KV buffer of ``context`` tokens (at most the model's own).

    Reads only the manifest and config.json: fast enough for every listing.
    """
    config = _read_config(info.path)
    weights = sum(int(f["size"]) for f in info.manifest["files"] if str(f["path"]).endswith(_GRAPH_FILES))
    kv_per_token = kv_bytes_per_token(config) if info.kind == "llm" else 0
    context = min(context, int(config.get("max_position_embeddings") or context)) if kv_per_token else 0
    expected = weights + kv_per_token * context + RUNTIME_MB * 1_000_000 + _packed_twice(info.manifest, config)
    return Footprint(parameter_count(info, config), info.size_bytes, weights, kv_per_token, context, expected)


def _packed_twice(manifest: dict[str, Any], config: dict[str, Any]) -> int:
    """Memory of the decode graph's weights a prefill graph made from it (pgpt-export --prefill
    int8) reads from the same file: on disk once, but ONNX Runtime packs ``down_proj`` and
    ``lm_head`` again for the prefill session (4-bit or 8-bit codes with an fp32 scale and block
    sum per 32 weights). Measured on Qwen2.5-1.5B int4: about 0.45 GB beyond the files."""
    shared = (manifest.get("prefill") or {}).get("weights") or {}
    if "down_proj" not in shared or not config.get("intermediate_size"):
        return 0
    hidden, ffn = int(config["hidden_size"]), int(config["intermediate_size"])
    weights = int(config.get("num_hidden_layers") or 0) * hidden * ffn + int(config.get("vocab_size") or 0) * hidden
    return int(weights * ((4 if manifest.get("dtype") == "int4" else 8) / 8 + 0.25))


def kv_bytes_per_token(config: dict[str, Any]) -> int:
    """Keys and values of every layer for one token, in bytes (float32)."""
    layers = int(config.get("num_hidden_layers") or 0)
    heads = int(config.get("num_attention_heads") or 1)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or int(config.get("hidden_size") or 0) // heads)
    return 2 * layers * kv_heads * head_dim * _KV_BYTES


def parameter_count(info: ModelInfo, config: dict[str, Any] | None = None) -> int:
    """The model's weights: the manifest's count, else computed from config.json (0 when neither
    says)."""
    recorded = info.manifest.get("parameters")
    if isinstance(recorded, int) and recorded > 0:
        return recorded
    config = _read_config(info.path) if config is None else config
    if not (config.get("hidden_size") and config.get("intermediate_size")):
        return 0
    return decoder_parameters(config) if info.kind == "llm" else encoder_parameters(config)


def decoder_parameters(config: dict[str, Any]) -> int:
    """Weights of a Llama-family decoder described by its config.json (tied embeddings counted once)."""
    hidden, ffn = int(config["hidden_size"]), int(config["intermediate_size"])
    vocab, layers = int(config.get("vocab_size") or 0), int(config.get("num_hidden_layers") or 0)
    heads = int(config.get("num_attention_heads") or 1)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    q, kv = heads * head_dim, kv_heads * head_dim
    attention = hidden * (q + 2 * kv) + q * hidden
    if config.get("model_type") == "qwen2" or config.get("attention_bias"):
        attention += q + 2 * kv
    if config.get("model_type") in ("qwen3", "gemma3", "gemma3_text"):
        attention += 2 * head_dim  # the per-head q and k norms
    norms = (4 if str(config.get("model_type", "")).startswith("gemma3") else 2) * hidden
    per_layer = attention + 3 * hidden * ffn + norms
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings", False) else 2)
    return embeddings + layers * per_layer + hidden


def encoder_parameters(config: dict[str, Any]) -> int:
    """Weights of a BERT-family encoder described by its config.json (the pooler included)."""
    hidden, ffn = int(config["hidden_size"]), int(config["intermediate_size"])
    rows = sum(int(config.get(key) or 0) for key in ("vocab_size", "max_position_embeddings", "type_vocab_size"))
    per_layer = 4 * (hidden * hidden + hidden) + 2 * hidden * ffn + ffn + hidden + 4 * hidden
    return rows * hidden + 2 * hidden + int(config.get("num_hidden_layers") or 0) * per_layer + hidden * hidden + hidden


def _read_config(folder: Path) -> dict[str, Any]:
    from pgpt.runtime.llm.text import read_json

    return read_json(folder / "config.json")


def human_mb(megabytes: float, space: str = " ") -> str:
    """6.2 -> "6 MB", 0.4 -> "<1 MB" (a tiny export was listed as "0 MB", as if it held nothing)."""
    return f"<1{space}MB" if megabytes < 1 else f"{megabytes:.0f}{space}MB"


def human_bytes(size: float) -> str:
    """5.7e9 -> "5.7 GB", 1.3e6 -> "1.3 MB": below 0.1 GB in MB (a small disk's "0.0 GB" said nothing)."""
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


def human_count(parameters: int) -> str:
    """1_543_714_304 -> "1.54B", 134_515_008 -> "135M"."""
    if parameters >= 1e9:
        return f"{parameters / 1e9:.2f}B"
    if parameters >= 1e6:
        return f"{parameters / 1e6:.0f}M"
    return f"{parameters / 1e3:.0f}K" if parameters else "?"
