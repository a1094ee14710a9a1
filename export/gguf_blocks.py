"""Exact int4: weights that came from GGUF 4-bit / 8-bit blocks written back as those blocks.

A GGUF model's fp32 weights (as transformers loads them) are its quantized blocks, dequantized.
Re-rounding them onto another 4-bit grid adds a second rounding error: on SmolLM2-135M (Q4_1)
that kept only 66-79% top-1 agreement. This module recovers the original blocks from the fp32
values, checks that they reproduce every weight, and writes them as ``MatMulNBits``:

* Q4_1 (``w = d * q + m``, q in 0..15, 32 weights a block): MatMulNBits takes integer zero
  points only (a float zero point made ONNX Runtime 1.31 dequantize the whole matrix on every
  call, 15x slower), so the node gets the fixed zero point 8, ``d * (q - 8)``, and the rest,
  ``(m + 8 d)`` times each block's sum of inputs, is added by a small fp32 MatMul over the block
  sums (shared by the MatMuls that read the same input). Exact, at about 4-bit speed.
* Q8_0 (``w = d * q``, q in -127..127): 8-bit MatMulNBits with its default zero point 128, exact.

Weights that are neither (a safetensors model, other GGUF types) are left for the usual
quantizer; ``write_exact_blocks`` reports which were written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

BLOCK = 32
# Recovered blocks must reproduce each weight to this fraction of the block's largest |weight|:
# float rounding of the recovered scale costs ~1e-7; an off-grid weight misses by ~1e-2.
TOLERANCE = 1e-5
_SAMPLE_COLUMNS = 64  # checked first, so a model that is not block-quantized is rejected quickly


@dataclass
class ExactBlocks:
    """What ``write_exact_blocks`` did: counts per block type and the helper nodes it added."""

    q4_1: int = 0
    q8_0: int = 0
    helper_nodes: list[str] = field(default_factory=list)

    @property
    def written(self) -> int:
        """MatMuls now holding their original blocks."""
        return self.q4_1 + self.q8_0

    def summary(self) -> dict[str, int]:
        """For the manifest."""
        return {"q4_1": self.q4_1, "q8_0": self.q8_0}


def affine4_blocks(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Q4_1 blocks of a (K, N) weight, or None when the weight is not exactly on such blocks.

    Returns codes (N, K/32, 32) in 0..15, scales (N, K/32) and minima (N, K/32), with
    ``weight[k, n] == minima[n, b] + scales[n, b] * codes[n, b, k % 32]`` for b = k // 32.
    llama.cpp's Q4_1 maps each block's minimum to code 0 and its maximum to code 15, which is
    what makes the scale and minimum recoverable from the values.
    """
    blocks = _blocks(weight)
    if blocks is None or _affine4(blocks[:_SAMPLE_COLUMNS]) is None:
        return None
    return _affine4(blocks)


def _affine4(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    low, high = blocks.min(axis=-1), blocks.max(axis=-1)
    scale = (high - low) / 15.0
    codes = np.rint((blocks - low[..., None]) / np.where(scale > 0, scale, 1.0)[..., None])
    rebuilt = low[..., None] + codes * scale[..., None]
    if not _reproduces(rebuilt, blocks):
        return None
    return codes.astype(np.uint8), scale.astype(np.float32), low.astype(np.float32)


def symmetric8_blocks(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Q8_0 blocks of a (K, N) weight as MatMulNBits wants them (codes + 128), or None.

    Returns codes (N, K/32, 32) as uint8 and scales (N, K/32).
    """
    blocks = _blocks(weight)
    if blocks is None or _symmetric8(blocks[:_SAMPLE_COLUMNS]) is None:
        return None
    return _symmetric8(blocks)


def _symmetric8(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    scale = np.abs(blocks).max(axis=-1) / 127.0
    codes = np.rint(blocks / np.where(scale > 0, scale, 1.0)[..., None])
    if not _reproduces(codes * scale[..., None], blocks):
        return None
    return (codes + 128).astype(np.uint8), scale.astype(np.float32)


def _blocks(weight: np.ndarray) -> np.ndarray | None:
    """(K, N) -> (N, K/32, 32): MatMulNBits quantizes along K, one row of blocks per output column."""
    k, n = weight.shape
    if k % BLOCK or weight.dtype != np.float32:
        return None
    return np.ascontiguousarray(weight.T).reshape(n, k // BLOCK, BLOCK)


def _reproduces(rebuilt: np.ndarray, blocks: np.ndarray) -> bool:
    limit = TOLERANCE * np.abs(blocks).max(axis=-1, keepdims=True) + 1e-30
    return bool((np.abs(rebuilt - blocks) <= limit).all())


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """4-bit codes (..., 32) -> bytes (..., 16), low nibble first, as MatMulNBits reads them."""
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def write_exact_blocks(model: Any, accuracy_level: int = 4) -> ExactBlocks:
    """Rewrite, in place, every constant-weight MatMul whose fp32 weight is Q4_1 or Q8_0 blocks."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    done = ExactBlocks()
    block_sums: set[str] = set()
    nodes, dropped = [], set()
    for node in graph.node:
        tensor = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if tensor is None or tensor.data_type != TensorProto.FLOAT or len(tensor.dims) != 2:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(tensor)
        k, n = weight.shape
        base, activation = tensor.name, node.input[0]
        attributes = dict(K=k, N=n, block_size=BLOCK, accuracy_level=accuracy_level)
        q4_1 = affine4_blocks(weight)
        q8_0 = None if q4_1 is not None else symmetric8_blocks(weight)
        if q4_1 is not None:
            codes, scale, low = q4_1
            nbits_out = f"{node.output[0]}_nbits"
            graph.initializer.extend([numpy_helper.from_array(pack_nibbles(codes), f"{base}_q4"),
                                      numpy_helper.from_array(scale.reshape(-1), f"{base}_q4_scale"),
                                      numpy_helper.from_array((low + 8 * scale).T.copy(), f"{base}_q4_offset")])
            nodes.append(helper.make_node("MatMulNBits", [activation, f"{base}_q4", f"{base}_q4_scale"],
                                          [nbits_out], name=node.name, domain="com.microsoft", bits=4,
                                          **attributes))
            sums = _block_sums(activation, k, block_sums, nodes, graph, done)
            nodes.append(helper.make_node("MatMul", [sums, f"{base}_q4_offset"], [f"{node.output[0]}_offset"],
                                          name=f"{node.name}_offset"))
            nodes.append(helper.make_node("Add", [nbits_out, f"{node.output[0]}_offset"], list(node.output),
                                          name=f"{node.name}_add_offset"))
            done.helper_nodes.append(f"{node.name}_offset")
            done.q4_1 += 1
        elif q8_0 is not None:
            codes, scale = q8_0
            graph.initializer.extend([numpy_helper.from_array(codes, f"{base}_q8"),
                                      numpy_helper.from_array(scale.reshape(-1), f"{base}_q8_scale")])
            nodes.append(helper.make_node("MatMulNBits", [activation, f"{base}_q8", f"{base}_q8_scale"],
                                          list(node.output), name=node.name, domain="com.microsoft", bits=8,
                                          **attributes))
            done.q8_0 += 1
        else:
            nodes.append(node)
            continue
        dropped.add(base)
    _replace(graph, nodes, dropped)
    if done.written and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return done


def count_float_matmuls(model: Any, exclude: set[str]) -> int:
    """Constant-weight fp32 MatMuls left in ``model`` (those named in ``exclude`` not counted)."""
    from onnx import TensorProto

    floats = {t.name for t in model.graph.initializer if t.data_type == TensorProto.FLOAT and len(t.dims) == 2}
    return sum(1 for node in model.graph.node
               if node.op_type == "MatMul" and node.input[1] in floats and node.name not in exclude)


def _block_sums(activation: str, k: int, made: set[str], nodes: list[Any], graph: Any, done: ExactBlocks) -> str:
    """Name of ``activation``'s per-block sums (..., K/32), adding the MatMul that makes them once."""
    from onnx import helper, numpy_helper

    name = f"{activation}_block_sums"
    if name not in made:
        # a MatMul with a 0/1 block indicator works for inputs of any rank (Reshape would not)
        indicator = np.kron(np.eye(k // BLOCK, dtype=np.float32), np.ones((BLOCK, 1), np.float32))
        graph.initializer.append(numpy_helper.from_array(indicator, f"{name}_indicator"))
        nodes.append(helper.make_node("MatMul", [activation, f"{name}_indicator"], [name], name=name))
        done.helper_nodes.append(name)
        made.add(name)
    return name


def _replace(graph: Any, nodes: list[Any], dropped: set[str]) -> None:
    """Install the new node list and drop the fp32 weights no node reads any more."""
    del graph.node[:]
    graph.node.extend(nodes)
    still_read = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name not in dropped or t.name in still_read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
