"""Tiny random-weight Llama models exported through the real pipeline: versions of one name that
load in a fraction of a second and answer differently (model lifecycle and hot-swap tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

TINY_NAME = "tiny-chat"
TINY_MODEL = f"{TINY_NAME}-fp32"  # the model cache name of its fp32 exports
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def make_tiny_llama(folder: Path, seed: int, tokenizer_from: Path) -> Path:
    """A 2-layer Llama with random weights (peaked logits, so greedy answers are stable) and the
    tokenizer and chat template of an exported model, saved as a Hugging Face folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         initializer_range=0.3, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(config).eval().save_pretrained(folder, safe_serialization=True)
    for name in _TOKENIZER_FILES:
        if (tokenizer_from / name).is_file():
            shutil.copyfile(tokenizer_from / name, folder / name)
    return folder


def make_tiny_gpt2(folder: Path, tokenizer_from: Path) -> Path:
    """A 2-layer GPT-2 with random weights: Optimum writes its Conv1D linears as Gemm, not MatMul."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=49152, n_embd=64, n_layer=2, n_head=4, n_positions=2048,
                        initializer_range=0.3, bos_token_id=1, eos_token_id=2)
    GPT2LMHeadModel(config).eval().save_pretrained(folder, safe_serialization=True)
    for name in _TOKENIZER_FILES:
        if (tokenizer_from / name).is_file():
            shutil.copyfile(tokenizer_from / name, folder / name)
    return folder


def export_tiny_version(cache: Path, work: Path, seed: int, tokenizer_from: Path, keep_versions: int = 3) -> str:
    """Export the tiny model of ``seed`` as a new version of ``tiny-chat-fp32``; returns the version."""
    from pgpt.export.pipeline import ExportOptions, export_model

    source = make_tiny_llama(work / f"tiny-seed-{seed}", seed, tokenizer_from)
    info = export_model(ExportOptions(source=str(source), model_cache=cache, dtype="fp32", name=TINY_NAME,
                                      keep_versions=keep_versions))
    shutil.rmtree(source)
    return info.version
