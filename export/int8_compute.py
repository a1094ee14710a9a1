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


def quantize_matmuls(model: Any, keep_fp32: Callable[[str], bool] = lambda name: False,
                     per_row: Callable[[str], bool] = lambda name: False) -> int:
    """Rewrite, in place, each MatMul whose B is an fp32 initializer; returns how many.

    Weights become symmetric 7-bit codes per output column (scale = max|column| / 64); activations
    are quantized per tensor at run time (uint8, one ``DynamicQuantizeLinear`` per distinct
    input, shared by the MatMuls that read it), or per row (token) where ``per_row(node.name)``
    (``row_quantize``). Nodes for which ``keep_fp32(node.name)`` is true stay fp32.
    """
    from onnx import helper, numpy_helper

    from pgpt.export.onnx_edits import matmul_weight, replace_nodes

    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    quantized_inputs: dict[str, bool] = {}  # activation -> quantized per row
    replaced: set[str] = set()
    nodes, count = [], 0
    for node in graph.node:
        weight = matmul_weight(node, weights)
        if weight is None or keep_fp32(node.name):
            nodes.append(node)
            continue
        activation = node.input[0]
        rows = per_row(node.name)
        if quantized_inputs.get(activation, rows) != rows:  # both would write the same code tensor
            raise ValueError(f"{activation} feeds MatMuls quantized per row and per tensor")
        if rows and activation not in quantized_inputs:
            nodes.extend(row_quantize(activation, f"{node.name}_quantize_input"))
        elif activation not in quantized_inputs:
            nodes.append(helper.make_node("DynamicQuantizeLinear", [activation],
                                          [f"{activation}_q", f"{activation}_q_scale", f"{activation}_q_zero"],
                                          name=f"{node.name}_quantize_input"))
        quantized_inputs[activation] = rows
        base = weight.name
        if base not in replaced:
            codes, scale = per_column_int8(numpy_helper.to_array(weight), COMPUTE_LIMIT)
            graph.initializer.extend([numpy_helper.from_array(codes, f"{base}_int8"),
                                      numpy_helper.from_array(scale, f"{base}_int8_scale")])
            replaced.add(base)
        nodes.extend(integer_matmul(node, activation, base, rows))
        count += 1
    if any(quantized_inputs.values()):
        graph.initializer.extend(row_constants())
    replace_nodes(model, nodes, replaced)
    return count


def integer_matmul(node: Any, activation: str, base: str, rows: bool) -> list[Any]:
    """Nodes that compute ``node``'s output as the int8 product of ``activation``'s codes (per tensor,
    or per row with ``rows``) and the codes of weight ``base`` (``{base}_int8``, ``{base}_int8_scale``),
    scaled back to fp32."""
    from onnx import TensorProto, helper

    q, name = f"{activation}_q", node.name
    if not rows:
        return [helper.make_node("MatMulIntegerToFloat",
                                 [q, f"{base}_int8", f"{q}_scale", f"{base}_int8_scale", f"{q}_zero"],
                                 list(node.output), name=f"{name}_int8", domain="com.microsoft")]
    # (rows, K) codes x (K, N) -> int32, times each row's scale and each column's, back to x's shape
    return [helper.make_node("MatMulInteger", [q, f"{base}_int8", ROW_ZERO], [f"{name}_int32"], name=f"{name}_int8"),
            helper.make_node("Cast", [f"{name}_int32"], [f"{name}_int32_f"], to=TensorProto.FLOAT,
                             name=f"{name}_int8_cast"),
            helper.make_node("Mul", [f"{name}_int32_f", f"{q}_scale_column"], [f"{name}_rows"],
                             name=f"{name}_row_scale"),
            helper.make_node("Mul", [f"{name}_rows", f"{base}_int8_scale"], [f"{name}_flat"],
                             name=f"{name}_column_scale"),
            helper.make_node("Reshape", [f"{name}_flat", f"{activation}_out_shape"], list(node.output),
                             name=f"{name}_unflatten")]


ROW_ZERO = "int8_row_zero"  # uint8 128: a row's codes are its values / scale + 128, in 1..255
ROW_LAST = "int8_row_last"  # [-1]: the last index, axis or dimension


def row_quantize(x: str, name: str) -> list[Any]:
    """Nodes that quantize ``x`` (..., K), flattened to (rows, K), to uint8 codes ``{x}_q`` with
    one scale per row, ``{x}_q_scale`` (rows,) = max|row| / 127, symmetric around 128
    (``ROW_ZERO``); and ``{x}_out_shape``, x's leading dimensions and -1, to give a product of
    the codes x's shape back.

    Why: ``DynamicQuantizeLinear``'s one scale for the whole tensor lets one loud token coarsen
    every other one. The input of a SwiGLU ``down_proj`` has such tokens (the first one of a
    text above all), and per tensor it fails the quality check however it is smoothed.
    ``QuantizeLinear`` per axis rounds, shifts and saturates in one pass.
    """
    from onnx import TensorProto, helper

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> Any:
        return helper.make_node(op, inputs, [output], name=f"{name}_{output[len(x) + 1:]}", **attributes)

    return [node("Shape", [x], f"{x}_shape"),
            node("Slice", [f"{x}_shape", "int8_row_zero_index", ROW_LAST], f"{x}_lead"),
            node("Concat", [f"{x}_lead", ROW_LAST], f"{x}_out_shape", axis=0),
            node("Flatten", [x], f"{x}_flat", axis=-1),
            node("Abs", [f"{x}_flat"], f"{x}_abs"),
            node("ReduceMax", [f"{x}_abs"], f"{x}_rowmax", axes=[-1], keepdims=0),
            node("Max", [f"{x}_rowmax", "int8_row_tiny"], f"{x}_rowmaxed"),
            node("Div", [f"{x}_rowmaxed", "int8_row_levels"], f"{x}_q_scale"),
            node("Unsqueeze", [f"{x}_q_scale", ROW_LAST], f"{x}_q_scale_column"),
            node("Shape", [f"{x}_q_scale"], f"{x}_rows"),
            helper.make_node("ConstantOfShape", [f"{x}_rows"], [f"{x}_q_zeros"], name=f"{name}_zeros",
                             value=helper.make_tensor("zero", TensorProto.UINT8, [1], [128])),
            node("QuantizeLinear", [f"{x}_flat", f"{x}_q_scale", f"{x}_q_zeros"], f"{x}_q", axis=0)]


def row_constants() -> list[Any]:
    """The initializers that ``row_quantize`` and per-row ``integer_matmul`` nodes read (add once)."""
    from onnx import numpy_helper

    return [numpy_helper.from_array(np.array(1e-12, np.float32), "int8_row_tiny"),
            numpy_helper.from_array(np.array(127.0, np.float32), "int8_row_levels"),
            numpy_helper.from_array(np.array(128, np.uint8), ROW_ZERO),
            numpy_helper.from_array(np.array([0], np.int64), "int8_row_zero_index"),
            numpy_helper.from_array(np.array([-1], np.int64), ROW_LAST)]


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
