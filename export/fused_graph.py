"""A fused ONNX graph for Llama-family decoders, written tensor by tensor from the source weights.

Why not only Optimum's graph: for a small model, decode is bound by the number of operators
run per token, not by memory bandwidth. Optimum's graph spells attention, rotary embeddings
and RMSNorm out of ~25 elementary operators per layer; this graph uses ONNX Runtime's fused
contrib operators instead, the ones onnxruntime-genai's builder uses:

- ``GroupQueryAttention`` with the rotary embedding inside (``do_rotary``), packed QKV where the
  three weights share a block layout (and, in int8/int4, packed gate/up), and
  ``local_window_size`` for sliding-window layers,
- ``SimplifiedLayerNormalization`` / ``SkipSimplifiedLayerNormalization`` (RMSNorm + residual),
- ``QuickGelu`` with ``alpha=1`` (that is SiLU) or ``FastGelu`` (GELU-tanh) for the gated MLP,
- logits for the last ``num_logits_to_keep`` positions only (a 1000-token prompt needs one row
  of 49k logits, not 1000).

Why tensor by tensor: the graph's weights stream to an external-data file as they are read
(``onnx_writer``), so a 7B model is written in the memory of its largest tensor.

The interface stays Optimum's (``input_ids``, ``attention_mask``, ``past_key_values.N.key``,
``logits``, ``present.N.key``) plus ``num_logits_to_keep``, so the runtime drives both graphs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pgpt.export.decoder_spec import DecoderSpec, rotary_tables, supports  # noqa: F401  (supports: re-exported)
from pgpt.export.linear_weights import LinearWriter


def write_graph(spec: DecoderSpec, config: Any, linear: LinearWriter) -> None:
    """Add the whole decoder to ``linear.graph`` (weights written as they are read)."""
    g = linear.graph
    cos, sin = rotary_tables(config, spec.positions)
    g.weight("cos_cache", cos)
    g.weight("sin_cache", sin)
    if any(spec.windows):
        cos, sin = rotary_tables(config, spec.positions, local=True)
        g.weight("cos_cache_local", cos)
        g.weight("sin_cache_local", sin)
    del cos, sin
    lengths = _lengths(g)
    hidden, table = linear.embedding("input_ids", "model.embed_tokens.weight")
    if spec.embed_scale != 1.0:
        scale = g.weight("embed_scale", np.array(spec.embed_scale, dtype=np.float32))
        hidden = g.node("Mul", [hidden, scale], name="embed_scaled")[0]
    residual = ""
    for i in range(spec.layers):
        hidden, residual = _layer(spec, linear, i, hidden, residual, lengths)
    final = _skip_norm(linear, spec, hidden, residual, "model.norm.weight", "final_norm")[0]
    start = g.node("Neg", ["num_logits_to_keep"], name="keep_start")[0]
    end, axis = g.constant("end", [np.iinfo(np.int64).max]), g.constant("axis1", [1])
    kept = g.node("Slice", [final, start, end, axis], name="keep_last")[0]
    if linear.source.info("lm_head.weight") is not None and not spec.tied:
        logits = linear.lm_head(kept, "lm_head.weight", "lm_head")
    else:
        logits = linear.tied_lm_head(kept, "model.embed_tokens.weight", table, "lm_head")
    g.node("Identity", [logits], ["logits"], name="logits")


def _lengths(g: Any) -> tuple[str, str]:
    """GroupQueryAttention wants the total length and, per row, the index of the last real token."""
    from onnx import TensorProto

    mask_sum = g.node("ReduceSum", ["attention_mask", g.constant("axis1", [1])], name="mask_sum", keepdims=0)[0]
    last = g.node("Sub", [mask_sum, g.constant("one", [1])], name="last_index")[0]
    seqlens_k = g.node("Cast", [last], name="seqlens_k", to=TensorProto.INT32)[0]
    shape = g.node("Shape", ["attention_mask"], name="mask_shape")[0]
    one = g.weight("one_scalar", np.array(1, dtype=np.int64))
    total64 = g.node("Gather", [shape, one], name="total_len64")[0]
    return seqlens_k, g.node("Cast", [total64], name="total_len", to=TensorProto.INT32)[0]


def _norm(linear: LinearWriter, spec: DecoderSpec, x: str, weight: str, node: str) -> str:
    w = linear.vector(weight, spec.norm_offset)
    return linear.graph.node("SimplifiedLayerNormalization", [x, w], name=node, axis=-1, epsilon=spec.eps,
                             stash_type=1)[0]


def _skip_norm(linear: LinearWriter, spec: DecoderSpec, x: str, residual: str, weight: str,
               node: str) -> tuple[str, str]:
    """RMSNorm(x + residual) and the new residual; the first layer has no residual yet."""
    if not residual:
        return _norm(linear, spec, x, weight, node), x
    w = linear.vector(weight, spec.norm_offset)
    normed, _, _, total = linear.graph.node("SkipSimplifiedLayerNormalization", [x, residual, w], 4, name=node,
                                            domain="com.microsoft", epsilon=spec.eps)
    return normed, total


def _layer(spec: DecoderSpec, linear: LinearWriter, i: int, hidden: str, residual: str,
           lengths: tuple[str, str]) -> tuple[str, str]:
    """One decoder layer; returns its output (before the residual add) and the residual."""
    p, name = f"model.layers.{i}", f"layers.{i}"
    normed, residual = _skip_norm(linear, spec, hidden, residual, f"{p}.input_layernorm.weight", f"{name}.input_norm")
    attn = _attention(spec, linear, i, normed, lengths)
    if spec.sandwich_norms:
        attn = _norm(linear, spec, attn, f"{p}.post_attention_layernorm.weight", f"{name}.post_attn_norm")
        mlp_norm = f"{p}.pre_feedforward_layernorm.weight"
    else:
        mlp_norm = f"{p}.post_attention_layernorm.weight"
    normed, residual = _skip_norm(linear, spec, attn, residual, mlp_norm, f"{name}.post_norm")
    out = _mlp(spec, linear, i, normed)
    if spec.sandwich_norms:
        out = _norm(linear, spec, out, f"{p}.post_feedforward_layernorm.weight", f"{name}.post_mlp_norm")
    return out, residual


def _attention(spec: DecoderSpec, linear: LinearWriter, i: int, x: str, lengths: tuple[str, str]) -> str:
    g, p, name = linear.graph, f"model.layers.{i}.self_attn", f"layers.{i}"
    parts = ("q", "k", "v")
    weights = [f"{p}.{part}_proj.weight" for part in parts]
    q_size, kv_size = spec.heads * spec.head_dim, spec.kv_heads * spec.head_dim
    if linear.stackable(weights):
        qkv = linear.matmul(x, weights, f"{name}.qkv_proj")
        if spec.qkv_bias:
            bias = linear.graph.weight(f"{name}.qkv_proj.bias", np.concatenate(
                [linear.source.fp32(f"{p}.{part}_proj.bias") for part in parts]))
            for part in parts:
                linear._done(f"{p}.{part}_proj.bias")
            qkv = g.node("Add", [qkv, bias], name=f"{name}.qkv_bias")[0]
        q, k, v = qkv, "", ""
        if spec.qk_norm:
            sizes = g.constant(f"qkv_sizes_{q_size}_{kv_size}", [q_size, kv_size, kv_size])
            q, k, v = g.node("Split", [qkv, sizes], 3, name=f"{name}.qkv_split", axis=-1)
    else:
        q, k, v = (linear.matmul(x, [w], f"{name}.{part}_proj") for part, w in zip(parts, weights))
        if spec.qkv_bias:
            q, k, v = (g.node("Add", [t, linear.vector(f"{p}.{part}_proj.bias")], name=f"{name}.{part}_bias")[0]
                       for t, part in zip((q, k, v), parts))
    if spec.qk_norm:
        q = _head_norm(linear, spec, q, spec.heads, f"{p}.q_norm.weight", f"{name}.q_norm")
        k = _head_norm(linear, spec, k, spec.kv_heads, f"{p}.k_norm.weight", f"{name}.k_norm")
    window = spec.windows[i]
    caches = ["cos_cache_local", "sin_cache_local"] if window else ["cos_cache", "sin_cache"]
    outputs = [f"{name}.attn/out", f"present.{i}.key", f"present.{i}.value"]
    g.node("GroupQueryAttention",
           [q, k, v, f"past_key_values.{i}.key", f"past_key_values.{i}.value", *lengths, *caches], outputs,
           name=f"{name}.attn", domain="com.microsoft", num_heads=spec.heads, kv_num_heads=spec.kv_heads,
           do_rotary=1, rotary_interleaved=0, scale=spec.attention_scale, local_window_size=window or -1)
    return linear.matmul(outputs[0], [f"{p}.o_proj.weight"], f"{name}.o_proj")


def _head_norm(linear: LinearWriter, spec: DecoderSpec, x: str, heads: int, weight: str, node: str) -> str:
    """RMSNorm over each head's vector (Qwen 3's and Gemma 3's q/k norms), before the rotary embedding."""
    g = linear.graph
    split = g.node("Reshape", [x, g.constant(f"heads_{heads}", [0, 0, heads, spec.head_dim])], name=f"{node}_heads")[0]
    normed = _norm(linear, spec, split, weight, node)
    return g.node("Reshape", [normed, g.constant(f"flat_{heads}", [0, 0, heads * spec.head_dim])],
                  name=f"{node}_flat")[0]


def _mlp(spec: DecoderSpec, linear: LinearWriter, i: int, x: str) -> str:
    g, p, name = linear.graph, f"model.layers.{i}.mlp", f"layers.{i}"
    weights = [f"{p}.gate_proj.weight", f"{p}.up_proj.weight"]
    # One MatMulNBits for gate and up (and one offset MatMul for their Q4_K minimums), split after:
    # Qwen2.5-1.5B int4's decode step 120-124 -> 103-112 ms (ONNX Runtime's profiler, 2-core EPYC).
    # fp32 keeps two MatMuls: the int8 prefill graph is made from the fp32 graph and smooths each.
    if linear.dtype != "fp32" and linear.stackable(weights):
        both = linear.matmul(x, weights, f"{name}.gate_up_proj")
        half = spec.intermediate
        gate, up = g.node("Split", [both, g.constant(f"gate_up_sizes_{half}", [half, half])], 2,
                          name=f"{name}.gate_up_split", axis=-1)
    else:
        gate = linear.matmul(x, [weights[0]], f"{name}.gate_proj")
        up = linear.matmul(x, [weights[1]], f"{name}.up_proj")
    if spec.activation == "silu":
        act = g.node("QuickGelu", [gate], name=f"{name}.silu", domain="com.microsoft", alpha=1.0)[0]
    else:
        act = g.node("FastGelu", [gate], name=f"{name}.gelu", domain="com.microsoft")[0]
    prod = g.node("Mul", [act, up], name=f"{name}.gate_mul")[0]
    return linear.matmul(prod, [f"{p}.down_proj.weight"], f"{name}.down_proj")


def graph_io(spec: DecoderSpec) -> tuple[list[Any], list[Any]]:
    """The graph's inputs and outputs (Optimum's names, plus num_logits_to_keep)."""
    from onnx import TensorProto, helper

    f32 = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
        helper.make_tensor_value_info("num_logits_to_keep", TensorProto.INT64, [1]),
    ]
    outputs = [helper.make_tensor_value_info("logits", f32, ["batch_size", "kept_positions", spec.vocab])]
    for i in range(spec.layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(
                f"past_key_values.{i}.{kind}", f32, ["batch_size", spec.kv_heads, "past_sequence_length",
                                                     spec.head_dim]))
            outputs.append(helper.make_tensor_value_info(
                f"present.{i}.{kind}", f32, ["batch_size", spec.kv_heads, "total_sequence_length", spec.head_dim]))
    return inputs, outputs


def count_tensors(spec: DecoderSpec, source: Any) -> int:
    """How many source tensors ``write_graph`` reads (for the progress lines)."""
    per_layer = 7 + 2 + (3 if spec.qkv_bias else 0) + (2 if spec.qk_norm else 0) + (2 if spec.sandwich_norms else 0)
    head = 0 if spec.tied or source.info("lm_head.weight") is None else 1
    return 1 + spec.layers * per_layer + 1 + head
