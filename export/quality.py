"""Quality check: the exported ONNX model against its PyTorch original, teacher-forced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

QUALITY_TEXT = Path(__file__).parent / "data" / "quality_text.txt"  # the Apache-2.0 licence text
TEXT_TOKENS = 1024
CHAT_PROMPTS = (
    "What is the capital of France?",
    "Explain in two sentences why the sky is blue.",
    "Write a Python function that returns the square of a number.",
)
CONTINUATION_TOKENS = 32


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _nll(logits: np.ndarray, ids: list[int]) -> float:
    logp = _log_softmax(logits[:-1])
    targets = np.asarray(ids[1:])
    return float(-logp[np.arange(targets.size), targets].mean())


def llm_quality(torch_model: Any, onnx_model: Any) -> dict[str, Any]:
    """Top-1 agreement and perplexity ratio of ``onnx_model`` against ``torch_model``.

    Args:
        torch_model: the transformers model the graph was exported from (fp32).
        onnx_model: a pgpt.runtime LanguageModel on the exported folder.

    Returns:
        ``top1_agreement`` (all positions), ``text_top1``/``chat_top1`` per part,
        ``perplexity_ratio`` (ONNX / PyTorch on the text) and the token counts.
    """
    import torch

    text_ids = onnx_model.tokenize(QUALITY_TEXT.read_text(encoding="utf-8"))[:TEXT_TOKENS]
    sequences = [("text", text_ids)]
    for prompt in CHAT_PROMPTS:
        ids = onnx_model.tokenize(onnx_model.render_prompt([{"role": "user", "content": prompt}]))
        with torch.no_grad():
            out = torch_model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                      max_new_tokens=CONTINUATION_TOKENS, do_sample=False)
        sequences.append(("chat", out[0].tolist()))
    agree = {"text": [0, 0], "chat": [0, 0]}
    ppl = {}
    for part, ids in sequences:
        with torch.no_grad():
            ref = torch_model(torch.tensor([ids])).logits[0].float().numpy()
        got = onnx_model.forward_logits(ids).astype(np.float32)
        agree[part][0] += int((ref.argmax(-1) == got.argmax(-1)).sum())
        agree[part][1] += len(ids)
        if part == "text":
            ppl = {"torch": float(np.exp(_nll(ref, ids))), "onnx": float(np.exp(_nll(got, ids)))}
    total = agree["text"][1] + agree["chat"][1]
    return {
        "top1_agreement": round((agree["text"][0] + agree["chat"][0]) / total, 4),
        "text_top1": round(agree["text"][0] / agree["text"][1], 4),
        "chat_top1": round(agree["chat"][0] / agree["chat"][1], 4),
        "perplexity_ratio": round(ppl["onnx"] / ppl["torch"], 4),
        "perplexity_torch": round(ppl["torch"], 3),
        "perplexity_onnx": round(ppl["onnx"], 3),
        "positions": total,
        "text": "Apache License 2.0 (first %d tokens) + %d chat prompts" % (len(text_ids), len(CHAT_PROMPTS)),
    }


EMBED_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Licensed under the Apache License, Version 2.0.",
    "ONNX Runtime runs models on the CPU and on CUDA GPUs.",
    "Where is the nearest train station?",
    QUALITY_TEXT.read_text(encoding="utf-8")[:2000],
)


def embedding_quality(reference: Any, embedder: Any) -> dict[str, Any]:
    """Cosine similarity between the ONNX embeddings and the PyTorch reference embeddings.

    Args:
        reference: a callable mapping a list of texts to normalized numpy embeddings (PyTorch).
        embedder: a pgpt.runtime Embedder on the exported folder.
    """
    ref = reference(list(EMBED_SENTENCES))
    got = embedder.embed(list(EMBED_SENTENCES))
    cos = (ref * got).sum(-1) / (np.linalg.norm(ref, axis=-1) * np.linalg.norm(got, axis=-1))
    return {"min_cosine": round(float(cos.min()), 5), "mean_cosine": round(float(cos.mean()), 5),
            "sentences": len(EMBED_SENTENCES)}
