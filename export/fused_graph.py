"""A fused ONNX graph for Llama-family decoders, written directly from the PyTorch weights.

Why not only Optimum's graph: for a small model, decode is bound by the number of operators
run per token, not by memory bandwidth. Optimum's graph spells attention, rotary embeddings
and RMSNorm out of ~25 elementary operators per layer; this graph uses ONNX Runtime's fused
contrib operators instead, the ones onnxruntime-genai's builder uses:

- ``GroupQueryAttention`` with the rotary embedding inside (``do_rotary``) and packed QKV,
- ``SimplifiedLayerNormalization`` / ``SkipSimplifiedLayerNormalization`` (RMSNorm + residual),
- ``QuickGelu`` with ``alpha=1`` (that is SiLU) for the gated MLP,
- logits for the last ``num_logits_to_keep`` positions only (a 1000-token prompt needs one row
  of 49k logits, not 1000).

The interface stays Optimum's (``input_ids``, ``attention_mask``, ``past_key_values.N.key``,
``logits``, ``present.N.key``) plus ``num_logits_to_keep``, so the runtime drives both graphs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SUPPORTED_TYPES = ("llama", "mistral", "qwen2")
OPSET = 17
_MAX_CACHE_POSITIONS = 131072


def supports(config: Any) -> tuple[bool, str]:
    """Whether ``config`` can be written as the fused graph, and why not when it cannot."""
    if config.model_type not in SUPPORTED_TYPES:
        return False, f"model type {config.model_type!r} has no fused graph (only {', '.join(SUPPORTED_TYPES)})"
    rope = getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type")) in ("dynamic", "longrope"):
        return False, "rope scaling that depends on the sequence length"
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True) \
            and config.model_type == "mistral":
        return False, "sliding-window attention"
    if getattr(config, "mlp_bias", False) or getattr(config, "attention_bias", False) and config.model_type != "qwen2":
        return False, "bias terms in attention or MLP"
    if getattr(config, "hidden_act", "silu") != "silu":
        return False, f"activation {config.hidden_act!r}"
    return True, ""


class _Builder:
    """Collects nodes and initializers; names stay readable for profiling."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def weight(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str] | int = 1, name: str = "",
             domain: str = "", **attrs: Any) -> list[str]:
        from onnx import helper

        name = name or f"{op}_{len(self.nodes)}"
        if isinstance(outputs, int):
            outputs = [f"{name}/out{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))
        return outputs


def _linear(b: _Builder, module: Any, prefix: str) -> str:
    """A torch Linear as an ONNX weight laid out for ``x @ W`` (in_features x out_features)."""
    return b.weight(f"{prefix}.weight", module.weight.detach().float().numpy().T)


def _rotary_caches(model: Any, positions: int) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin tables (positions x head_dim/2) from the model's own rotary module (any rope type)."""
    rotary = model.model.rotary_emb
    inv_freq = rotary.inv_freq.detach().double().numpy()
    scaling = float(getattr(rotary, "attention_scaling", 1.0))
    angles = np.outer(np.arange(positions, dtype=np.float64), inv_freq)
    return (np.cos(angles) * scaling).astype(np.float32), (np.sin(angles) * scaling).astype(np.float32)


def build_graph(model: Any) -> Any:
    """The fused fp32 ONNX ModelProto of a transformers Llama-family model."""
    from onnx import TensorProto

    config = model.config
    layers = model.model.layers
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    eps = float(config.rms_norm_eps)
    b = _Builder()
    cos, sin = _rotary_caches(model, min(int(config.max_position_embeddings), _MAX_CACHE_POSITIONS))
    b.weight("cos_cache", cos)
    b.weight("sin_cache", sin)
    b.weight("one", np.array([1], dtype=np.int64))
    b.weight("axis1", np.array([1], dtype=np.int64))
    b.weight("end", np.array([np.iinfo(np.int64).max], dtype=np.int64))

    # GroupQueryAttention wants the total length and, per row, the index of the last real token.
    mask_sum = b.node("ReduceSum", ["attention_mask", "axis1"], name="mask_sum", keepdims=0)[0]
    last = b.node("Sub", [mask_sum, "one"], name="last_index")[0]
    seqlens_k = b.node("Cast", [last], name="seqlens_k", to=TensorProto.INT32)[0]
    shape = b.node("Shape", ["attention_mask"], name="mask_shape")[0]
    total64 = b.node("Gather", [shape, b.weight("one_scalar", np.array(1, dtype=np.int64))], name="total_len64")[0]
    total = b.node("Cast", [total64], name="total_len", to=TensorProto.INT32)[0]

    embed = model.model.embed_tokens.weight.detach().float().numpy()
    hidden = b.node("Gather", [b.weight("embed_tokens.weight", embed), "input_ids"], name="embed")[0]
    residual = None
    present: list[str] = []
    for i, layer in enumerate(layers):
        p = f"layers.{i}"
        norm_w = b.weight(f"{p}.input_layernorm.weight", layer.input_layernorm.weight.detach().float().numpy())
        if residual is None:
            normed = b.node("SimplifiedLayerNormalization", [hidden, norm_w], name=f"{p}.input_norm",
                            axis=-1, epsilon=eps, stash_type=1)[0]
            residual = hidden
        else:
            normed, _, _, residual = b.node("SkipSimplifiedLayerNormalization", [hidden, residual, norm_w], 4,
                                            name=f"{p}.input_norm", domain="com.microsoft", epsilon=eps)
        attn = layer.self_attn
        qkv_w = np.concatenate([m.weight.detach().float().numpy() for m in
                                (attn.q_proj, attn.k_proj, attn.v_proj)], axis=0).T
        qkv = b.node("MatMul", [normed, b.weight(f"{p}.qkv_proj.weight", qkv_w)], name=f"{p}.qkv_proj")[0]
        if attn.q_proj.bias is not None:
            bias = np.concatenate([m.bias.detach().float().numpy() for m in (attn.q_proj, attn.k_proj, attn.v_proj)])
            qkv = b.node("Add", [qkv, b.weight(f"{p}.qkv_proj.bias", bias)], name=f"{p}.qkv_bias")[0]
        outputs = [f"{p}.attn/out", f"present.{i}.key", f"present.{i}.value"]
        b.node("GroupQueryAttention",
               [qkv, "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value", seqlens_k, total,
                "cos_cache", "sin_cache"], outputs, name=f"{p}.attn", domain="com.microsoft",
               num_heads=heads, kv_num_heads=kv_heads, do_rotary=1, rotary_interleaved=0,
               scale=float(head_dim ** -0.5))
        present += outputs[1:]
        o = b.node("MatMul", [outputs[0], _linear(b, attn.o_proj, f"{p}.o_proj")], name=f"{p}.o_proj")[0]
        post_w = b.weight(f"{p}.post_attention_layernorm.weight",
                          layer.post_attention_layernorm.weight.detach().float().numpy())
        normed, _, _, residual = b.node("SkipSimplifiedLayerNormalization", [o, residual, post_w], 4,
                                        name=f"{p}.post_norm", domain="com.microsoft", epsilon=eps)
        mlp = layer.mlp
        gate = b.node("MatMul", [normed, _linear(b, mlp.gate_proj, f"{p}.gate_proj")], name=f"{p}.gate_proj")[0]
        up = b.node("MatMul", [normed, _linear(b, mlp.up_proj, f"{p}.up_proj")], name=f"{p}.up_proj")[0]
        act = b.node("QuickGelu", [gate], name=f"{p}.silu", domain="com.microsoft", alpha=1.0)[0]
        prod = b.node("Mul", [act, up], name=f"{p}.gate_mul")[0]
        hidden = b.node("MatMul", [prod, _linear(b, mlp.down_proj, f"{p}.down_proj")], name=f"{p}.down_proj")[0]

    final_w = b.weight("norm.weight", model.model.norm.weight.detach().float().numpy())
    final, _, _, _ = b.node("SkipSimplifiedLayerNormalization", [hidden, residual, final_w], 4,
                            name="final_norm", domain="com.microsoft", epsilon=eps)
    start = b.node("Neg", ["num_logits_to_keep"], name="keep_start")[0]
    kept = b.node("Slice", [final, start, "end", "axis1"], name="keep_last")[0]
    lm_head = model.lm_head.weight.detach().float().numpy().T
    b.node("MatMul", [kept, b.weight("lm_head.weight", lm_head)], ["logits"], name="lm_head")
    return _model_proto(b, config, kv_heads, head_dim, len(layers), present)


def _model_proto(b: _Builder, config: Any, kv_heads: int, head_dim: int, n_layers: int,
                 present: list[str]) -> Any:
    from onnx import TensorProto, helper

    f32 = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
        helper.make_tensor_value_info("num_logits_to_keep", TensorProto.INT64, [1]),
    ]
    outputs = [helper.make_tensor_value_info("logits", f32, ["batch_size", "kept_positions", config.vocab_size])]
    for i in range(n_layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(
                f"past_key_values.{i}.{kind}", f32, ["batch_size", kv_heads, "past_sequence_length", head_dim]))
            outputs.append(helper.make_tensor_value_info(
                f"present.{i}.{kind}", f32, ["batch_size", kv_heads, "total_sequence_length", head_dim]))
    graph = helper.make_graph(b.nodes, "pgpt-fused-decoder", inputs, outputs, b.initializers)
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    # IR version 10 (ONNX 1.16) loads in every onnxruntime we support; the library default may be newer.
    return helper.make_model(graph, opset_imports=opsets, producer_name="pgpt-export", ir_version=10)
