"""Random-weight models written as GGUF files with the ``gguf`` package, tensor by tensor.

For the architectures and block types no installed package ships (Gemma 3, Qwen 3, K-quants,
a Mistral-7B-shaped model): random blocks at a realistic weight scale, a small byte-level BPE
vocabulary and a chat template, in the layout llama.cpp writes (Llama's q/k rows permuted for its
rotary layout, Gemma's norms stored as ``1 + weight``). transformers loads these files as it loads
real ones, which gives the tests their PyTorch reference. Tensors are streamed to the file one at
a time, so a 7B-shaped model is written in the memory of one tensor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# type -> (weights per block, bytes per block, fp16 fields: byte offset -> multiple of d)
# The second field of the affine types (dmin) is set so that each block is centred on average.
_FP16_FIELDS = {
    "Q4_0": (32, 18, {0: 1.0}), "Q4_1": (32, 20, {0: 1.0, 2: -7.5}), "Q5_0": (32, 22, {0: 1.0}),
    "Q5_1": (32, 24, {0: 1.0, 2: -15.5}), "Q8_0": (32, 34, {0: 1.0}), "Q2_K": (256, 84, {80: 1.0, 82: 1.5}),
    "Q3_K": (256, 110, {108: 1.0}), "Q4_K": (256, 144, {0: 1.0, 2: 7.5}), "Q5_K": (256, 176, {0: 1.0, 2: 15.5}),
    "Q6_K": (256, 210, {208: 1.0}),
}
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                 "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
# Gemma's template refuses a system turn (Gemma 2's does; Gemma 3's folds it into the first user turn).
GEMMA_TEMPLATE = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
                  "supported') }}{% endif %}{% for message in messages %}{{ '<start_of_turn>' + ('model' if "
                  "message['role'] == 'assistant' else message['role']) + '\\n' + message['content'] | trim + "
                  "'<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}"
                  "{% endif %}")
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<bos>", "<start_of_turn>", "<end_of_turn>")


def random_blocks(type_name: str, rows: int, cols: int, rng: np.random.Generator, std: float = 0.02) -> np.ndarray:
    """Random ``type_name`` blocks for a (rows, cols) weight whose values have about ``std``
    spread: random codes and sub-block scales, fp16 factors rescaled to the target (rows, bytes)."""
    import gguf

    per_block, size, fields = _FP16_FIELDS[type_name]
    raw = rng.integers(0, 256, size=(rows * cols // per_block, size), dtype=np.uint8)

    def set_fields(d: float) -> None:
        for offset, multiple in fields.items():
            raw[:, offset:offset + 2] = np.full((len(raw), 1), d * multiple, np.float16).view(np.uint8)

    set_fields(1e-3)
    sample = gguf.quants.dequantize(raw[:256].reshape(-1), gguf.GGMLQuantizationType[type_name])
    set_fields(1e-3 * std / max(float(sample.std()), 1e-12))
    return raw.reshape(rows, -1)


@dataclass
class Vocabulary:
    """A byte-level BPE vocabulary: its tokens, merges and special tokens, for GGUF and tokenizer.json."""

    tokens: list[str]
    merges: list[str]
    special: dict[str, int] = field(default_factory=dict)


def train_vocabulary(size: int = 512) -> Vocabulary:
    """A small byte-level BPE trained on the Apache licence text (the export's own test text)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from pgpt.export.quality import QUALITY_TEXT

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([QUALITY_TEXT.read_text(encoding="utf-8")], trainer)
    state = tokenizer.to_str()
    import json

    model = json.loads(state)["model"]
    tokens = [token for token, _ in sorted(model["vocab"].items(), key=lambda item: item[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return Vocabulary(tokens, merges, {t: tokens.index(t) for t in SPECIAL_TOKENS})


@dataclass
class GGUFModel:
    """What a synthetic GGUF holds: architecture, shape, block types and rotary settings."""

    arch: str  # "llama", "qwen2", "qwen3", "gemma3"
    layers: int = 2
    hidden: int = 64
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 16
    intermediate: int = 128
    context: int = 2048
    rope_base: float = 10000.0
    eps: float = 1e-6
    types: dict[str, str] = field(default_factory=dict)  # tensor kind ("attn_q", "ffn_down", ...) -> block type
    default_type: str = "Q4_0"
    sliding_window: int = 0  # Gemma 3: the window of its local layers
    window_pattern: int = 0  # Gemma 3: every Nth layer is global
    tied: bool = False
    output_copy: bool = False  # untied, with an output table equal to the embedding (a tied model's file)
    seed: int = 0
    chat_template: bool = True  # False: a base model's file (no template; its tokenizer adds BOS)
    std: float = 0.02  # spread of the matrices' weights (the embedding's is 2.5x)

    def type_of(self, kind: str) -> str:
        """The block type of a tensor kind."""
        return self.types.get(kind, self.default_type)


def _tensors(model: GGUFModel, vocab: int) -> Iterator[tuple[str, tuple[int, int] | tuple[int], str]]:
    """(GGUF name, shape in rows x cols, type) of every tensor, in file order."""
    q, kv = model.heads * model.head_dim, model.kv_heads * model.head_dim
    yield "token_embd.weight", (vocab, model.hidden), model.type_of("token_embd")
    for i in range(model.layers):
        b = f"blk.{i}"
        yield f"{b}.attn_norm.weight", (model.hidden,), "F32"
        for kind, rows in (("attn_q", q), ("attn_k", kv), ("attn_v", kv)):
            yield f"{b}.{kind}.weight", (rows, model.hidden), model.type_of(kind)
            if model.arch == "qwen2":
                yield f"{b}.{kind}.bias", (rows,), "F32"
        if model.arch in ("qwen3", "gemma3"):
            yield f"{b}.attn_q_norm.weight", (model.head_dim,), "F32"
            yield f"{b}.attn_k_norm.weight", (model.head_dim,), "F32"
        yield f"{b}.attn_output.weight", (model.hidden, q), model.type_of("attn_output")
        if model.arch == "gemma3":
            yield f"{b}.post_attention_norm.weight", (model.hidden,), "F32"
        yield f"{b}.ffn_norm.weight", (model.hidden,), "F32"
        yield f"{b}.ffn_gate.weight", (model.intermediate, model.hidden), model.type_of("ffn_gate")
        yield f"{b}.ffn_up.weight", (model.intermediate, model.hidden), model.type_of("ffn_up")
        yield f"{b}.ffn_down.weight", (model.hidden, model.intermediate), model.type_of("ffn_down")
        if model.arch == "gemma3":
            yield f"{b}.post_ffw_norm.weight", (model.hidden,), "F32"
    yield "output_norm.weight", (model.hidden,), "F32"
    if not model.tied:
        yield "output.weight", (vocab, model.hidden), model.type_of("output")


def stored_bytes(model: GGUFModel, vocab: int) -> tuple[int, int]:
    """(weights, bytes of tensor data) of what ``write_gguf`` writes for ``model`` with ``vocab`` tokens."""
    import gguf

    weights = size = 0
    for _, shape, type_name in _tensors(model, vocab):
        per_block, block_bytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name]]
        weights += int(np.prod(shape))
        size += int(np.prod(shape)) // per_block * block_bytes
    return weights, size


def _values(name: str, shape: tuple[int, ...], type_name: str, model: GGUFModel,
            rng: np.random.Generator) -> np.ndarray:
    """A tensor's stored bytes (block types) or values (F32)."""
    if type_name == "F32":
        if len(shape) == 1 and "norm" in name:
            values = 1.0 + rng.normal(0, 0.1, shape)
        else:
            values = rng.normal(0, model.std, shape)
        return values.astype(np.float32)
    std = model.std * (2.5 if "token_embd" in name else 1.0)
    if type_name == "F16":
        return rng.normal(0, std, shape).astype(np.float16)
    return random_blocks(type_name, shape[0], shape[1], rng, std=std)


def write_gguf(path: Path, model: GGUFModel, vocabulary: Vocabulary) -> Path:
    """Write ``model`` with random weights to ``path``, one tensor at a time."""
    import gguf

    writer = gguf.GGUFWriter(str(path), model.arch)
    _metadata(writer, model, vocabulary)
    rng = np.random.default_rng(model.seed)
    tensors = list(_tensors(model, len(vocabulary.tokens)))
    for name, shape, type_name in tensors:
        qtype = gguf.GGMLQuantizationType[type_name]
        per_block, size = gguf.GGML_QUANT_SIZES[qtype]
        nbytes = int(np.prod(shape)) // per_block * size
        dtype = {"F32": np.float32, "F16": np.float16}.get(type_name, np.uint8)
        stored = shape if dtype is not np.uint8 else (shape[0], shape[1] // per_block * size)  # bytes per row
        writer.add_tensor_info(name, stored, np.dtype(dtype), nbytes, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    embedding = None
    for name, shape, type_name in tensors:
        values = _values(name, shape, type_name, model, rng)
        if name == "token_embd.weight":
            embedding = values
        elif name == "output.weight" and model.output_copy and type_name == model.type_of("token_embd"):
            values = embedding  # stored twice, as some tied models' files do
        writer.write_tensor_data(values)
    writer.close()
    return path


def _metadata(writer: object, model: GGUFModel, vocabulary: Vocabulary) -> None:
    w = writer  # a gguf.GGUFWriter
    w.add_name(f"synthetic-{model.arch}")  # type: ignore[attr-defined]
    w.add_block_count(model.layers)  # type: ignore[attr-defined]
    w.add_context_length(model.context)  # type: ignore[attr-defined]
    w.add_embedding_length(model.hidden)  # type: ignore[attr-defined]
    w.add_feed_forward_length(model.intermediate)  # type: ignore[attr-defined]
    w.add_head_count(model.heads)  # type: ignore[attr-defined]
    w.add_head_count_kv(model.kv_heads)  # type: ignore[attr-defined]
    w.add_key_length(model.head_dim)  # type: ignore[attr-defined]
    w.add_value_length(model.head_dim)  # type: ignore[attr-defined]
    w.add_rope_freq_base(model.rope_base)  # type: ignore[attr-defined]
    w.add_layer_norm_rms_eps(model.eps)  # type: ignore[attr-defined]
    if model.sliding_window:
        w.add_sliding_window(model.sliding_window)  # type: ignore[attr-defined]
    gemma = model.arch == "gemma3"
    # Gemma's GGUFs carry a SentencePiece vocabulary (scores, no merges); the others byte-level BPE.
    w.add_tokenizer_model("llama" if gemma else "gpt2")  # type: ignore[attr-defined]
    w.add_tokenizer_pre("default")  # type: ignore[attr-defined]
    w.add_token_list(vocabulary.tokens)  # type: ignore[attr-defined]
    types = [3 if token in vocabulary.special else 1 for token in vocabulary.tokens]  # CONTROL / NORMAL
    w.add_token_types(types)  # type: ignore[attr-defined]
    if gemma:
        w.add_token_scores([-float(i) for i in range(len(vocabulary.tokens))])  # type: ignore[attr-defined]
        w.add_unk_token_id(0)  # type: ignore[attr-defined]
    else:
        w.add_token_merges(vocabulary.merges)  # type: ignore[attr-defined]
    w.add_bos_token_id(vocabulary.special["<bos>" if gemma else "<|endoftext|>"])  # type: ignore[attr-defined]
    w.add_eos_token_id(vocabulary.special["<end_of_turn>" if gemma else "<|im_end|>"])  # type: ignore[attr-defined]
    w.add_add_bos_token(not model.chat_template)  # type: ignore[attr-defined]
    if model.chat_template:
        w.add_chat_template(GEMMA_TEMPLATE if gemma else CHAT_TEMPLATE)  # type: ignore[attr-defined]
