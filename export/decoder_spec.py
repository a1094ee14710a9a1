"""What the fused graph needs to know about a decoder, read from its transformers config.

One dataclass covers the families the fused graph writes: Llama, Mistral and Qwen2 (the plain
pre-norm decoder), Qwen 3 (plus a per-head RMSNorm of q and k), and Gemma 3 (q/k norms, a scaled
embedding, ``1 + weight`` norms before and after each block, a GELU-tanh MLP, and sliding-window
layers with their own rotary base between the global ones). ``supports`` says why any other
config cannot be written, so the export can refuse it in one paragraph or hand it to Optimum.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

SUPPORTED_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma3_text")
SUPPORTED_NAMES = "Llama, Mistral, Qwen2, Qwen3 and Gemma 3"
_MAX_CACHE_POSITIONS = 131072


@dataclass(frozen=True)
class DecoderSpec:
    """The shape and the variant switches of one decoder."""

    model_type: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    eps: float
    positions: int  # rows of the rotary tables
    tied: bool  # lm_head reads the embedding matrix
    qkv_bias: bool
    qk_norm: bool  # Qwen 3, Gemma 3
    sandwich_norms: bool  # Gemma 3: a norm after attention and after the MLP too
    norm_offset: float  # Gemma's RMSNorm multiplies by (offset + weight)
    activation: str  # "silu" or "gelu_tanh"
    embed_scale: float  # 1.0, or sqrt(hidden) for Gemma
    attention_scale: float
    windows: tuple[int, ...]  # per layer: 0 for global attention, else the sliding window

    @property
    def weights(self) -> int:
        """Parameters of the decoder (embedding and lm_head counted once when tied)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        layer = self.hidden * (q + 2 * kv) + q * self.hidden + 3 * self.hidden * self.intermediate
        return self.layers * layer + self.vocab * self.hidden * (1 if self.tied else 2)


def supports(config: Any) -> tuple[bool, str]:
    """Whether ``config`` can be written as the fused graph, and why not when it cannot."""
    model_type = getattr(config, "model_type", "")
    if model_type not in SUPPORTED_TYPES:
        return False, f"model type {model_type!r} has no fused graph (only {SUPPORTED_NAMES})"
    rope = getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type")) in ("dynamic", "longrope"):
        return False, "rope scaling that depends on the sequence length"
    if model_type in ("mistral", "qwen2", "qwen3") and getattr(config, "sliding_window", None) \
            and getattr(config, "use_sliding_window", model_type == "mistral"):
        return False, "sliding-window attention on every layer"
    if getattr(config, "mlp_bias", False) or getattr(config, "attention_bias", False) and model_type != "qwen2":
        return False, "bias terms in attention or MLP"
    activation = getattr(config, "hidden_act", None) or getattr(config, "hidden_activation", "silu")
    if activation not in ("silu", "gelu_pytorch_tanh"):
        return False, f"activation {activation!r}"
    if getattr(config, "attn_logit_softcapping", None) or getattr(config, "final_logit_softcapping", None):
        return False, "logit soft-capping"
    return True, ""


def decoder_spec(config: Any) -> DecoderSpec:
    """The DecoderSpec of a supported transformers config (see ``supports``)."""
    gemma = config.model_type == "gemma3_text"
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    layer_types = getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers
    window = int(getattr(config, "sliding_window", 0) or 0)
    windows = tuple(window if kind == "sliding_attention" else 0 for kind in layer_types)
    activation = getattr(config, "hidden_activation", None) or getattr(config, "hidden_act", "silu")
    return DecoderSpec(
        model_type=config.model_type, layers=config.num_hidden_layers, hidden=config.hidden_size,
        heads=heads, kv_heads=kv_heads, head_dim=head_dim, intermediate=config.intermediate_size,
        vocab=config.vocab_size, eps=float(config.rms_norm_eps),
        positions=min(int(config.max_position_embeddings), _MAX_CACHE_POSITIONS),
        tied=bool(getattr(config, "tie_word_embeddings", False)),
        qkv_bias=config.model_type == "qwen2" or bool(getattr(config, "attention_bias", False)),
        qk_norm=config.model_type in ("qwen3", "gemma3_text"), sandwich_norms=gemma,
        norm_offset=1.0 if gemma else 0.0, activation="gelu_tanh" if activation == "gelu_pytorch_tanh" else "silu",
        embed_scale=float(np.float32(config.hidden_size ** 0.5)) if gemma else 1.0,
        attention_scale=float(config.query_pre_attn_scalar ** -0.5) if gemma else float(head_dim ** -0.5),
        windows=windows,
    )


def rotary_tables(config: Any, positions: int, local: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin tables (positions x head_dim/2) as transformers computes them (any static rope type).

    ``local`` gives Gemma 3's sliding-window layers' tables: their own base, no scaling.
    """
    import torch
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    if local:
        config = copy.deepcopy(config)
        config.rope_theta = config.rope_local_base_freq
        config.rope_scaling = {"rope_type": "default"}
    rope = getattr(config, "rope_scaling", None) or {}
    kind = rope.get("rope_type", rope.get("type", "default"))
    inv_freq, scaling = ROPE_INIT_FUNCTIONS[kind](config, torch.device("cpu"))
    angles = np.outer(np.arange(positions, dtype=np.float64), inv_freq.double().numpy())
    return (np.cos(angles) * scaling).astype(np.float32), (np.sin(angles) * scaling).astype(np.float32)
