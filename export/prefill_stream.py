"""An int8-compute prefill graph for models too large for the calibrated one, made from the
decode graph's own weights one matrix at a time (``pgpt-export --prefill int8``).

Why: above ``prefill_graph.MAX_PARAMETERS`` prompts run on the decode graph's ``MatMulNBits``,
whose ONNX Runtime 1.31 kernel reads a 256-token chunk at about the fp32 rate of the cores. One
1536 x 8960 matrix times 256 rows on 2 cores (AVX-512 VNNI), measured: 4-bit ``MatMulNBits``
(accuracy level 4) 115 G multiply-adds/s, 8-bit 126, fp32 ``MatMul`` 103, the int8 GEMM of
``DynamicQuantizeMatMul`` 366 (README, "Prompts at 1.5B", for the whole prompt).

How: the calibrated graph (``prefill_graph``) is built from the whole model in fp32, held about
three times. This one holds one matrix: each decoder layer's q/k/v, o and gate/up ``MatMulNBits``
(with the Q4_K offset MatMul beside it) is dequantized from ``model.onnx.data``, given 7-bit
codes per output column (``int8_compute.per_column_int8``) and appended to
``prefill.onnx.data``. Activations get one scale per token at run time
(``int8_compute.row_quantize``), so no calibration pass is needed: a per-tensor scale would let
one loud token coarsen all the others. Everything else (the embedding, norms, attention,
``down_proj``, ``lm_head``) reads the decode graph's own tensors in ``model.onnx.data``: stored
once.

Cost: the codes, about one byte per converted weight on disk and in memory (0.93 GB for the 1.5B
model). Quality (the export's check, against PyTorch): 94.5% top-1, perplexity x1.065, where the
decode graph has 96.2%, x1.037. On SmolLM2-135M the calibrated graph agrees better and is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FILE_NAME = "prefill.onnx"
METHOD = ("dynamic int8 MatMul with one activation scale per token, 7-bit weight codes per column made from "
          "the decode graph's blocks; embedding, attention and lm_head shared with the decode graph")


def wanted(options: Any, graph: str, spec: Any) -> bool:
    """``--prefill int8`` on an int8/int4 fused CPU export that gets no calibrated prefill graph
    (too large, or Gemma 3)."""
    from pgpt.export import prefill_graph

    return options.prefill == "int8" and graph == "fused" and options.dtype in ("int8", "int4") \
        and options.device == "cpu" and not prefill_graph.wanted(options, graph, spec)


@dataclass(frozen=True)
class _Matrix:
    """One decoder-layer product of the decode graph: its MatMulNBits, and the Q4_K offset
    MatMul and Add after it when its blocks have minimums."""

    node: Any
    offset: str  # the (K / block, N) offset initializer, or ""
    output: str  # the tensor the product ends in (the Add's output when there is an offset)
    dropped: tuple[str, ...]  # names of the nodes the int8 product replaces


def write_streamed_prefill(folder: Path, report: Any) -> dict[str, Any]:
    """Write ``folder/prefill.onnx`` (+ ``.data``) from the decode graph ``folder/model.onnx``;
    returns the manifest's ``prefill`` entry. ``report(stage, line)`` gets a progress line at
    least every 2 s (and may raise ``Cancelled``)."""
    import onnx

    from pgpt.export.int8_compute import COMPUTE_LIMIT, per_column_int8, row_constants
    from pgpt.export.onnx_writer import ByteProgress, GraphWriter

    model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    graph = model.graph
    tensors = {t.name: t for t in graph.initializer}
    plan = _plan(graph)
    writer = GraphWriter(folder, FILE_NAME)
    progress = ByteProgress(report, "quantize", sum(_stored_bytes(tensors, m) for m in plan), len(plan))
    report("quantize", f"int8-compute prefill graph from the decode graph's {len(plan)} layer matrices")
    try:
        for matrix in plan:
            weight = _dequantize(folder, matrix, tensors)
            codes, scale = per_column_int8(np.ascontiguousarray(weight.T), COMPUTE_LIMIT)
            del weight
            writer.weight(f"{matrix.node.name}.w8_int8", codes)
            writer.weight(f"{matrix.node.name}.w8_int8_scale", scale)
            progress.tensor_done(_stored_bytes(tensors, matrix))
        writer.nodes = _prune(_rewire(list(graph.node), plan), [o.name for o in graph.output])
        read = {name for node in writer.nodes for name in node.input}
        writer.initializers += [t for t in graph.initializer if t.name in read] + row_constants()
        writer.finish(list(graph.input), list(graph.output), "pgpt-prefill")
    except BaseException:
        writer.close()
        raise
    report("quantize", f"prefill graph: {writer.written / 1e6:.0f} MB of int8 codes")
    return {"file": FILE_NAME, "method": METHOD, "device": "cpu",
            "weights": {name: "the decode graph's (shared)" for name in ("embedding", "down_proj", "lm_head")}}


def _plan(graph: Any) -> list[_Matrix]:
    """The decoder layers' MatMulNBits nodes this graph rewrites. Left as they are, reading the
    decode graph's blocks: lm_head, any node with zero points, and ``down_proj``, whose input
    (SiLU(gate) x up) has channels far louder than the rest, which one scale per token cannot
    hold (the calibrated graph moves them to fp32; here that would need a calibration pass).
    Qwen2.5-Coder-1.5B int4, against the decode graph over 1047 positions: down_proj in int8
    92.4% top-1 (perplexity x1.024), TTFT 5.6 s; left as it is 96.4% (x1.013), TTFT 7.4-8.5 s."""
    readers: dict[str, list[Any]] = {}
    made_by = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    plan = []
    for node in graph.node:
        if node.op_type != "MatMulNBits" or not node.name.startswith("layers.") or any(node.input[3:]) \
                or node.name.endswith(".down_proj"):
            continue
        add = next((r for r in readers.get(node.output[0], []) if r.name == f"{node.name}_add_offset"), None)
        if add is None:
            plan.append(_Matrix(node, "", node.output[0], (node.name,)))
            continue
        offset = made_by[add.input[1]]
        plan.append(_Matrix(node, offset.input[1], add.output[0], (node.name, offset.name, add.name)))
    return plan


def _stored_bytes(tensors: dict[str, Any], matrix: _Matrix) -> int:
    return int(np.prod(tensors[matrix.node.input[1]].dims))


def _read(folder: Path, tensor: Any) -> np.ndarray:
    """One initializer of the decode graph, read from its external data file (or the protobuf)."""
    from onnx import helper, numpy_helper

    if tensor.data_location != tensor.EXTERNAL:
        return numpy_helper.to_array(tensor)
    where = {entry.key: entry.value for entry in tensor.external_data}
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
    count = int(where["length"]) // dtype.itemsize
    values = np.fromfile(folder / where["location"], dtype=dtype, count=count, offset=int(where.get("offset", 0)))
    return values.reshape(tuple(tensor.dims))


def _dequantize(folder: Path, matrix: _Matrix, tensors: dict[str, Any]) -> np.ndarray:
    """The (N, K) fp32 weight the decode graph multiplies by: (code - zero point) x scale, plus the
    block's offset (Q4_K's minimum) when it has one."""
    from onnx import helper

    node = matrix.node
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    k, n, bits, block = attrs["K"], attrs["N"], attrs["bits"], attrs["block_size"]
    data = _read(folder, tensors[node.input[1]])
    scale = _read(folder, tensors[node.input[2]]).reshape(n, -1)
    if bits == 4:  # two codes a byte, low nibble first (linear_weights.pack_codes)
        codes = np.empty(data.shape[:2] + (block,), np.uint8)
        codes[..., 0::2], codes[..., 1::2] = data & 15, data >> 4
    else:
        codes = data.reshape(n, -1, block)
    weight = (codes.astype(np.float32) - np.float32(2 ** (bits - 1))) * scale[..., None]
    del codes
    if matrix.offset:
        weight += _read(folder, tensors[matrix.offset]).T[..., None]
    return weight.reshape(n, -1)[:, :k]


def _rewire(nodes: list[Any], plan: list[_Matrix]) -> list[Any]:
    """The decode graph's nodes with each planned product replaced by a per-token int8 product."""
    from onnx import helper

    from pgpt.export.int8_compute import integer_matmul, row_quantize

    replace = {m.node.name: m for m in plan}
    dropped = {name for m in plan for name in m.dropped}
    quantized: set[str] = set()
    out = []
    for node in nodes:
        matrix = replace.get(node.name)
        if matrix is None:
            if node.name not in dropped:
                out.append(node)
            continue
        x = node.input[0]
        if x not in quantized:  # q/k/v and gate/up read one normed input: quantized once
            out.extend(row_quantize(x, f"{node.name}_quantize_input"))
            quantized.add(x)
        product = helper.make_node("MatMul", [x, f"{node.name}.w8"], [matrix.output], name=node.name)
        out.extend(integer_matmul(product, x, f"{node.name}.w8", rows=True))
    return out


def _prune(nodes: list[Any], outputs: list[str]) -> list[Any]:
    """Only the nodes the graph's outputs depend on (the offsets' block sums are no longer read)."""
    needed, kept = set(outputs), []
    for node in reversed(nodes):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    return kept[::-1]
