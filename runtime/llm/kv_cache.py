"""The fused graph's KV buffer, kept between generations so a conversation's next turn reads only
what is new.

A chat turn's prompt is the previous prompt, the previous answer and the new message. Without
this, every turn reads the whole conversation again: on 2 cores a 1000-token history costs about
a second before the first new token. GroupQueryAttention writes keys and values in place into
one preallocated buffer per layer, so keeping that buffer and the token ids it holds is enough:
the next prompt's longest common prefix with those ids is already computed, and the prompt path
starts after it (as it starts each 256-token chunk after the previous one).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Room added when a buffer is allocated or grown, so a conversation's next turn often fits without
# another copy. Measured: a larger buffer does not slow attention (it reads the used length only).
HEADROOM = 256


class KVBuffer:
    """One in-place KV buffer (every layer's keys and values) and the tokens it holds.

    ``tokens[i]`` is the token whose keys and values sit at position ``i``; positions past
    ``len(tokens)`` hold stale values that attention never reads (it reads up to the total length
    it is given).
    """

    def __init__(self, specs: list[tuple[str, Any, Any]], capacity: int, device: str) -> None:
        from onnxruntime import OrtValue

        self.capacity = capacity
        self.device = device
        self.tokens: list[int] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.values: dict[str, Any] = {}
        for name, shape, dtype in specs:
            dims = [1 if not isinstance(d, int) else d for d in shape]
            dims[2] = capacity  # the sequence axis
            if device == "cuda":
                self.values[name] = OrtValue.ortvalue_from_shape_and_type(dims, dtype, "cuda", 0)
            else:
                # ortvalue_from_numpy shares the array's memory: the graph writes into it in place.
                self.arrays[name] = np.zeros(dims, dtype=dtype)
                self.values[name] = OrtValue.ortvalue_from_numpy(self.arrays[name])

    def reusable(self, prompt_ids: list[int]) -> int:
        """How many leading prompt tokens are already in the buffer; the last prompt token is
        always run again, since its logits pick the first new token."""
        limit = min(len(self.tokens), len(prompt_ids) - 1)
        same = 0
        while same < limit and self.tokens[same] == prompt_ids[same]:
            same += 1
        return same

    def grown(self, specs: list[tuple[str, Any, Any]], capacity: int, keep: int) -> "KVBuffer | None":
        """A buffer of ``capacity`` positions holding this one's first ``keep``; None on the GPU,
        where the positions cannot be copied from here."""
        if self.device != "cpu":
            return None
        bigger = KVBuffer(specs, capacity, self.device)
        for name, array in self.arrays.items():
            bigger.arrays[name][:, :, :keep] = array[:, :, :keep]
        bigger.tokens = self.tokens[:keep]
        return bigger
