"""Faster GGUF loading through transformers: each file parsed once, from memory.

Why: transformers' GGUF path builds a ``gguf.GGUFReader`` for the config, again for the
weights and again for the tokenizer. Each parse of SmolLM2's 49k-token vocabulary cost about
10 s on 2 cores, because the reader slices a numpy memmap once per field part and memmap's
Python-level hooks then run about two million times. transformers also rebuilds gguf's tensor
name map once per module (397 times, 7 s). Measured: loading the default model and its
tokenizer took 26.3 s before and 6.6 s after (2 cores, same run).

Inside ``fast_gguf_reading()`` readers are made once per file over an in-memory copy of it (the
default model is 90 MB; files over 2 GiB stay memory-mapped) and the name map is memoized. Both
patches are undone on exit; with a gguf release that changed these names nothing is patched and
loading is only slower.
"""

from __future__ import annotations

import functools
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

_LOCK = threading.RLock()  # the patches are module attributes: one patched load at a time
# Larger files stay memory-mapped: a 40 GB model must not be read into RAM to parse its header.
IN_MEMORY_LIMIT = 2 * 1024**3


def _read_into_memory(path: Any, mode: str = "r", **_: Any) -> np.ndarray:
    """``np.memmap``'s stand-in: the file's bytes in a read-only array (the reader opens with mode 'r')."""
    if mode != "r" or Path(path).stat().st_size > IN_MEMORY_LIMIT:
        return np.memmap(path, mode=mode)  # type: ignore[call-overload, no-any-return]
    data = np.fromfile(path, dtype=np.uint8)
    data.flags.writeable = False
    return data


def _in_memory_numpy() -> types.ModuleType:
    """numpy, except that ``memmap(path)`` reads the file into memory."""
    shim = types.ModuleType("numpy")
    shim.__dict__.update(np.__dict__)
    shim.memmap = _read_into_memory  # type: ignore[attr-defined]
    return shim


@contextmanager
def fast_gguf_reading() -> Iterator[None]:
    """Within the block, transformers' GGUF loads share one in-memory reader per file."""
    try:
        import gguf
        from gguf import gguf_reader
    except ImportError:
        yield
        return
    if not all(hasattr(m, a) for m, a in ((gguf, "GGUFReader"), (gguf, "get_tensor_name_map"), (gguf_reader, "np"))):
        yield
        return
    with _LOCK:
        original_reader, original_map = gguf.GGUFReader, gguf.get_tensor_name_map
        readers: dict[str, Any] = {}

        def shared_reader(path: Any, mode: str = "r") -> Any:
            key = f"{Path(path).resolve()}:{mode}"
            if key not in readers:
                readers[key] = _parse_in_memory(original_reader, path, mode)
            return readers[key]

        gguf.GGUFReader = shared_reader  # type: ignore[assignment]
        gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(original_map)
        try:
            yield
        finally:
            gguf.GGUFReader, gguf.get_tensor_name_map = original_reader, original_map


def read_gguf(path: Path) -> Any:
    """A ``gguf.GGUFReader`` of ``path`` parsed from memory (seconds faster than over a memmap)."""
    import gguf
    from gguf import gguf_reader

    with _LOCK:
        return _parse_in_memory(gguf.GGUFReader, path, "r") if hasattr(gguf_reader, "np") else gguf.GGUFReader(path)


def _parse_in_memory(reader_class: Any, path: Any, mode: str) -> Any:
    """``reader_class(path, mode)`` with the reader module's numpy reading the file into memory."""
    from gguf import gguf_reader

    gguf_reader.np = _in_memory_numpy()  # type: ignore[assignment]
    try:
        return reader_class(path, mode)
    finally:
        gguf_reader.np = np
