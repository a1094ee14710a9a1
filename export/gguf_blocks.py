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
    """What ``write_exact_blocks`` did: counts per block type, MatMuls left, helper nodes added."""

    q4_1: int = 0
    q8_0: int = 0
    left: int = 0  # MatMuls with an fp32 weight that is neither: for the usual quantizer
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
    from pgpt.export.onnx_edits import matmul_weight, replace_nodes

    weights = {t.name: t for t in model.graph.initializer}
    writer = _Writer(model.graph, accuracy_level)
    for node in list(model.graph.node):
        tensor = matmul_weight(node, weights)
        if tensor is None or not writer.rewrite(node, tensor):
            writer.nodes.append(node)
            if tensor is not None:
                writer.done.left += 1
    replace_nodes(model, writer.nodes, {name for name, kind in writer.kinds.items() if kind})
    return writer.done


class _Writer:
    """Builds the new node list; a weight read by several MatMuls (tied) is converted once."""

    def __init__(self, graph: Any, accuracy_level: int) -> None:
        self.graph, self.accuracy_level = graph, accuracy_level
        self.nodes: list[Any] = []
        self.kinds: dict[str, str] = {}  # weight name -> "q4_1" / "q8_0" / "" (neither)
        self.block_sums: set[str] = set()
        self.done = ExactBlocks()

    def rewrite(self, node: Any, tensor: Any) -> bool:
        """Append ``node`` rewritten as its blocks; False when its weight is not GGUF blocks."""
        base = tensor.name
        if base not in self.kinds:
            self.kinds[base] = self._add_weights(tensor)
        kind = self.kinds[base]
        k, n = tensor.dims
        if kind == "q4_1":
            self._q4_1_nodes(node, base, k, n)
            self.done.q4_1 += 1
        elif kind == "q8_0":
            self.nodes.append(self._nbits(node, [f"{base}_q8", f"{base}_q8_scale"], list(node.output), 8, k, n))
            self.done.q8_0 += 1
        return bool(kind)

    def _add_weights(self, tensor: Any) -> str:
        """Add the block initializers of ``tensor``; returns its kind."""
        from onnx import numpy_helper

        weight, base = numpy_helper.to_array(tensor), tensor.name
        q4_1 = affine4_blocks(weight)
        if q4_1 is not None:
            codes, scale, low = q4_1
            self.graph.initializer.extend([
                numpy_helper.from_array(pack_nibbles(codes), f"{base}_q4"),
                numpy_helper.from_array(scale.reshape(-1), f"{base}_q4_scale"),
                numpy_helper.from_array((low + 8 * scale).T.copy(), f"{base}_q4_offset")])
            return "q4_1"
        q8_0 = symmetric8_blocks(weight)
        if q8_0 is not None:
            self.graph.initializer.extend([numpy_helper.from_array(q8_0[0], f"{base}_q8"),
                                           numpy_helper.from_array(q8_0[1].reshape(-1), f"{base}_q8_scale")])
            return "q8_0"
        return ""

    def _q4_1_nodes(self, node: Any, base: str, k: int, n: int) -> None:
        """d * (q - 8) by MatMulNBits, plus (min + 8 d) times each block's input sum."""
        from onnx import helper

        out = node.output[0]
        self.nodes.append(self._nbits(node, [f"{base}_q4", f"{base}_q4_scale"], [f"{out}_nbits"], 4, k, n))
        sums = self._block_sums(node.input[0], k)
        self.nodes.append(helper.make_node("MatMul", [sums, f"{base}_q4_offset"], [f"{out}_offset"],
                                           name=f"{node.name}_offset"))
        self.nodes.append(helper.make_node("Add", [f"{out}_nbits", f"{out}_offset"], list(node.output),
                                           name=f"{node.name}_add_offset"))
        self.done.helper_nodes.append(f"{node.name}_offset")

    def _nbits(self, node: Any, weights: list[str], outputs: list[str], bits: int, k: int, n: int) -> Any:
        from onnx import helper

        return helper.make_node("MatMulNBits", [node.input[0], *weights], outputs, name=node.name,
                                domain="com.microsoft", K=k, N=n, bits=bits, block_size=BLOCK,
                                accuracy_level=self.accuracy_level)

    def _block_sums(self, activation: str, k: int) -> str:
        """Name of ``activation``'s per-block sums (..., K/32), adding the MatMul that makes them once."""
        from onnx import helper, numpy_helper

        name = f"{activation}_block_sums"
        if name not in self.block_sums:
            # a MatMul with a 0/1 block indicator works for inputs of any rank (Reshape would not)
            indicator = np.kron(np.eye(k // BLOCK, dtype=np.float32), np.ones((BLOCK, 1), np.float32))
            self.graph.initializer.append(numpy_helper.from_array(indicator, f"{name}_indicator"))
            self.nodes.append(helper.make_node("MatMul", [activation, f"{name}_indicator"], [name], name=name))
            self.done.helper_nodes.append(name)
            self.block_sums.add(name)
        return name

