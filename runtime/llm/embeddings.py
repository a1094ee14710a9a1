"""Sentence embeddings with an exported encoder: batched, length-sorted, pooled like the original."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from pgpt.runtime.errors import ModelNotFoundError
from pgpt.runtime.manifest import manifest_hash, verify_folder
from pgpt.runtime.models import DEFAULT_EMBEDDER, ModelInfo, find_model, require_kind
from pgpt.runtime.llm.session import choose_provider, create_session, physical_cores
from pgpt.runtime.settings import Settings
from pgpt.runtime.llm.text import load_tokenizer


BATCH_TOKENS = 256


class Embedder:
    """An exported sentence-embedding model (e.g. all-MiniLM-L6-v2)."""

    def __init__(self, info: ModelInfo, provider: str = "auto", threads: int = 0) -> None:
        require_kind(info, "embedding")  # a usage error: the files are fine, the wrong model was named
        verify_folder(info.path, info.manifest)
        self.info = info
        self.model_id = manifest_hash(info.manifest)
        pooling = info.manifest.get("pooling", {})
        self.pooling = str(pooling.get("mode", "mean"))
        self.normalize = bool(pooling.get("normalize", True))
        self.max_tokens = int(info.manifest.get("max_seq_length", 256))
        self.dimension = int(info.manifest.get("dimension", 0))
        # On the CPU, batches run side by side on one core each (see _run_batches), so the
        # session itself gets one thread; elsewhere the session uses the given threads.
        on_cpu = choose_provider(provider).name == "cpu"
        self.workers = (threads or physical_cores()) if on_cpu else 1
        self.session, self.provider = create_session(info.path / "model.onnx", provider, 1 if on_cpu else threads)
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = load_tokenizer(info.path)
        # Chunking needs a text's whole length: with truncation every long paragraph counted as
        # 256 and was cut into two or three huge chunks whose tails the embedder never read.
        self._counter = load_tokenizer(info.path)
        self._counter.no_truncation()
        self._counter.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()

    def count_tokens(self, text: str) -> int:
        """How many word pieces the whole of ``text`` is, special tokens included (not truncated)."""
        return len(self._counter.encode(text).ids)

    def embed(self, texts: list[str], batch_size: int = 32, batch_tokens: int = BATCH_TOKENS) -> np.ndarray:
        """Embeddings of ``texts`` in their order, shape (len(texts), dimension), float32.

        A batch holds at most ``batch_size`` texts and ``batch_tokens`` tokens with its padding.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        result: list[np.ndarray | None] = [None] * len(texts)
        batches = token_batches([len(e.ids) for e in encodings], batch_size, batch_tokens)
        for batch, vectors in self._run_batches(batches, encodings):
            for index, vector in zip(batch, vectors):
                result[index] = vector
        return np.stack(result).astype(np.float32)  # type: ignore[arg-type]

    def _run_batches(self, batches: list[list[int]], encodings: list[Any]) -> Iterator[tuple[list[int], np.ndarray]]:
        """Each batch with its vectors; ``workers`` batches at a time, one core each.

        Why not one batch on all cores: a 256-token chunk's matrices are small, and split over
        two threads they wait on each other at every operator. Measured on the int8 MiniLM,
        256-token chunks, 2 cores: two batches side by side ran 47.1 chunks/s, one batch on two
        threads 41.2. The vectors are the same: batches are formed before they are run.
        """
        def run(batch: list[int]) -> tuple[list[int], np.ndarray]:
            return batch, self._run([encodings[i] for i in batch])

        if self.workers < 2 or len(batches) < 2:
            yield from map(run, batches)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(self.workers, len(batches)), thread_name_prefix="pgpt-embed") as pool:
            yield from pool.map(run, batches)

    def _run(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = enc.ids, enc.attention_mask, enc.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        return pool(hidden.astype(np.float32), mask, self.pooling, self.normalize)


def token_batches(lengths: list[int], batch_size: int, batch_tokens: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, each within ``batch_size`` and ``batch_tokens``.

    Sorting by length keeps the padding (wasted compute) small. The token cap keeps each batch's
    activations in the CPU caches: measured on all-MiniLM-L6-v2, 2 threads, ~222-token chunks one
    per batch ran 1.25x faster in fp32 than 32 per batch and as fast in int8, and short texts lost
    nothing. It also makes a long text's vector independent of its neighbours: int8's dynamic
    activation scale is taken over the whole batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # Sorted ascending, so this text sets the batch's padded width.
        if current and (len(current) >= batch_size or (len(current) + 1) * lengths[index] > batch_tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str, normalize: bool) -> np.ndarray:
    """Pool token vectors as sentence-transformers does (mean over real tokens, or CLS)."""
    if mode == "cls":
        vectors = hidden[:, 0]
    else:
        weights = mask[..., None].astype(np.float32)
        vectors = (hidden * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
    if normalize:
        vectors = vectors / np.clip(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12, None)
    return vectors


def default_embedder(settings: Settings) -> Embedder:
    """The embedding model of the settings (PGPT_EMBEDDER, else the default), on their provider and threads."""
    name = settings.embedder or DEFAULT_EMBEDDER
    try:
        info = find_model(settings, name)
    except ModelNotFoundError as missing:
        if name != DEFAULT_EMBEDDER:  # say which setting named it, as for PGPT_MODEL
            raise ModelNotFoundError(f"{settings.named('PGPT_EMBEDDER')} names a model that is not exported. "
                                     f"{missing}", hint=missing.hint) from None
        # never prepared (a fresh PGPT_MODEL_CACHE), or deleted on F3 or by hand: it ships with pgpt; "again"
        # read oddly on a first ingest (t67)
        raise ModelNotFoundError(f"The embedding model {name} is not exported in {settings.models_where()}, and "
                                 "documents cannot be indexed or searched without it.",
                                 hint="If your models are in another folder, set PGPT_MODEL_CACHE to it (a cron job "
                                      "does not read your shell's profile); else prepare it with `pgpt-export "
                                      "--default` (it ships with pgpt).") from missing
    return Embedder(info, provider=settings.provider, threads=settings.threads)
