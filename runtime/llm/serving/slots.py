"""The KV buffer of a batch: one row (slot) per running sequence, bound to ONNX Runtime by address.

Why one buffer for all slots: GroupQueryAttention decodes a batch in one call when the rows'
keys and values sit in one tensor of shape (rows, kv heads, positions, head size), each row at
its own length (``seqlens_k``). With one preallocated tensor per layer, a decode step binds the
first ``n`` rows and a prompt chunk binds one row, both by address into the same memory, so no
step copies the cache; rows are contiguous because the slot is the outermost axis.

On the CPU the tensors are numpy arrays (zeroed lazily by the kernel: a slot's memory is only
resident once its positions are written). On CUDA they are device tensors that never leave the
GPU; only token ids, the mask and the logits cross (checked on a lent GPU by ``bench/cuda/``; no
test here can: CI has no GPU).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class SlotBuffer:
    """Every layer's keys and values for ``slots`` sequences of up to ``capacity`` positions."""

    def __init__(self, specs: list[tuple[str, Any, Any]], slots: int, capacity: int, device: str) -> None:
        from onnxruntime import OrtValue

        self.slots, self.capacity, self.device = slots, capacity, device
        self.arrays: dict[str, np.ndarray] = {}
        self._values: dict[str, Any] = {}
        self._layout: dict[str, tuple[list[int], Any, int]] = {}  # row dims, numpy type, bytes per row
        for name, shape, dtype in specs:
            dims = [slots] + [d if isinstance(d, int) else 1 for d in shape[1:]]
            dims[2] = capacity  # the sequence axis
            if device == "cuda":
                self._values[name] = OrtValue.ortvalue_from_shape_and_type(dims, dtype, "cuda", 0)
            else:
                self.arrays[name] = np.empty(dims, dtype=dtype)
                # ONNX Runtime's GroupQueryAttention touches a row's whole capacity the first time
                # the row is used (measured: +360 MB of RSS for a row of the 135M model at 8192
                # positions, 0.1-1 s of page faults on this VM, during which every running stream
                # waits). Zero (and so fault in) every page now, while the model loads, so that a
                # new request never stalls the others and the memory is taken once, at a known size.
                self.arrays[name].fill(0)
            row_bytes = int(np.prod(dims[1:])) * np.dtype(dtype).itemsize
            self._layout[name] = (dims[1:], dtype, row_bytes)
        self.position_bytes = sum(row_bytes // self.capacity for _, _, row_bytes in self._layout.values())
        self.high_water = [0] * slots  # positions ever written per slot, for the memory report
        # Tokens whose keys and values a free row still holds (its last sequence's prompt and
        # answer): a new prompt that starts the same way is read from where they end.
        self.kept: list[list[int]] = [[] for _ in range(slots)]

    def _address(self, name: str, row: int) -> int:
        base = self.arrays[name].ctypes.data if self.device == "cpu" else self._values[name].data_ptr()
        return base + row * self._layout[name][2]

    def bind(self, binding: Any, first_row: int, rows: int, present_names: list[str]) -> None:
        """Bind rows ``first_row .. first_row + rows`` as the step's past and present KV (in place)."""
        for present in present_names:
            past = present.replace("present", "past_key_values", 1)
            dims, dtype, _ = self._layout[past]
            shape = [rows] + dims
            address = self._address(past, first_row)
            binding.bind_input(past, self.device, 0, dtype, shape, address)
            binding.bind_output(present, self.device, 0, dtype, shape, address)

    def wrote(self, row: int, positions: int) -> None:
        """Record that ``row`` holds ``positions`` positions now (memory report only)."""
        self.high_water[row] = max(self.high_water[row], positions)

    @property
    def devices(self) -> set[str]:
        """Where the buffer's tensors live, as ONNX Runtime names the device ("Cuda"), or {"cpu"}."""
        return {value.device_name() for value in self._values.values()} if self._values else {"cpu"}

    @property
    def can_move(self) -> bool:
        """Whether rows can be copied here (CPU); on the GPU a freed row stays a hole instead."""
        return self.device == "cpu"

    def swap(self, first: int, second: int, first_positions: int, second_positions: int) -> None:
        """Exchange the used positions of two rows (and the tokens a free one keeps)."""
        for array in self.arrays.values():
            held = array[first, :, :first_positions].copy()
            array[first, :, :second_positions] = array[second, :, :second_positions]
            array[second, :, :first_positions] = held
        self.kept[first], self.kept[second] = self.kept[second], self.kept[first]
        self.wrote(first, second_positions)
        self.wrote(second, first_positions)

    def best_row(self, free: list[int], prompt: list[int], minimum: int) -> tuple[int, int]:
        """The free row to read ``prompt`` into and how many of its first tokens that row holds
        already (0 unless at least ``minimum``): the row with the longest common prefix, else the
        lowest. The prompt's last token is always read again: its logits pick the first new token."""
        best, reused = free[0], 0
        limit = len(prompt) - 1
        for row in free:
            kept = self.kept[row]
            same = 0
            while same < min(limit, len(kept)) and kept[same] == prompt[same]:
                same += 1
            if same > reused:
                best, reused = row, same
        return (best, reused) if minimum and reused >= minimum else (free[0], 0)

    @property
    def resident_bytes(self) -> int:
        """Bytes the buffer holds in memory: all of it on the CPU (faulted in at creation), on the
        GPU the positions written so far."""
        if self.device == "cpu":
            return self.reserved_bytes
        return sum(self.high_water) * self.position_bytes

    @property
    def reserved_bytes(self) -> int:
        """Bytes of the whole buffer (address space; on the GPU, memory)."""
        return self.slots * self.capacity * self.position_bytes
