"""Loading a causal LM for its export: the fp32 original with transformers (a GGUF file parsed once
for the model and its tokenizer), its config and its tokenizer, each failure a one-paragraph error
that names the file (a shape that does not fit the architecture, a corrupt safetensors file, a
missing or unconvertible tokenizer)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pgpt.export.pipeline import require_task
from pgpt.export.sources import ModelSource
from pgpt.runtime.errors import PgptError, SourceError, TensorShapeError, UnsupportedModelError

TASK = "text-generation-with-past"


def load_torch_model(source: ModelSource, trust_remote_code: bool) -> Any:
    """Load the original in fp32 with eager attention (its graph is ~10% faster than SDPA's)."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"attn_implementation": "eager", "dtype": torch.float32,
                              "trust_remote_code": trust_remote_code}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    else:
        kwargs["use_safetensors"] = True
    try:
        model = AutoModelForCausalLM.from_pretrained(str(source.folder), **kwargs)
    except (ValueError, KeyError) as exc:
        raise UnsupportedModelError(f"transformers cannot load this model as a causal LM ({exc}).") from None
    except RuntimeError as exc:
        error = shape_error(exc, source)
        if error is None:
            raise
        raise error from None
    except Exception as exc:
        if type(exc).__name__ != "SafetensorError":
            raise
        # an interrupted copy: "Error while deserializing header ..." was called a bug in pgpt (t51)
        raise SourceError(f"A safetensors file in {source.folder} is corrupt or truncated ({exc}).",
                          hint="Copy or download it again and compare its sha256 with the publisher's.") from None
    return model.eval()


_SIZE_MISMATCH = re.compile(r"for (\w+):\s+size mismatch for ([\w.]+): copying a param with shape "
                            r"torch\.Size\(\[([\d, ]*)\]\) from checkpoint, the shape in current model is "
                            r"torch\.Size\(\[([\d, ]*)\]\)")


def shape_error(exc: RuntimeError, source: ModelSource) -> TensorShapeError | None:
    """transformers' state_dict "size mismatch" as one paragraph naming the shapes; None for other errors.

    A mislabelled or damaged file (a falcon header over llama tensors) ended in "Unexpected error ...
    This is a bug in pgpt"."""
    found = _SIZE_MISMATCH.search(str(exc))
    if found is None:
        return None
    layer, param, got, expected = found.groups()
    return TensorShapeError(f"The tensors of {source.gguf_file or source.folder} do not fit its architecture: "
                            f"transformers expects a {layer} {param} of {_dims(expected)} and the file holds "
                            f"{_dims(got)}.")


def _dims(text: str) -> str:
    """"512, 256" as "512x256"."""
    return "x".join(part.strip() for part in text.split(",")) or "a scalar"


def load_model_and_tokenizer(source: ModelSource, trust_remote_code: bool) -> tuple[Any, Any]:
    """The fp32 original and its tokenizer; a GGUF file is parsed once for both (see gguf_loading)."""
    from pgpt.export.gguf_loading import fast_gguf_reading

    extra = {"gguf_file": source.gguf_file} if source.gguf_file else {"trust_remote_code": trust_remote_code}
    with fast_gguf_reading():
        model = load_torch_model(source, trust_remote_code)
        require_task(model.config.model_type, TASK)
        return model, build_tokenizer(source, extra)


def load_config(source: ModelSource, trust_remote_code: bool) -> Any:
    """The transformers config (from config.json, or from the GGUF header)."""
    from transformers import AutoConfig

    extra = {"gguf_file": source.gguf_file} if source.gguf_file else {"trust_remote_code": trust_remote_code}
    try:
        return AutoConfig.from_pretrained(str(source.folder), **extra)
    except (ValueError, KeyError) as exc:
        raise UnsupportedModelError(f"transformers cannot read this model's configuration ({str(exc).rstrip('.')}).",
                                    hint=_gguf_hint() if source.gguf_file else None) from None


def _gguf_hint() -> str:
    """The next step for a GGUF file transformers cannot read: the architectures it does read."""
    from pgpt.export.decoder_spec import SUPPORTED_NAMES

    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    except ImportError:
        return f"Use a GGUF file of a supported architecture such as {SUPPORTED_NAMES}."
    names = ", ".join(a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer"))
    return (f"transformers reads GGUF files of these architectures: {names}; {SUPPORTED_NAMES} get pgpt's fused "
            "graph. Use a file of a causal LM among them, or the model's Hugging Face folder.")


# The files a Hugging Face folder's tokenizer is made from (a fast one, SentencePiece, or BPE/WordPiece vocabularies).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "tekken.json")


def load_tokenizer(source: ModelSource, trust_remote_code: bool, config: Any) -> tuple[Any, Any]:
    """The tokenizer (converted by transformers from a GGUF's vocabulary) and the generation config."""
    from transformers import GenerationConfig

    extra = {"gguf_file": source.gguf_file} if source.gguf_file else {"trust_remote_code": trust_remote_code}
    if not source.gguf_file:
        require_tokenizer_files(source.folder)
    tokenizer = build_tokenizer(source, extra)
    try:
        generation = GenerationConfig.from_pretrained(str(source.folder))
    except OSError:  # GGUF files and folders without generation_config.json
        generation = GenerationConfig.from_model_config(config)
    return tokenizer, generation


def require_tokenizer_files(folder: Path) -> None:
    """Refuse a model folder without tokenizer files: transformers went on without one and failed
    inside ("'NoneType' object has no attribute 'endswith'"), which read as a bug in pgpt (t51)."""
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise SourceError(f"{folder} has no tokenizer: none of {', '.join(_TOKENIZER_FILES)}.",
                          hint="Copy the tokenizer files of the model's repository (tokenizer.json, "
                               "tokenizer_config.json) into the folder, or export the repo id itself.")


def build_tokenizer(source: ModelSource, extra: dict[str, Any]) -> Any:
    """transformers' tokenizer of ``source``; one it cannot build (a GGUF without tokenizer data, a
    vocabulary it cannot convert) is a SourceError: it was "Unexpected error: ValueError: tokens and
    scores need to be passed ... This is a bug in pgpt" (t62)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(source.folder), **extra)
    except (MemoryError, PgptError):
        raise
    except Exception as exc:  # noqa: BLE001 - transformers and tokenizers raise any type for a bad vocabulary
        where = source.folder / source.gguf_file if source.gguf_file else source.folder
        cause = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise SourceError(f"transformers cannot build a tokenizer from {where} ({cause}).",
                          hint="Export a GGUF file of the model that holds its tokenizer (llama.cpp's "
                               "convert_hf_to_gguf.py writes it), or the model's Hugging Face folder with its "
                               "tokenizer files." if source.gguf_file else
                               "Check the folder's tokenizer files against the model's repository, or export the "
                               "repo id itself.") from None
