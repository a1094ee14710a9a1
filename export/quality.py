"""Quality check: the exported ONNX model against its PyTorch original, teacher-forced."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
# Prompts for calibrating the prefill graph's int8 ranges, disjoint from the measured ones.
CALIBRATION_PROMPTS = (
    "Summarize the main idea of a software licence in one paragraph.",
    "List three ways to make a program run faster on a CPU.",
)



def calibration_sequences(tokenizer: Any, limit: int = 0) -> list[list[int]]:
    """Token sequences for calibrating activation ranges, disjoint from the measured ones, each of
    at most ``limit`` tokens (the model's context; 0: no limit).

    The licence text after the measured first ``TEXT_TOKENS`` tokens, and chat prompts other
    than ``CHAT_PROMPTS``, so the quality numbers are not measured on the calibration data.
    """
    text = QUALITY_TEXT.read_text(encoding="utf-8")
    sequences = [tokenizer(text, add_special_tokens=False)["input_ids"][TEXT_TOKENS:2 * TEXT_TOKENS]]
    for prompt in CALIBRATION_PROMPTS:
        if getattr(tokenizer, "chat_template", None):
            sequences.append(list(tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True)))
        else:  # a base model is prompted with plain text (apply_chat_template raised: "a bug in pgpt", t51)
            sequences.append(tokenizer(prompt)["input_ids"])
    return [ids[:limit] if limit else ids for ids in sequences if ids]

@dataclass
class Scores:
    """What the check needs of a sequence's logits: each position's top token and the
    log-probability of the token that follows (the full logits of a 150k vocabulary are 0.6 GB
    per 1,000 tokens, so they are reduced as soon as they are made)."""

    top: np.ndarray  # (L,) argmax
    next_logprob: np.ndarray  # (L - 1,) log p(ids[i + 1] | ids[: i + 1])


def scores(logits: np.ndarray, ids: list[int], rows: int = 128) -> Scores:
    """Scores of (L, vocab) logits of the tokens ``ids`` (L of them, or L + 1 when the token after
    the last position is known), ``rows`` positions at a time.

    Only the targets' log-probabilities are formed (logsumexp minus the target's logit): a full
    float64 log-softmax over a 49k vocabulary took 1.8 s per call on 2 cores.
    """
    positions = len(logits)
    targets = np.asarray(ids[1:positions + 1], dtype=np.int64)
    top = np.empty(positions, dtype=np.int64)
    logprob = np.empty(len(targets), dtype=np.float64)
    for start in range(0, positions, rows):
        chunk = np.asarray(logits[start:start + rows], dtype=np.float32)
        top[start:start + len(chunk)] = chunk.argmax(-1)
        scored = chunk[:max(0, len(targets) - start)]
        if len(scored):
            peak = scored.max(axis=-1)
            log_sum = peak.astype(np.float64) + np.log(np.exp(scored - peak[:, None]).sum(axis=-1, dtype=np.float64))
            logprob[start:start + len(scored)] = scored[np.arange(len(scored)), targets[start:start + len(scored)]] \
                - log_sum
    return Scores(top, logprob)


# Calibration text of the int8 embedder export, disjoint from what the quality checks measure.
CALIBRATION_PROMPTS = (
    "Summarize the main idea of a software licence in one paragraph.",
    "List three ways to make a program run faster on a CPU.",
)


class TorchReference:
    """Reference scores from a whole transformers model in memory (the Optimum path's small models)."""

    method = "the whole transformers model in fp32"

    def __init__(self, torch_model: Any) -> None:
        self.model = torch_model

    def scores(self, sequences: list[list[int]]) -> list[Scores]:
        """Scores of each token sequence."""
        import torch

        with torch.no_grad():
            return [scores(self.model(torch.tensor([ids])).logits[0].float().numpy(), ids) for ids in sequences]


Sequence = tuple[str, list[int], int]  # part ("text" or "chat"), token ids, prompt length


def llm_quality(reference: Any, open_model: Callable[[], Any], progress: Callable[[str], None] | None = None
                ) -> dict[str, Any]:
    """Top-1 agreement and perplexity ratio of the export against ``reference``.

    The export is opened, scored and closed before the reference runs, so the two never hold
    memory at the same time.

    Args:
        reference: gives the original's scores of token sequences (``TorchReference`` or
            ``reference.LayerwiseReference``).
        open_model: opens the export as a pgpt.runtime LanguageModel.
        progress: called with a line of text as the check goes.

    Returns:
        ``top1_agreement`` (all positions), ``text_top1``/``chat_top1`` per part,
        ``perplexity_ratio`` (ONNX / original on the text), the token counts and how the
        reference and the chat answers were made; with a prefill graph, the same numbers for it
        under ``prefill``.
    """
    say = progress or (lambda line: None)
    model = open_model()
    say("greedy answers of the export to the chat prompts")
    sequences = _sequences(model)
    say("running the test tokens through the export")
    main = [scores(model.forward_logits(ids, n, prefill_graph=False), ids) for _, ids, n in sequences]
    # as generation runs it: prompts through the prefill graph, answers on the main graph
    prefill = [scores(model.forward_logits(ids, n), ids) for _, ids, n in sequences] \
        if model.has_prefill_graph else None
    del model
    import gc

    gc.collect()  # the session's memory goes before the reference takes its own
    say("running the original as the reference")
    references = reference.scores([ids for _, ids, _ in sequences])
    quality = _compare(sequences, references, main)
    quality["reference"] = reference.method
    quality["chat_answers"] = "greedy answers of the export itself, scored token by token by both models"
    if prefill is not None:
        quality["prefill"] = _compare(sequences, references, prefill)
    return quality


def _sequences(onnx_model: Any) -> list[Sequence]:
    """The licence text, and each chat prompt with the export's greedy answer (without its end token)."""
    from pgpt.runtime.llm.sampling import SamplingOptions

    # a model of a short context (GPT-2's 512 positions, a 256-token research model) is measured on what
    # it holds: 1024 tokens ran past its position table ("a bug in pgpt") or was a "Prompt too long" (t51)
    limit = onnx_model.max_context
    text_ids = onnx_model.tokenize(QUALITY_TEXT.read_text(encoding="utf-8"))[:min(TEXT_TOKENS, limit)]
    sequences = [("text", text_ids, len(text_ids))]
    for prompt in CHAT_PROMPTS:
        ids = onnx_model.tokenize(onnx_model.render_prompt([{"role": "user", "content": prompt}]))
        room = min(CONTINUATION_TOKENS, limit - len(ids))
        if room <= 0:
            continue
        answer = list(onnx_model.generate(ids, SamplingOptions(max_new_tokens=room)))
        sequences.append(("chat", ids + answer, len(ids)))
    onnx_model.release_kv()
    return sequences


def _compare(sequences: list[Sequence], references: list[Scores], tested: list[Scores]) -> dict[str, Any]:
    """Agreement and perplexity of the tested scores against the reference scores."""
    agree = {"text": [0, 0], "chat": [0, 0]}
    ppl = {}
    for (part, ids, _), ref, got in zip(sequences, references, tested):
        agree[part][0] += int((ref.top == got.top).sum())
        agree[part][1] += len(ids)
        if part == "text":
            ppl = {"torch": float(np.exp(-ref.next_logprob.mean())), "onnx": float(np.exp(-got.next_logprob.mean()))}
    total = agree["text"][1] + agree["chat"][1]
    return {
        "top1_agreement": round((agree["text"][0] + agree["chat"][0]) / total, 4),
        "text_top1": round(agree["text"][0] / agree["text"][1], 4),
        "chat_top1": round(agree["chat"][0] / agree["chat"][1], 4) if agree["chat"][1] else None,
        "perplexity_ratio": round(ppl["onnx"] / ppl["torch"], 4),
        "perplexity_torch": round(ppl["torch"], 3),
        "perplexity_onnx": round(ppl["onnx"], 3),
        "positions": total,
        "text": "Apache License 2.0 (first %d tokens) + %d chat prompts" % (
            agree["text"][1], sum(part == "chat" for part, _, _ in sequences)),
    }


EMBED_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Licensed under the Apache License, Version 2.0.",
    "ONNX Runtime runs models on the CPU and on CUDA GPUs.",
    "Where is the nearest train station?",
)
# Passages of ~220 tokens, the size ingestion embeds: an int8 graph's worst cosine shows on long
# texts (one 2000-character passage hid a 0.989 that 256 licence chunks revealed).
EMBED_PASSAGE_CHARS = 1000


def embed_texts() -> list[str]:
    """The quality check's texts: short sentences and the whole licence in ingestion-sized passages."""
    text = QUALITY_TEXT.read_text(encoding="utf-8")
    passages = [text[i:i + EMBED_PASSAGE_CHARS] for i in range(0, len(text), EMBED_PASSAGE_CHARS)]
    return list(EMBED_SENTENCES) + [p for p in passages if len(p) > 200]


def embedding_quality(reference: Any, embedder: Any) -> dict[str, Any]:
    """Cosine similarity between the ONNX embeddings and the PyTorch reference embeddings.

    Args:
        reference: a callable mapping a list of texts to normalized numpy embeddings (PyTorch).
        embedder: a pgpt.runtime Embedder on the exported folder.
    """
    texts = embed_texts()
    ref = reference(texts)
    got = embedder.embed(texts)
    cos = (ref * got).sum(-1) / (np.linalg.norm(ref, axis=-1) * np.linalg.norm(got, axis=-1))
    return {"min_cosine": round(float(cos.min()), 5), "mean_cosine": round(float(cos.mean()), 5),
            "texts": len(texts)}
