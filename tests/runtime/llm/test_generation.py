"""The runtime on the real default model: parity with PyTorch, KV cache, limits, providers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pgpt.runtime.llm import session
from pgpt.runtime.errors import Cancelled, ContextLengthError, ProviderError
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.models import find_model
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.llm.session import (attention_needs_cpu, choose_provider, cpu_summary, cuda_unavailable_reason,
                                      describe_cpu)

PROMPTS = (
    "What is the capital of France?",
    "Give me three tips for staying healthy.",
    "Write a haiku about the sea.",
)


@pytest.fixture(scope="module")
def fp32_model(default_models) -> LanguageModel:  # type: ignore[no-untyped-def]
    return LanguageModel(find_model(default_models, "smollm2-135m-instruct-fp32"), provider="cpu")


@pytest.mark.parametrize("prompt", PROMPTS)
def test_fp32_greedy_tokens_equal_pytorch(fp32_model: LanguageModel, torch_llm, prompt: str) -> None:  # type: ignore[no-untyped-def]
    import torch

    ids = fp32_model.tokenize(fp32_model.render_prompt([{"role": "user", "content": prompt}]))
    ours = list(fp32_model.generate(ids, SamplingOptions(max_new_tokens=32)))
    with torch.no_grad():
        out = torch_llm.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=32, do_sample=False)
    theirs = out[0, len(ids):].tolist()
    if theirs[-1] in fp32_model.eos_ids:  # we stop at EOS without yielding it
        theirs = theirs[:-1]
    assert ours == theirs and len(ours) >= 5


def test_manifest_quality_within_thresholds(default_models) -> None:  # type: ignore[no-untyped-def]
    for dtype, floor in (("fp32", 0.99), ("int8", 0.9)):
        manifest = find_model(default_models, f"smollm2-135m-instruct-{dtype}").manifest
        quality = manifest["quality"]
        assert quality["top1_agreement"] >= floor
        assert 0.9 < quality["perplexity_ratio"] < 1.1
        assert manifest["task"] == "text-generation-with-past" and manifest["opset"] >= 14
        assert manifest["source"]["type"] == "gguf" and len(manifest["source"]["sha256"]) == 64
        assert {"path", "size", "sha256"} <= set(manifest["files"][0])
        assert {f["path"] for f in manifest["files"]} >= {"model.onnx", "tokenizer.json", "chat_template.jinja",
                                                          "generation_config.json"}
        assert manifest["export_seconds"] > 0 and "optimum-onnx" in manifest["tools"]


def test_kv_cache_matches_full_recompute(fp32_model: LanguageModel) -> None:
    ids = fp32_model.tokenize(fp32_model.render_prompt([{"role": "user", "content": PROMPTS[1]}]))
    cached = list(fp32_model.generate(ids, SamplingOptions(max_new_tokens=6, ignore_eos=True)))
    sequence = list(ids)
    for _ in range(6):
        sequence.append(int(fp32_model.forward_logits(sequence)[-1].argmax()))
    assert cached == sequence[len(ids):]


def test_context_length_is_checked(fp32_model: LanguageModel) -> None:
    with pytest.raises(ContextLengthError, match="holds 8192 tokens"):
        list(fp32_model.generate([1] * 8000, SamplingOptions(max_new_tokens=500)))


def test_cancel_stops_between_tokens(fp32_model: LanguageModel) -> None:
    cancel = threading.Event()
    produced = []
    with pytest.raises(Cancelled):
        for token in fp32_model.generate([1, 2, 3], SamplingOptions(max_new_tokens=50, ignore_eos=True), cancel):
            produced.append(token)
            if len(produced) == 3:
                cancel.set()
    assert len(produced) == 3


def test_auto_provider_falls_back_to_cpu_with_a_reason() -> None:
    reason = cuda_unavailable_reason()
    if not reason:
        pytest.skip("a usable CUDA GPU is present")
    choice = choose_provider("auto")
    assert choice.name == "cpu" and reason in choice.reason
    with pytest.raises(ProviderError, match="CUDA was requested"):
        choose_provider("cuda")


@pytest.mark.parametrize(("flags", "amx_permitted", "unit"),
                         [("fma avx2 avx512_vnni amx_tile amx_int8", True, "AMX"),
                          ("fma avx2 avx512_vnni amx_tile amx_int8", False, "AVX512-VNNI"),
                          ("avx2 avx512f avx512_vnni", True, "AVX512-VNNI"), ("avx2 avx_vnni", True, "AVX-VNNI"),
                          ("sse4_2 avx2", True, "AVX2"), ("sse4_2", True, "unknown")])
def test_benchmarks_name_the_cpus_int8_unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str,
                                            amx_permitted: bool, unit: str) -> None:
    # Whether Linux grants AMX to this process depends on the machine the test runs on.
    monkeypatch.setattr(session, "_amx_permitted", lambda: amx_permitted)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Test CPU @ 2.0GHz\nflags\t\t: {flags}\n")
    summary = cpu_summary(cpuinfo)
    assert summary["model"] == "Test CPU @ 2.0GHz" and summary["int8_unit"] == unit
    assert describe_cpu(summary).endswith(f"cores, int8 on {unit}")
    assert cpu_summary(tmp_path / "missing")["int8_unit"] == "unknown"


def test_auto_keeps_fused_exports_that_are_not_fp16_off_cuda() -> None:
    # CUDA's GroupQueryAttention has fp16/bf16 kernels only; measured on an H200 (bench/cuda/):
    # int4 on CUDA was 5x slower than fp16 alone and did not scale with clients.
    assert attention_needs_cpu("int4", "fused") and attention_needs_cpu("fp32", "fused")
    assert not attention_needs_cpu("fp16", "fused") and not attention_needs_cpu("fp32", "optimum")
