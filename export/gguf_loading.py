"""Faster GGUF loading through transformers: each file parsed once, over a plain mmap.

Why: transformers' GGUF path builds a ``gguf.GGUFReader`` for the config, again for the
weights and again for the tokenizer. Each parse of SmolLM2's 49k-token vocabulary cost about
10 s on 2 cores, because the reader slices a numpy memmap once per field part and memmap's
Python-level hooks then run about two million times. transformers also rebuilds gguf's tensor
name map once per module (397 times, 7 s). Measured: loading the default model and its
tokenizer took 26.3 s before and 6.6 s after (2 cores, same run).

Inside ``fast_gguf_reading()`` readers are made once per file over a plain numpy view of an
``mmap`` of it (no ``np.memmap`` subclass, so slicing runs no Python hooks, and nothing is copied
into memory: parsing the 1.1 GB Qwen2.5-1.5B header took 8 s and 22 MB of file pages, against 12.5 s
and 1.5 GB read into memory) and the name map is memoized. Both patches are undone on exit; with a
gguf release that changed these names nothing is patched and loading is only slower.
"""

from __future__ import annotations

import functools
import mmap
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

_LOCK = threading.RLock()  # the patches are module attributes: one patched load at a time


def _map_file(path: Any, mode: str = "r", **_: Any) -> np.ndarray:
    """``np.memmap``'s stand-in: a read-only ndarray over an mmap of the file (the reader opens with mode 'r')."""
    if mode != "r":
        return np.memmap(path, mode=mode)  # type: ignore[call-overload, no-any-return]
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mapped, dtype=np.uint8)  # the array keeps the mapping open


def _mapping_numpy() -> types.ModuleType:
    """numpy, except that ``memmap(path)`` is a plain ndarray over an mmap of the file."""
    shim = types.ModuleType("numpy")
    shim.__dict__.update(np.__dict__)
    shim.memmap = _map_file  # type: ignore[attr-defined]
    return shim


@contextmanager
def fast_gguf_reading() -> Iterator[None]:
    """Within the block, transformers' GGUF loads share one mapped reader per file."""
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
                readers[key] = _parse_mapped(original_reader, path, mode)
            return readers[key]

        gguf.GGUFReader = shared_reader  # type: ignore[assignment]
        gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(original_map)
        try:
            with _head_dim_from_key_length():
                yield
        finally:
            gguf.GGUFReader, gguf.get_tensor_name_map = original_reader, original_map


@contextmanager
def _head_dim_from_key_length() -> Iterator[None]:
    """transformers' GGUF config table reads ``attention.key_length`` as ``head_dim`` for Gemma but
    not for Qwen 3, whose config then keeps its default of 128: a Qwen 3 file with 64-wide heads
    got a graph and a PyTorch model of the wrong shapes ("size mismatch ... [512, 256]")."""
    try:
        from transformers.integrations.ggml import GGUF_CONFIG_MAPPING
    except ImportError:
        yield
        return
    added = [arch for arch in ("qwen3", "qwen3_moe")
             if arch in GGUF_CONFIG_MAPPING and "attention.key_length" not in GGUF_CONFIG_MAPPING[arch]]
    for arch in added:
        GGUF_CONFIG_MAPPING[arch]["attention.key_length"] = "head_dim"
    try:
        yield
    finally:
        for arch in added:
            GGUF_CONFIG_MAPPING[arch].pop("attention.key_length", None)


def read_gguf(path: Path) -> Any:
    """A ``gguf.GGUFReader`` of ``path`` parsed over a plain mmap (seconds faster than over a memmap)."""
    import gguf
    from gguf import gguf_reader

    with _LOCK:
        return _parse_mapped(gguf.GGUFReader, path, "r") if hasattr(gguf_reader, "np") else gguf.GGUFReader(path)


def _parse_mapped(reader_class: Any, path: Any, mode: str) -> Any:
    """``reader_class(path, mode)`` with the reader module's numpy mapping the file without memmap."""
    from gguf import gguf_reader

    gguf_reader.np = _mapping_numpy()  # type: ignore[assignment]
    try:
        return reader_class(path, mode)
    finally:
        gguf_reader.np = np
