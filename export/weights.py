"""A model's weights read one tensor at a time, by Hugging Face name, from GGUF or safetensors.

The export never loads a whole model: each weight is read when the graph writer (or the
layer-by-layer quality reference) asks for it, converted, written and dropped. GGUF tensors
are read with ``os.pread`` rather than through the reader's mapping, so the file's pages go to
the page cache and not into this process's resident set; GGUF blocks can also be read as
integer grids (``gguf_quants``) so that 4-bit blocks reach the ONNX file without a detour
through fp32.

Names and layouts follow transformers: ``model.layers.3.self_attn.q_proj.weight`` is
(out_features, in_features). For GGUF that means undoing llama.cpp's conversion where it
changed a tensor: the rotary permutation of Llama's q/k rows, Gemma's ``1 + weight`` norms.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pgpt.export.gguf_quants import GRID_TYPES, Grid, decode_grid
from pgpt.runtime.errors import SourceError, UnsupportedModelError

# model_type (transformers) -> GGUF architecture name
GGUF_ARCHITECTURES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3",
                      "gemma3_text": "gemma3"}


@dataclass(frozen=True)
class TensorInfo:
    """One stored weight: its shape in transformers' layout and how it is stored."""

    name: str
    shape: tuple[int, ...]
    type_name: str  # "F32", "F16", "BF16" or a GGUF block type such as "Q4_K"
    stored_bytes: int

    @property
    def size(self) -> int:
        """Number of weights."""
        return int(np.prod(self.shape))


class WeightSource(Protocol):
    """Weights by transformers name, one tensor at a time."""

    def info(self, name: str) -> TensorInfo | None:
        """The tensor's shape and storage type, or None when the model has no such tensor."""

    def fp32(self, name: str) -> np.ndarray:
        """The tensor as float32, in transformers' layout."""

    def grid(self, name: str) -> Grid | None:
        """The tensor as its GGUF integer grid (2-D weights of block types only), else None."""

    def stored_bytes(self) -> int:
        """Bytes of all weights as stored (for progress and estimates)."""


class GGUFWeights:
    """The tensors of a GGUF file under their transformers names."""

    def __init__(self, path: Path, model_type: str, heads: int, kv_heads: int) -> None:
        import gguf

        from pgpt.export.gguf_loading import read_gguf

        arch = GGUF_ARCHITECTURES.get(model_type)
        if arch is None:
            raise UnsupportedModelError(f"pgpt cannot read {model_type!r} weights from GGUF.")
        reader = read_gguf(path)
        self._path = path
        self._tensors = {t.name: t for t in reader.tensors}
        layers = 1 + max((int(n.split(".")[1]) for n in self._tensors if n.startswith("blk.")), default=-1)
        arch_enum = next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == arch)
        self._names = gguf.get_tensor_name_map(arch_enum, layers)
        self._arch = arch
        self._heads, self._kv_heads = heads, kv_heads

    def _gguf_tensor(self, name: str) -> Any:
        base, _, suffix = name.rpartition(".")
        mapped = self._names.get_name(base)
        return self._tensors.get(f"{mapped}.{suffix}") if mapped else None

    def info(self, name: str) -> TensorInfo | None:
        """See WeightSource."""
        tensor = self._gguf_tensor(name)
        if tensor is None:
            return None
        shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))  # GGUF lists ne0 (columns) first
        return TensorInfo(name, shape, tensor.tensor_type.name, int(tensor.n_bytes))

    def _raw(self, tensor: Any) -> np.ndarray:
        """The tensor's bytes read from the file (not through the mapping), one row per weight row."""
        with open(self._path, "rb") as handle:
            data = os.pread(handle.fileno(), int(tensor.n_bytes), int(tensor.data_offset))
        if len(data) != int(tensor.n_bytes):
            raise SourceError(f"{self._path} ends inside tensor {tensor.name}: the file is truncated.")
        rows = int(np.prod(tensor.shape.tolist()[1:])) if len(tensor.shape) > 1 else 1
        return np.frombuffer(data, dtype=np.uint8).reshape(rows, -1)

    def _row_order(self, name: str, rows: int) -> np.ndarray | None:
        """llama.cpp permutes Llama's q/k rows for its rotary layout; the order that undoes it."""
        if self._arch != "llama" or not name.endswith(("q_proj.weight", "k_proj.weight", "q_proj.bias",
                                                       "k_proj.bias")):
            return None
        heads = self._heads if ".q_proj." in name else self._kv_heads
        return np.arange(rows).reshape(heads, rows // heads // 2, 2).transpose(0, 2, 1).reshape(-1)

    def fp32(self, name: str) -> np.ndarray:
        """See WeightSource."""
        import gguf

        tensor = self._gguf_tensor(name)
        if tensor is None:
            raise KeyError(name)
        info = self.info(name)
        assert info is not None
        raw = self._raw(tensor)
        if info.type_name in GRID_TYPES:
            values = decode_grid(raw, info.type_name, info.shape[-1]).dequantize()
        else:
            values = gguf.quants.dequantize(raw, tensor.tensor_type).astype(np.float32, copy=False)
        values = values.reshape(info.shape)
        order = self._row_order(name, info.shape[0])
        if order is not None:
            values = values[order]
        if self._arch == "gemma3" and name.endswith("norm.weight"):
            values = values - np.float32(1.0)  # llama.cpp stores Gemma's norms as 1 + weight
        values = np.ascontiguousarray(values, dtype=np.float32)
        return values if values.flags.writeable else values.copy()  # F32 tensors are views of the read bytes

    def grid(self, name: str) -> Grid | None:
        """See WeightSource."""
        info = self.info(name)
        if info is None or info.type_name not in GRID_TYPES or len(info.shape) != 2:
            return None
        grid = decode_grid(self._raw(self._gguf_tensor(name)), info.type_name, info.shape[1])
        order = self._row_order(name, info.shape[0])
        if order is not None:
            grid = Grid(grid.codes[order], grid.scale[order], grid.low[order], grid.bits, grid.block, grid.zero)
        return grid

    def stored_bytes(self) -> int:
        """See WeightSource."""
        return sum(int(t.n_bytes) for t in self._tensors.values())


class SafetensorsWeights:
    """The tensors of a transformers folder's ``*.safetensors`` files."""

    def __init__(self, folder: Path) -> None:
        self._where: dict[str, Path] = {}
        self._info: dict[str, TensorInfo] = {}
        for path in sorted(folder.glob("*.safetensors")):
            header, data_start = _safetensors_header(path)
            for name, entry in header.items():
                if name == "__metadata__":
                    continue
                self._where[name] = path
                start, end = entry["data_offsets"]
                self._info[name] = TensorInfo(name, tuple(entry["shape"]), str(entry["dtype"]), end - start)
                if data_start + end > path.stat().st_size:  # an interrupted copy ("a bug in pgpt", t51)
                    from pgpt.runtime.errors import SourceError

                    raise SourceError(f"{path} is truncated: its header places tensor {name} up to byte "
                                      f"{data_start + end:,} and the file has {path.stat().st_size:,}.",
                                      hint="Copy or download it again and compare its sha256 with the publisher's.")
        self._bytes = sum(p.stat().st_size for p in set(self._where.values()))

    def info(self, name: str) -> TensorInfo | None:
        """See WeightSource."""
        return self._info.get(name)

    def fp32(self, name: str) -> np.ndarray:
        """See WeightSource (bf16 goes through torch, which numpy cannot read)."""
        from safetensors import safe_open

        with safe_open(str(self._where[name]), framework="pt") as handle:
            return np.ascontiguousarray(handle.get_tensor(name).float().numpy())

    def grid(self, name: str) -> Grid | None:
        """Safetensors weights have no GGUF grid."""
        return None

    def stored_bytes(self) -> int:
        """See WeightSource."""
        return self._bytes


def _safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """The file's header and where its tensor data starts.

    Raises:
        SourceError: the header cannot be read (a file cut inside it, or no safetensors file).
    """
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        try:
            header: dict[str, Any] = json.loads(handle.read(length))
        except (ValueError, MemoryError, OverflowError):
            from pgpt.runtime.errors import SourceError

            raise SourceError(f"{path} is not a whole safetensors file: its header cannot be read.",
                              hint="Copy or download it again and compare its sha256 with the publisher's.") from None
    return header, 8 + length
