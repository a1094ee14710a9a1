"""Model footprints: parameter counts from config.json, the KV buffer, the expected memory against a
measured load of the real default model, and `pgpt-tui models` showing them."""

from __future__ import annotations

import json
import subprocess
import sys

from pgpt.runtime.footprint import (
    DEFAULT_CONTEXT,
    decoder_parameters,
    encoder_parameters,
    footprint,
    human_count,
    kv_bytes_per_token,
)
from pgpt.runtime.models import DEFAULT_EMBEDDER, DEFAULT_LLM, find_model
from pgpt.runtime.settings import Settings
from support import cli_env

# Qwen2.5-1.5B-Instruct's config.json (the fields the count reads); Qwen publishes 1.54B.
QWEN_15B = {"model_type": "qwen2", "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
            "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True,
            "max_position_embeddings": 32768}


def test_parameter_counts_match_the_published_ones() -> None:
    assert decoder_parameters(QWEN_15B) == 1_543_714_304
    assert decoder_parameters({**QWEN_15B, "tie_word_embeddings": False}) == 1_543_714_304 + 151936 * 1536
    minilm = {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6, "vocab_size": 30522,
              "max_position_embeddings": 512, "type_vocab_size": 2}
    assert encoder_parameters(minilm) == 22_713_216  # all-MiniLM-L6-v2 as sentence-transformers counts it
    assert human_count(1_543_714_304) == "1.54B" and human_count(134_515_008) == "135M"


def test_kv_buffer_per_token() -> None:
    # 28 layers x keys and values x 2 KV heads x 128 dims x 4 bytes
    assert kv_bytes_per_token(QWEN_15B) == 28 * 2 * 2 * 128 * 4


def test_default_model_footprint(default_models: Settings) -> None:
    llm = footprint(find_model(default_models, f"{DEFAULT_LLM}-int8"))
    assert llm.parameters == 134_515_008  # SmolLM2-135M, embeddings tied
    assert llm.context == DEFAULT_CONTEXT and llm.kv_bytes_per_token == 30 * 2 * 3 * 64 * 4
    assert llm.weight_bytes < llm.size_bytes < llm.expected_bytes
    embedder = footprint(find_model(default_models, DEFAULT_EMBEDDER))
    assert 22e6 < embedder.parameters < 23e6 and embedder.kv_bytes_per_token == 0


def _loaded_rss_mb(settings: Settings, name: str, prompt_tokens: int) -> float:
    """Peak RSS of a fresh process that loads ``name`` and answers a ``prompt_tokens`` prompt."""
    code = f"""
import sys
from pgpt.bench.loaders import _peak_rss_mb
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.models import find_model
from pgpt.runtime.settings import Settings
model = LanguageModel(find_model(Settings.from_env(), {name!r}), provider="cpu")
list(model.generate(list(range(1000, 1000 + {prompt_tokens})), SamplingOptions(max_new_tokens=4, ignore_eos=True)))
print(_peak_rss_mb())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(settings),
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return float(result.stdout.strip())


def test_expected_memory_is_close_to_the_measured_peak(default_models: Settings) -> None:
    for name in (f"{DEFAULT_LLM}-int8", f"{DEFAULT_LLM}-fp32"):
        info = find_model(default_models, name)
        expected = footprint(info, context=512 + 4 + 256).expected_bytes / 1e6  # the buffer generate allocates
        measured = _loaded_rss_mb(default_models, name, 512)
        assert 0.8 * measured < expected < 1.25 * measured, (name, expected, measured)


def test_models_command_shows_parameters_and_memory(default_models: Settings) -> None:
    env = cli_env(default_models)
    listing = json.loads(subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "models", "--json"],
                                        capture_output=True, text=True, env=env, timeout=120).stdout)
    llm = {m["name"]: m for m in listing["models"]}[f"{DEFAULT_LLM}-int8"]
    assert llm["parameters"] == 134_515_008 and llm["context_tokens"] == DEFAULT_CONTEXT
    assert llm["expected_memory_mb"] > llm["size_mb"] > 0
    table = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "models"], capture_output=True, text=True,
                           env=env, timeout=120).stdout
    row = next(line for line in table.splitlines() if line[2:].startswith(f"{DEFAULT_LLM}-int8 "))  # "* ": active
    assert " 135M " in row and f"{llm['expected_memory_mb']:.0f}MB" in row
    assert f"KV buffer of {DEFAULT_CONTEXT} tokens" in table


def test_a_streamed_prefill_graph_counts_its_packed_copies(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--prefill int8 reads down_proj and lm_head from the decode graph's file: counted once in the
    files, but ONNX Runtime packs them again for the prefill session (measured at 1.5B: the bench's
    peak 3223 MB; files, KV and runtime alone predicted 2454 MB, with the packed copies 2918)."""
    from pgpt.runtime.models import ModelInfo

    (tmp_path / "config.json").write_text(json.dumps(QWEN_15B))
    files = [{"path": "model.onnx.data", "size": 1_297_000_000}, {"path": "prefill.onnx.data", "size": 927_000_000}]
    calibrated = {"weights": {"embedding": "8-bit blocks", "lm_head": "MatMulNBits over the embedding's blocks"}}
    streamed = {"weights": {name: "the decode graph's (shared)" for name in ("embedding", "down_proj", "lm_head")}}
    sizes = {}
    for kind, prefill in (("calibrated", calibrated), ("streamed", streamed)):
        manifest = {"kind": "llm", "dtype": "int4", "files": files, "prefill": prefill}
        sizes[kind] = footprint(ModelInfo("q", tmp_path, manifest)).expected_bytes
    packed = (28 * 1536 * 8960 + 151936 * 1536) * 0.75  # 4-bit codes, fp32 scale and block sum per 32
    assert sizes["streamed"] - sizes["calibrated"] == int(packed)
