"""Int8-compute MatMuls: dynamic int8 activations times per-column int8 weights, written in numpy.

Why our own rewrite instead of ``onnxruntime.quantization.quantize_dynamic``: its per-channel
weight quantization loops over every column in Python (138,240 calls for SmolLM2's prefill
graph, 16 s of a 33 s stage on 2 cores) and it runs shape inference on a saved copy first.
This writes the same operators ONNX Runtime fuses that quantizer's output into
(``DynamicQuantizeLinear`` + ``com.microsoft.MatMulIntegerToFloat``), vectorized, in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# Weights of integer MatMuls use 7 bits (-64..64, ONNX Runtime's ``reduce_range``). On x86 CPUs
# without VNNI or AMX (AVX2 only: AMD Zen 1-3, Intel before Cascade Lake) ONNX Runtime multiplies
# uint8 activations by int8 weights with vpmaddubsw, which adds two products in a saturating
# int16: 255 * 127 * 2 overflows it, 255 * 64 * 2 does not. Measured on an AVX2-only EPYC: with
# 8-bit weights an output of -0.52 came out -2.11 and the int8 embedder's cosine to the original
# fell to 0.983.
COMPUTE_LIMIT = 64


def quantize_matmuls(model: Any, keep_fp32: Callable[[str], bool] = lambda name: False) -> int:
    """Rewrite, in place, each MatMul whose B is an fp32 initializer; returns how many.

    Weights become symmetric 7-bit codes per output column (scale = max|column| / 64); activations
    are quantized per tensor at run time (uint8, one ``DynamicQuantizeLinear`` per distinct
    input, shared by the MatMuls that read it). Nodes for which ``keep_fp32(node.name)`` is
    true stay fp32.
    """
    from onnx import helper, numpy_helper

    from pgpt.export.onnx_edits import matmul_weight, replace_nodes

    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    quantized_inputs: set[str] = set()
    replaced: set[str] = set()
    nodes, count = [], 0
    for node in graph.node:
        weight = matmul_weight(node, weights)
        if weight is None or keep_fp32(node.name):
            nodes.append(node)
            continue
        activation = node.input[0]
        if activation not in quantized_inputs:
            nodes.append(helper.make_node("DynamicQuantizeLinear", [activation],
                                          [f"{activation}_q", f"{activation}_q_scale", f"{activation}_q_zero"],
                                          name=f"{node.name}_quantize_input"))
            quantized_inputs.add(activation)
        base = weight.name
        if base not in replaced:
            codes, scale = per_column_int8(numpy_helper.to_array(weight), COMPUTE_LIMIT)
            graph.initializer.extend([numpy_helper.from_array(codes, f"{base}_int8"),
                                      numpy_helper.from_array(scale, f"{base}_int8_scale")])
            replaced.add(base)
        nodes.append(helper.make_node(
            "MatMulIntegerToFloat",
            [f"{activation}_q", f"{base}_int8", f"{activation}_q_scale", f"{base}_int8_scale", f"{activation}_q_zero"],
            list(node.output), name=f"{node.name}_int8", domain="com.microsoft"))
        count += 1
    replace_nodes(model, nodes, replaced)
    return count


def smoothquant_scales(activation_max: np.ndarray, weight_max: np.ndarray, alpha: float) -> np.ndarray:
    """SmoothQuant's s = max|X|^a / max|W|^(1-a) per input channel: X / s and W * s compute the same
    product, with the activation outliers moved into the weights."""
    s = np.maximum(activation_max, 1e-5) ** alpha / np.maximum(weight_max, 1e-5) ** (1 - alpha)
    return np.clip(s, 1e-3, 1e3).astype(np.float32)


def per_column_int8(weight: np.ndarray, limit: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 codes of a (K, N) weight in -limit..limit and its N scales, one per output
    column. Weights that an integer MatMul multiplies take ``COMPUTE_LIMIT``."""
    scale = np.abs(weight).max(axis=0) / float(limit)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    codes = np.clip(np.rint(weight / scale), -limit, limit).astype(np.int8)
    return codes, scale
