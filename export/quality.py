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


def _nll(logits: np.ndarray, ids: list[int]) -> float:
    """Mean negative log-likelihood of ``ids[1:]`` under ``logits[:-1]``.

    Only the targets' log-probabilities are formed (logsumexp minus the target's logit): a full
    float64 log-softmax over a 49k vocabulary took 1.8 s per call on 2 cores.
    """
    rows = logits[:-1].astype(np.float32)
    peak = rows.max(axis=-1)
    log_sum = peak.astype(np.float64) + np.log(np.exp(rows - peak[:, None]).sum(axis=-1, dtype=np.float64))
    targets = np.asarray(ids[1:])
    return float((log_sum - rows[np.arange(targets.size), targets]).mean())


CALIBRATION_PROMPTS = (
    "Summarize the main idea of a software licence in one paragraph.",
    "List three ways to make a program run faster on a CPU.",
)


def calibration_sequences(tokenizer: Any) -> list[list[int]]:
    """Token sequences for calibrating activation ranges, disjoint from the measured ones.

    The licence text after the measured first ``TEXT_TOKENS`` tokens, and chat prompts other
    than ``CHAT_PROMPTS``, so the quality numbers are not measured on the calibration data.
    """
    text = QUALITY_TEXT.read_text(encoding="utf-8")
    sequences = [tokenizer(text, add_special_tokens=False)["input_ids"][TEXT_TOKENS:2 * TEXT_TOKENS]]
    for prompt in CALIBRATION_PROMPTS:
        sequences.append(list(tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True)))
    return [ids for ids in sequences if ids]


def llm_quality(torch_model: Any, onnx_model: Any) -> dict[str, Any]:
    """Top-1 agreement and perplexity ratio of ``onnx_model`` against ``torch_model``.

    Args:
        torch_model: the transformers model the graph was exported from (fp32).
        onnx_model: a pgpt.runtime LanguageModel on the exported folder.

    Returns:
        ``top1_agreement`` (all positions), ``text_top1``/``chat_top1`` per part,
        ``perplexity_ratio`` (ONNX / PyTorch on the text) and the token counts; with a
        prefill graph, the same numbers for it under ``prefill``.
    """
    sequences = _reference(torch_model, onnx_model)
    quality = _compare(sequences, lambda ids, n: onnx_model.forward_logits(ids, n, prefill_graph=False))
    if onnx_model.has_prefill_graph:
        # as generation runs it: prompts through the prefill graph, answers on the main graph
        quality["prefill"] = _compare(sequences, lambda ids, n: onnx_model.forward_logits(ids, n))
    return quality


def _reference(torch_model: Any, onnx_model: Any) -> list[tuple[str, list[int], int, np.ndarray]]:
    """(part, token ids, prompt length, PyTorch logits): the licence text, greedy chat answers."""
    import torch

    text_ids = onnx_model.tokenize(QUALITY_TEXT.read_text(encoding="utf-8"))[:TEXT_TOKENS]
    sequences = [("text", text_ids, len(text_ids))]
    prompts = [onnx_model.tokenize(onnx_model.render_prompt([{"role": "user", "content": prompt}]))
               for prompt in CHAT_PROMPTS]
    sequences += [("chat", ids, len(prompt)) for prompt, ids in zip(prompts, _greedy_answers(torch_model, prompts))]
    with torch.no_grad():
        return [(part, ids, prompt_len, torch_model(torch.tensor([ids])).logits[0].float().numpy())
                for part, ids, prompt_len in sequences]


def _greedy_answers(torch_model: Any, prompts: list[list[int]]) -> list[list[int]]:
    """Each prompt followed by the model's greedy answer (up to its end token).

    One left-padded batch: three generate loops took 5 s on 2 cores, one takes under 2. The
    logits are computed afterwards per sequence, unpadded, so padding only picks the sequences.
    """
    import torch

    config = torch_model.generation_config
    ends = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    pad = config.pad_token_id if config.pad_token_id is not None else (ends[0] if ends[0] is not None else 0)
    width = max(len(ids) for ids in prompts)
    batch = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompts])
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts])
    with torch.no_grad():
        out = torch_model.generate(batch, attention_mask=mask, max_new_tokens=CONTINUATION_TOKENS,
                                   do_sample=False, pad_token_id=pad)
    answers = []
    for ids, row in zip(prompts, out[:, width:].tolist()):
        end = next((i + 1 for i, token in enumerate(row) if token in ends), len(row))
        answers.append(ids + row[:end])
    return answers


def _compare(sequences: list[tuple[str, list[int], int, np.ndarray]], logits_of: Any) -> dict[str, Any]:
    """Agreement and perplexity of ``logits_of(ids, prompt_len)`` against the reference logits."""
    agree = {"text": [0, 0], "chat": [0, 0]}
    ppl = {}
    for part, ids, prompt_len, ref in sequences:
        got = logits_of(ids, prompt_len).astype(np.float32)
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
        "text": "Apache License 2.0 (first %d tokens) + %d chat prompts" % (agree["text"][1], len(CHAT_PROMPTS)),
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
