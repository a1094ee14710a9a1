"""GGUF quantized blocks decoded into integer grids: codes, a scale and a low value per block.

Every GGUF block type we read stores a weight as ``scale * code + low`` with integer codes and
one (scale, low) pair per block of 16 or 32 weights, the K-quants deriving each sub-block's
pair from 6-bit integers times the super-block's fp16 factors. Decoding to that grid, instead
of to fp32 values, lets the export write the same integers into ``MatMulNBits`` (exactly, see
``linear_weights``) and keeps one tensor's codes in one byte per weight while it is written.

The decoders follow ggml's block layouts (and the ``gguf`` package's dequantization, against
which the tests check each type): Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QK_K = 256


@dataclass
class Grid:
    """Integer codes of a (rows, cols) weight and its per-block affine map.

    ``weight[r, c] == scale[r, b] * codes[r, c] + low[r, b]`` for ``b = c // block``. ``zero`` is
    set when the type is symmetric, ``low == -zero * scale`` for every block, so the weight is
    ``scale * (codes - zero)``: a zero point ``MatMulNBits`` can hold.
    """

    codes: np.ndarray  # (rows, cols) uint8 in 0 .. 2**bits - 1
    scale: np.ndarray  # (rows, cols // block) float32
    low: np.ndarray  # (rows, cols // block) float32
    bits: int
    block: int
    zero: int | None

    def rows(self, start: int, stop: int) -> "Grid":
        """The grid of rows ``start:stop`` (views, no copy)."""
        return Grid(self.codes[start:stop], self.scale[start:stop], self.low[start:stop], self.bits, self.block,
                    self.zero)

    def dequantize(self) -> np.ndarray:
        """The fp32 weights (rows, cols)."""
        rows, cols = self.codes.shape
        codes = self.codes.reshape(rows, cols // self.block, self.block).astype(np.float32)
        if self.zero is not None:
            values = self.scale[..., None] * (codes - np.float32(self.zero))
        else:
            values = self.scale[..., None] * codes + self.low[..., None]
        return values.reshape(rows, cols)


def _f16(raw: np.ndarray) -> np.ndarray:
    """Little-endian fp16 fields (..., 2 bytes) as float32 (...)."""
    return np.ascontiguousarray(raw).view(np.float16)[..., 0].astype(np.float32)


def _nibbles(packed: np.ndarray) -> np.ndarray:
    """(..., n) bytes -> (..., 2n) codes: the n low nibbles first, then the n high nibbles (ggml's order)."""
    return np.concatenate([packed & 0x0F, packed >> 4], axis=-1)


def _symmetric(codes: np.ndarray, scale: np.ndarray, zero: int, bits: int, block: int) -> Grid:
    return Grid(codes, scale, -np.float32(zero) * scale, bits, block, zero)


def _q4_0(b: np.ndarray) -> Grid:
    return _symmetric(_nibbles(b[:, 2:]), _f16(b[:, :2]), 8, 4, 32)


def _q4_1(b: np.ndarray) -> Grid:
    return Grid(_nibbles(b[:, 4:]), _f16(b[:, :2]), _f16(b[:, 2:4]), 4, 32, None)


def _fifth_bits(qh: np.ndarray) -> np.ndarray:
    """Q5_0/Q5_1's 32 high bits (4 bytes, little-endian) -> (..., 32) values 0 or 16."""
    bits = np.unpackbits(np.ascontiguousarray(qh), axis=-1, bitorder="little")
    return bits << 4


def _q5_0(b: np.ndarray) -> Grid:
    return _symmetric(_nibbles(b[:, 6:]) | _fifth_bits(b[:, 2:6]), _f16(b[:, :2]), 16, 5, 32)


def _q5_1(b: np.ndarray) -> Grid:
    codes = _nibbles(b[:, 8:]) | _fifth_bits(b[:, 4:8])
    return Grid(codes, _f16(b[:, :2]), _f16(b[:, 2:4]), 5, 32, None)


def _q8_0(b: np.ndarray) -> Grid:
    codes = (np.ascontiguousarray(b[:, 2:]).view(np.int8).astype(np.int16) + 128).astype(np.uint8)
    return _symmetric(codes, _f16(b[:, :2]), 128, 8, 32)


def _k_scale_min(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K/Q5_K's 12 bytes of packed 6-bit sub-block scales and minima -> (n, 8) each."""
    d, m, m_d = scales[:, 0:4], scales[:, 4:8], scales[:, 8:12]
    sc = np.concatenate([d & 0x3F, (m_d & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (m_d >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc, mn


def _q4_k(b: np.ndarray) -> Grid:
    n = b.shape[0]
    d, dmin = _f16(b[:, 0:2])[:, None], _f16(b[:, 2:4])[:, None]
    sc, mn = _k_scale_min(b[:, 4:16])
    # 128 bytes = 4 groups of 32 bytes; each group holds two sub-blocks (low nibbles, then high)
    codes = _nibbles(b[:, 16:].reshape(n, 4, 32)).reshape(n, QK_K)
    return Grid(codes, d * sc, -(dmin * mn), 4, 32, None)


def _q5_k(b: np.ndarray) -> Grid:
    n = b.shape[0]
    d, dmin = _f16(b[:, 0:2])[:, None], _f16(b[:, 2:4])[:, None]
    sc, mn = _k_scale_min(b[:, 4:16])
    qh, qs = b[:, 16:48], b[:, 48:]
    low = _nibbles(qs.reshape(n, 4, 32)).reshape(n, 8, 32)
    # sub-block j takes bit j of each of the 32 qh bytes as its fifth bit
    high = (qh[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1
    return Grid((low | (high << 4)).reshape(n, QK_K), d * sc, -(dmin * mn), 5, 32, None)


def _q6_k(b: np.ndarray) -> Grid:
    n = b.shape[0]
    ql, qh = b[:, :128].reshape(n, 2, 64), b[:, 128:192].reshape(n, 2, 1, 32)
    scales = np.ascontiguousarray(b[:, 192:208]).view(np.int8).astype(np.float32)
    d = _f16(b[:, 208:210])[:, None]
    low4 = np.concatenate([ql & 0x0F, ql >> 4], axis=-1).reshape(n, 2, 4, 32)
    high2 = (qh >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)) & 0x03
    codes = (low4 | (high2 << 4)).reshape(n, QK_K)
    return _symmetric(codes, d * scales, 32, 6, 16)


def _q3_k(b: np.ndarray) -> Grid:
    n = b.shape[0]
    hmask, qs, packed, d = b[:, :32], b[:, 32:96], b[:, 96:108], _f16(b[:, 108:110])[:, None]
    lo = (packed[:, :8, None] >> np.array([0, 4], dtype=np.uint8)).transpose(0, 2, 1).reshape(n, 16) & 0x0F
    hi = (packed[:, 8:12, None] >> np.array([0, 2, 4, 6], dtype=np.uint8)).transpose(0, 2, 1).reshape(n, 16) & 0x03
    scales = ((lo | (hi << 4)).astype(np.int16) - 32).astype(np.float32)
    low2 = (qs.reshape(n, 2, 1, 32) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)) & 0x03
    high = (hmask.reshape(n, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 8, 1)) & 1
    # value = low2 - 4 where the high bit is clear: code = low2 + 4 * high, zero 4
    codes = (low2.reshape(n, 8, 32) | (high << 2)).reshape(n, QK_K)
    return _symmetric(codes, d * scales, 4, 3, 16)


def _q2_k(b: np.ndarray) -> Grid:
    n = b.shape[0]
    packed, qs = b[:, :16], b[:, 16:80]
    d, dmin = _f16(b[:, 80:82])[:, None], _f16(b[:, 82:84])[:, None]
    codes = (qs.reshape(n, 2, 1, 32) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)) & 0x03
    scale = d * (packed & 0x0F).astype(np.float32)
    low = -(dmin * (packed >> 4).astype(np.float32))
    return Grid(codes.reshape(n, QK_K), scale, low, 2, 16, None)


# type name -> (weights per block, bytes per block, decoder)
_DECODERS = {
    "Q4_0": (32, 18, _q4_0), "Q4_1": (32, 20, _q4_1), "Q5_0": (32, 22, _q5_0), "Q5_1": (32, 24, _q5_1),
    "Q8_0": (32, 34, _q8_0), "Q2_K": (QK_K, 84, _q2_k), "Q3_K": (QK_K, 110, _q3_k),
    "Q4_K": (QK_K, 144, _q4_k), "Q5_K": (QK_K, 176, _q5_k), "Q6_K": (QK_K, 210, _q6_k),
}
GRID_TYPES = tuple(_DECODERS)
# type name -> (bits, weights per scale, symmetric: scale * (code - zero) with an integer zero)
GRID_LAYOUTS = {
    "Q4_0": (4, 32, True), "Q4_1": (4, 32, False), "Q5_0": (5, 32, True), "Q5_1": (5, 32, False),
    "Q8_0": (8, 32, True), "Q2_K": (2, 16, False), "Q3_K": (3, 16, True), "Q4_K": (4, 32, False),
    "Q5_K": (5, 32, False), "Q6_K": (6, 16, True),
}

_ZEROS = {"Q4_0": 8, "Q5_0": 16, "Q8_0": 128, "Q3_K": 4, "Q6_K": 32}

# Rows decoded at a time: bounds the temporaries (a few bytes per weight) of a large tensor.
_ROWS_PER_PASS = 4096


def decode_grid(raw: np.ndarray, type_name: str, cols: int) -> Grid:
    """Decode ``raw`` (rows, bytes per row) GGUF blocks of ``type_name`` into a Grid of ``cols`` columns,
    a few thousand rows at a time into preallocated arrays (one byte per weight, plus the scales).

    Raises:
        KeyError: for a type without a grid (F32, F16, BF16, the IQ types).
    """
    per_block, size, decode = _DECODERS[type_name]
    bits, block, symmetric = GRID_LAYOUTS[type_name]
    rows = raw.shape[0]
    codes = np.empty((rows, cols), dtype=np.uint8)
    scale = np.empty((rows, cols // block), dtype=np.float32)
    low = np.empty((rows, cols // block), dtype=np.float32)
    for start in range(0, rows, _ROWS_PER_PASS):
        stop = min(start + _ROWS_PER_PASS, rows)
        part = decode(np.asarray(raw[start:stop]).reshape(-1, size))
        codes[start:stop] = part.codes.reshape(stop - start, cols)
        scale[start:stop] = part.scale.reshape(stop - start, -1)
        low[start:stop] = part.low.reshape(stop - start, -1)
    return Grid(codes, scale, low, bits, block, _ZEROS.get(type_name) if symmetric else None)
