"""An ONNX graph whose weights go to one external-data file as they are made.

The graph's nodes stay in memory (a few hundred kB); each weight is appended to ``<name>.data``
the moment it is added and only a reference (offset, length) stays in the protobuf. So the
export holds one tensor at a time, never the model, and never a 2 GB protobuf. Offsets are
aligned to 4 kB so that ONNX Runtime can map the file: weights that only a Gather reads (the
embedding table) then cost memory only for the rows a prompt touches.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pgpt.runtime.errors import DiskSpaceError

ALIGNMENT = 4096
INLINE_BYTES = 1024  # smaller tensors (shapes, scalars, norms of tiny test models) stay in the protobuf
OPSET = 17


class GraphWriter:
    """Collects nodes; streams initializers to ``folder/<file_name>.data``."""

    def __init__(self, folder: Path, file_name: str = "model.onnx") -> None:
        self.path = folder / file_name
        self.data_name = f"{file_name}.data"
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = set()
        self._data = open(folder / self.data_name, "wb")
        self.written = 0

    def weight(self, name: str, array: np.ndarray) -> str:
        """Add ``array`` as the initializer ``name`` (written to disk now); returns the name."""
        from onnx import TensorProto, helper, numpy_helper

        if name in self._names:
            raise ValueError(f"weight {name} written twice")
        self._names.add(name)
        array = np.ascontiguousarray(array)
        if array.nbytes <= INLINE_BYTES:
            self.initializers.append(numpy_helper.from_array(array, name))
            return name
        offset = self._append(array)
        tensor = TensorProto(name=name, dims=list(array.shape),
                             data_type=helper.np_dtype_to_tensor_dtype(array.dtype))
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.data_name), ("offset", str(offset)), ("length", str(array.nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        self.initializers.append(tensor)
        return name

    def _append(self, array: np.ndarray) -> int:
        offset = -self._data.tell() % ALIGNMENT + self._data.tell()
        try:
            self._data.seek(offset)
            self._data.write(memoryview(array.reshape(-1).view(np.uint8)))
        except OSError as exc:
            raise self._disk_error(exc, array.nbytes) from None
        self.written += array.nbytes
        return offset

    def _disk_error(self, exc: OSError, next_bytes: int) -> OSError:
        """A full disk as a DiskSpaceError naming what was written and what the next tensor needed."""
        if exc.errno != errno.ENOSPC:
            return exc
        self._data.close()  # nothing more can be written; the caller removes the folder
        return DiskSpaceError(
            f"The disk filled up while writing the graph's weights to {self._data.name}: "
            f"{self.written / 1e6:.1f} MB were written and the next tensor needed {next_bytes / 1e6:.1f} MB more."
        )

    def node(self, op: str, inputs: list[str], outputs: list[str] | int = 1, name: str = "",
             domain: str = "", **attrs: Any) -> list[str]:
        """Add a node; ``outputs`` given as a count become ``<name>/outN``. Returns the output names."""
        from onnx import helper

        name = name or f"{op}_{len(self.nodes)}"
        if isinstance(outputs, int):
            outputs = [f"{name}/out{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))
        return outputs

    def constant(self, name: str, values: list[int]) -> str:
        """An int64 initializer (shapes, axes), added once."""
        if name not in self._names:
            self.weight(name, np.asarray(values, dtype=np.int64))
        return name

    def finish(self, inputs: list[Any], outputs: list[Any], graph_name: str) -> Path:
        """Write the graph protobuf beside its data file and close the data file; returns its path."""
        import onnx
        from onnx import helper

        try:
            self._data.close()
        except OSError as exc:
            raise self._disk_error(exc, 0) from None
        graph = helper.make_graph(self.nodes, graph_name, inputs, outputs, self.initializers)
        opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
        # IR version 10 (ONNX 1.16) loads in every onnxruntime we support; the library default may be newer.
        model = helper.make_model(graph, opset_imports=opsets, producer_name="pgpt-export", ir_version=10)
        onnx.save_model(model, str(self.path))
        return self.path

    def close(self) -> None:
        """Close the data file (after an error; ``finish`` closes it otherwise)."""
        if not self._data.closed:
            self._data.close()


class ByteProgress:
    """A progress line every ``every`` seconds: tensors and MB written of the total, and the ETA."""

    def __init__(self, report: Callable[[str, str], None], stage: str, total_bytes: int, total_tensors: int,
                 every: float = 2.0) -> None:
        self._report, self._stage = report, stage
        self.total_bytes, self.total_tensors = max(total_bytes, 1), total_tensors
        self.done_bytes = self.done_tensors = 0
        self.current = ""  # the tensor being converted, for the heartbeat between lines
        self._every, self._started = every, time.perf_counter()
        self._last = self._started

    def working_on(self, name: str, weights: int) -> None:
        """A tensor's conversion starts (a large one can take many seconds)."""
        self.current = f"{name} ({weights / 1e6:.1f}M weights)"

    def waiting_line(self) -> str:
        """What the heartbeat says while a tensor is being converted."""
        return f"{self.line(time.perf_counter())}; converting {self.current}" if self.current else \
            self.line(time.perf_counter())

    def tensor_done(self, source_bytes: int) -> None:
        """One source tensor is converted and written (``source_bytes`` of it as stored)."""
        self.done_tensors += 1
        self.done_bytes += source_bytes
        now = time.perf_counter()
        if now - self._last >= self._every or self.done_tensors == self.total_tensors:
            self._last = now
            self._report(self._stage, self.line(now))

    def line(self, now: float) -> str:
        """``tensors 40/339, 120/1117 MB read, ETA 31s``."""
        fraction = min(self.done_bytes / self.total_bytes, 1.0)
        elapsed = now - self._started
        eta = f", ETA {elapsed * (1 - fraction) / fraction:.0f}s" if 0 < fraction < 1 else ""
        return (f"tensors {self.done_tensors}/{self.total_tensors}, "
                f"{self.done_bytes / 1e6:.0f}/{self.total_bytes / 1e6:.0f} MB read{eta}")
