"""How each weight matrix goes into the graph for a dtype: fp32, or ``MatMulNBits`` blocks.

int4 keeps a GGUF tensor's own grid wherever it has at most 4 bits: Q4_0 (and Q3_K, whose
sub-blocks of 16 are ``scale * (code - 4)``) map onto MatMulNBits' default zero point exactly;
Q4_1, Q4_K (and Q2_K) have a real minimum per block, so the node gets the zero point 8 and
``(min + 8 * scale)`` times each block's sum of inputs is added by a small fp32 MatMul over the
block sums (a float zero point made ONNX Runtime 1.31 dequantize the whole matrix on every call,
15x slower). Wider tensors (Q5/Q6/Q8, fp16/fp32) are re-rounded to 4 bits, except an embedding
or output projection stored with 8 bits or more (Q8_0, fp16/fp32), which keeps 8 bits. int8 keeps
symmetric grids of 32 (Q8_0, Q4_0, Q5_0) exactly and re-rounds the rest to 8 bits. What became of
each tensor is recorded for the manifest.

Embeddings are read by ``GatherBlockQuantized`` from the same blocks; a tied lm_head's
MatMulNBits reads the very same initializer, so the table is stored once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pgpt.export.gguf_quants import GRID_LAYOUTS, Grid
from pgpt.export.onnx_writer import ByteProgress, GraphWriter
from pgpt.export.weights import WeightSource

BLOCK = 32
_ROWS_PER_CHUNK = 8192  # rows re-rounded at a time: a few fp32 temporaries of this many rows
# accuracy_level 4 lets the CPU EP compute with int8 activations (VNNI) where it has kernels.
ACCURACY_LEVEL = 4
# In int4, a table (embedding, lm_head) whose GGUF type has at most this many bits (Q5_0-Q6_K,
# already rounded) is re-rounded to 4 bits; 8-bit and float tables keep 8. Measured on
# Qwen2.5-Coder-1.5B Q4_K_M (its tied 151936 x 1536 table is Q6_K): the lm_head MatMulNBits went
# from 18-22 to 10-11 ms of a 110-136 ms decode step, the export 1425 -> 1309 MB, top-1 agreement
# 96.4% either way, perplexity x1.030 -> x1.037 (2-core AVX2 EPYC).
TABLE_4BIT_FROM = 6


@dataclass
class Blocks:
    """A (N, K) matrix as MatMulNBits holds it, plus an optional per-block offset."""

    bits: int
    block: int
    data: np.ndarray  # (N, K / block, block * bits / 8) uint8; the zero point is 2 ** (bits - 1)
    scale: np.ndarray  # (N, K / block) float32
    offset: np.ndarray | None  # (N, K / block) float32, added as offset * block sum of the input
    kept: str = ""  # the GGUF type whose grid these blocks hold exactly ("" when re-rounded or stacked)
    parts: tuple[str, ...] = ()  # ``kept`` of each matrix stacked in here (empty: one matrix)

    @property
    def matrices(self) -> tuple[str, ...]:
        """``kept`` of each weight matrix these blocks hold."""
        return self.parts or (self.kept,)

    @property
    def shape(self) -> tuple[int, int]:
        """(N, K)."""
        return self.data.shape[0], self.data.shape[1] * self.block


def plan(type_name: str, dtype: str, role: str, wide: bool = False) -> tuple[bool, int, int]:
    """(keep the GGUF grid exactly?, bits, block) for one tensor of ``type_name``.

    ``role`` is ``linear`` (a layer's projection) or ``table`` (embedding, lm_head). ``wide``
    (int4 only): a tensor whose GGUF grid has 5-8 bits keeps 8 bits instead of going to 4 (the
    export's second try when the first fails the quality check, see ``narrowed``).
    """
    bits, block, symmetric = GRID_LAYOUTS.get(type_name, (0, BLOCK, True))
    if dtype == "int4":
        if 0 < bits <= 4:
            return True, 4, block
        target = 8 if (wide and bits > 4) or (role == "table" and not 0 < bits <= TABLE_4BIT_FROM) else 4
    else:
        target = 8
    if target == 8 and 0 < bits <= 8 and block == BLOCK and symmetric:
        return True, 8, BLOCK
    return False, target, BLOCK


def narrowed(type_name: str, dtype: str, role: str) -> bool:
    """Whether int4 re-rounds this GGUF tensor from a 5-8-bit grid to 4 bits (what ``wide`` undoes)."""
    bits = GRID_LAYOUTS.get(type_name, (0, BLOCK, True))[0]
    return bits > 4 and plan(type_name, dtype, role)[1] == 4


def pack_codes(codes: np.ndarray, bits: int, block: int) -> np.ndarray:
    """(N, K) codes -> (N, K / block, block * bits / 8) bytes, low nibble first for 4 bits."""
    n, k = codes.shape
    blocks = codes.reshape(n, k // block, block).astype(np.uint8)
    if bits == 8:
        return blocks
    return blocks[..., 0::2] | (blocks[..., 1::2] << 4)


def blocks_from_grid(grid: Grid, bits: int, kind: str = "") -> Blocks:
    """The grid written exactly as ``bits``-bit blocks (``grid.bits <= bits``)."""
    zero_point = 2 ** (bits - 1)
    if grid.zero is not None:
        codes = grid.codes.astype(np.int16) + (zero_point - grid.zero)
        return Blocks(bits, grid.block, pack_codes(codes, bits, grid.block), grid.scale, None, kind)
    offset = grid.low + np.float32(zero_point) * grid.scale
    return Blocks(bits, grid.block, pack_codes(grid.codes, bits, grid.block), grid.scale, offset, kind)


def requantize(weight: np.ndarray | Grid, bits: int) -> Blocks:
    """A (N, K) weight (fp32, or a GGUF grid) rounded to symmetric ``bits``-bit blocks of 32.

    The rounding is ONNX Runtime's quantizer's (each block's largest-magnitude weight maps to the
    lowest code, ``scale = that weight / -2**(bits-1)``, so all 2**bits levels are used), done
    here in row chunks: a grid is dequantized a chunk at a time, and no transposed copy of the
    whole matrix is made (the 150k x 1.5k embedding of Qwen2.5-1.5B is 0.9 GB in fp32).
    """
    grid = weight if isinstance(weight, Grid) else None
    n, k = (grid.codes if grid is not None else weight).shape  # type: ignore[union-attr]
    zero_point = 2 ** (bits - 1)
    codes = np.empty((n, k // BLOCK, BLOCK), dtype=np.uint8)
    scale = np.empty((n, k // BLOCK), dtype=np.float32)
    for start in range(0, n, _ROWS_PER_CHUNK):
        stop = min(start + _ROWS_PER_CHUNK, n)
        rows = grid.rows(start, stop).dequantize() if grid is not None else weight[start:stop]  # type: ignore[index]
        blocks = np.asarray(rows, dtype=np.float32).reshape(stop - start, k // BLOCK, BLOCK)
        peak = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=-1)[..., None], axis=-1)[..., 0]
        chunk_scale = peak / np.float32(-zero_point)
        inverse = np.divide(1.0, chunk_scale, out=np.zeros_like(chunk_scale), where=chunk_scale != 0)
        q = np.rint(blocks * inverse[..., None]) + zero_point
        codes[start:stop] = np.clip(q, 0, 2 * zero_point - 1)
        scale[start:stop] = chunk_scale
    data = codes if bits == 8 else (codes[..., 0::2] | (codes[..., 1::2] << 4))
    return Blocks(bits, BLOCK, data, scale, None)


def stack(parts: list[Blocks]) -> Blocks:
    """Matrices stacked along N (packed q/k/v); they must share bits and block."""
    first = parts[0]
    if len(parts) == 1:
        return first
    offset = None
    if any(p.offset is not None for p in parts):
        offset = np.concatenate([p.offset if p.offset is not None else np.zeros_like(p.scale) for p in parts])
    matrices = tuple(kind for p in parts for kind in p.matrices)
    return Blocks(first.bits, first.block, np.concatenate([p.data for p in parts]),
                  np.concatenate([p.scale for p in parts]), offset, parts=matrices)


class LinearWriter:
    """Writes the weights of one graph in one dtype (fp32, int8 or int4) and the nodes that read them."""

    def __init__(self, graph: GraphWriter, source: WeightSource, dtype: str, progress: ByteProgress,
                 wide: bool = False) -> None:
        self.graph, self.source, self.dtype, self.progress = graph, source, dtype, progress
        self.wide = wide  # see plan()
        self.narrowed = 0  # matrices int4 re-rounded from a 5-8-bit grid to 4 bits
        self.record: dict[str, str] = {}  # source tensor -> what became of it
        self.kept: dict[str, int] = {}  # GGUF type -> weight matrices read as exactly its blocks
        self.requantized = 0  # weight matrices read from a new grid (a tied lm_head counts again)
        self._block_sums: dict[tuple[str, int], str] = {}

    def _info_type(self, name: str) -> str:
        info = self.source.info(name)
        if info is None:
            raise KeyError(f"the model has no tensor {name}")
        return info.type_name

    def _done(self, name: str) -> None:
        info = self.source.info(name)
        self.progress.tensor_done(info.stored_bytes if info else 0)

    def vector(self, name: str, offset: float = 0.0) -> str:
        """A 1-D weight (norm, bias) as fp32, plus ``offset`` (Gemma's 1 + weight)."""
        values = self.source.fp32(name) + np.float32(offset)
        self._done(name)
        return self.graph.weight(name, values.astype(np.float32))

    def stackable(self, names: list[str]) -> bool:
        """Whether these weights share one block layout in this dtype, so ``matmul`` can stack them."""
        if self.dtype == "fp32":
            return True
        return len({plan(self._info_type(n), self.dtype, "linear", self.wide)[1:] for n in names}) == 1

    def _blocks(self, name: str, role: str) -> Blocks:
        """The tensor as blocks for this dtype, recording how they were made."""
        type_name = self._info_type(name)
        self.progress.working_on(name, self.source.info(name).size)  # type: ignore[union-attr]
        keep, bits, _ = plan(type_name, self.dtype, role, self.wide)
        if not self.wide and narrowed(type_name, self.dtype, role):
            self.narrowed += 1
        grid = self.source.grid(name)
        if keep and grid is not None:
            blocks = blocks_from_grid(grid, bits, type_name.lower())
            self.record[name] = f"{type_name.lower()} kept exactly ({bits}-bit blocks of {blocks.block})"
        else:
            blocks = requantize(grid if grid is not None else self.source.fp32(name), bits)
            self.record[name] = f"{type_name.lower()} re-rounded to {bits}-bit blocks of {BLOCK}"
        self._done(name)
        return blocks

    def _fp32(self, name: str) -> np.ndarray:
        self.progress.working_on(name, self.source.info(name).size)  # type: ignore[union-attr]
        values = self.source.fp32(name)
        self.record[name] = f"{self._info_type(name).lower()} as fp32"
        self._done(name)
        return values

    def matmul(self, x: str, names: list[str], node: str) -> str:
        """``x @ W.T`` for the weights ``names`` stacked along their outputs (packed q/k/v; see
        ``stackable``); returns the output name."""
        if self.dtype == "fp32":
            weight = np.concatenate([self._fp32(n) for n in names]).T
            return self.graph.node("MatMul", [x, self.graph.weight(f"{node}.weight", weight)], name=node)[0]
        blocks = stack([self._blocks(n, "linear") for n in names])
        return self._write_matmul(x, blocks, node)

    def lm_head(self, x: str, name: str, node: str) -> str:
        """The output projection (in int4: 8 bits when its source has 8 or more, else 4)."""
        if self.dtype == "fp32":
            return self.matmul(x, [name], node)
        return self._write_matmul(x, self._blocks(name, "table"), node)

    def _count(self, blocks: Blocks) -> None:
        """Tally each matrix a MatMul reads: kept exactly (by GGUF type) or re-rounded."""
        for kind in blocks.matrices:
            if kind:
                self.kept[kind] = self.kept.get(kind, 0) + 1
            else:
                self.requantized += 1

    def _write_matmul(self, x: str, blocks: Blocks, node: str) -> str:
        self._count(blocks)
        data = self.graph.weight(f"{node}.weight_q{blocks.bits}", blocks.data)
        return self._nbits(x, blocks, data, node)

    def _nbits(self, x: str, blocks: Blocks, data: str, node: str) -> str:
        """MatMulNBits over ``data``, plus the offset MatMul over block sums when the blocks have one."""
        n, k = blocks.shape
        scale = self.graph.weight(f"{node}.weight_scale", blocks.scale)
        out = f"{node}/out0" if blocks.offset is None else f"{node}/nbits"
        self.graph.node("MatMulNBits", [x, data, scale], [out], name=node, domain="com.microsoft",
                        K=k, N=n, bits=blocks.bits, block_size=blocks.block, accuracy_level=ACCURACY_LEVEL)
        if blocks.offset is None:
            return out
        offset = self.graph.weight(f"{node}.weight_offset", np.ascontiguousarray(blocks.offset.T))
        extra = self.graph.node("MatMul", [self._sums(x, k, blocks.block), offset], name=f"{node}_offset")[0]
        return self.graph.node("Add", [out, extra], name=f"{node}_add_offset")[0]

    def _sums(self, x: str, k: int, block: int) -> str:
        """Per-block sums of ``x`` (batch, seq, K) -> (batch, seq, K / block), made once per input."""
        key = (x, block)
        if key not in self._block_sums:
            shape = self.graph.constant(f"blocks_{k}_{block}", [0, 0, k // block, block])
            split = self.graph.node("Reshape", [x, shape], name=f"{x}_blocks{block}")[0]
            axes = self.graph.constant("last_axis", [-1])
            self._block_sums[key] = self.graph.node("ReduceSum", [split, axes], name=f"{x}_block_sums{block}",
                                                    keepdims=0)[0]
        return self._block_sums[key]

    def embedding(self, ids: str, name: str) -> tuple[str, Any]:
        """The rows of embedding ``name`` for ``ids`` as (batch, seq, hidden), and a handle with
        which ``tied_lm_head`` reads the same table."""
        if self.dtype == "fp32":
            table = self.graph.weight("embed_tokens.weight", self._fp32(name))
            return self.graph.node("Gather", [table, ids], name="embed")[0], table
        blocks = self._blocks(name, "table")
        hidden = blocks.shape[1]
        data = self.graph.weight(f"embed_tokens.weight_q{blocks.bits}", blocks.data)
        scale3 = self.graph.weight("embed_tokens.weight_scale3", blocks.scale[..., None])
        rows = self.graph.node("GatherBlockQuantized", [data, ids, scale3], name="embed", domain="com.microsoft",
                               gather_axis=0, quantize_axis=2, block_size=blocks.block, bits=blocks.bits)[0]
        if blocks.offset is not None:
            offsets = self.graph.weight("embed_tokens.weight_offset3", blocks.offset[..., None])
            picked = self.graph.node("Gather", [offsets, ids], name="embed_offsets")[0]
            rows = self.graph.node("Add", [rows, picked], name="embed_add_offsets")[0]
        shape = self.graph.constant("embed_shape", [0, 0, hidden])
        return self.graph.node("Reshape", [rows, shape], name="embed_rows")[0], (data, blocks)

    def tied_lm_head(self, x: str, name: str, table: Any, node: str) -> str:
        """lm_head reading the embedding ``name``'s table: the same blocks, or a transposed copy in fp32."""
        if self.dtype == "fp32":
            weight = self.graph.weight("lm_head.weight", self.source.fp32(name).T)
            return self.graph.node("MatMul", [x, weight], name=node)[0]
        data, blocks = table
        self._count(blocks)
        return self._nbits(x, blocks, data, node)
