"""Chunked prompts and the int8 prefill graph of int8 exports, on the real default model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pgpt.export.causal_lm import _keep_prefill_if_good, wants_prefill_graph
from pgpt.export.pipeline import ExportOptions
from pgpt.export.quality import QUALITY_TEXT
from pgpt.runtime.llm import generation
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.models import find_model
from pgpt.runtime.llm.sampling import SamplingOptions


@pytest.fixture(scope="module")
def int8_model(default_models) -> LanguageModel:  # type: ignore[no-untyped-def]
    return LanguageModel(find_model(default_models, "smollm2-135m-instruct-int8"), provider="cpu")


@pytest.fixture(scope="module")
def fp32_model(default_models) -> LanguageModel:  # type: ignore[no-untyped-def]
    return LanguageModel(find_model(default_models, "smollm2-135m-instruct-fp32"), provider="cpu")


def test_chunked_prompt_equals_one_pass(fp32_model: LanguageModel, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = fp32_model.tokenize(QUALITY_TEXT.read_text(encoding="utf-8"))[:600]  # three chunks of 256
    chunked = fp32_model.forward_logits(ids)
    monkeypatch.setattr(generation, "PREFILL_CHUNK", 4096)
    whole = fp32_model.forward_logits(ids)
    assert chunked.shape == whole.shape == (600, whole.shape[1])
    np.testing.assert_allclose(chunked, whole, atol=2e-3)


def test_int8_export_ships_a_prefill_graph_that_passed_the_check(int8_model: LanguageModel) -> None:
    import onnx

    manifest = int8_model.info.manifest
    assert manifest["prefill"]["file"] == "prefill.onnx" and "prefill.onnx" in {f["path"] for f in manifest["files"]}
    measured = manifest["quality"]["prefill"]
    assert measured["top1_agreement"] >= 0.9 and 0.9 < measured["perplexity_ratio"] < 1.1
    assert int8_model.has_prefill_graph
    graph = onnx.load(str(int8_model.info.path / "prefill.onnx"), load_external_data=False).graph
    ops = {node.name: node.op_type for node in graph.node}
    assert ops["layers.0.down_proj"] == "MatMul"  # kept in fp32: its input has the worst outliers
    assert {"DynamicQuantizeMatMul", "MatMulIntegerToFloat"} & set(ops.values()) or \
        {"MatMulInteger", "DynamicQuantizeLinear"} <= set(ops.values())


def test_decode_graph_reads_the_cache_the_prefill_graph_wrote(int8_model: LanguageModel) -> None:
    """The answer after an int8-prefilled prompt agrees with the one after a main-graph prompt."""
    prompt = int8_model.tokenize(int8_model.render_prompt([{"role": "user", "content": "Give me three tips for sleeping well."}]))
    answer = list(int8_model.generate(prompt, SamplingOptions(max_new_tokens=32, ignore_eos=True)))
    sequence = prompt + answer
    hybrid = int8_model.forward_logits(sequence, len(prompt)).argmax(-1)[len(prompt):]
    main_only = int8_model.forward_logits(sequence, len(prompt), prefill_graph=False).argmax(-1)[len(prompt):]
    assert hybrid.tolist()[:-1] == answer[1:]  # generation follows the same path as forward_logits
    # A cache the decode graph misreads (V scaled by the smoothing, say) gives noise, near 0%;
    # the int8 prefill itself moves a few of 32 next-token choices (the manifest measures it).
    assert float((hybrid == main_only).mean()) >= 0.75


def test_prefill_graph_only_for_quantized_fused_cpu_exports() -> None:
    def wants(dtype: str, graph: str = "fused", **options: str) -> bool:
        return wants_prefill_graph(ExportOptions(source="x", dtype=dtype, **options), graph)

    assert wants("int8") and wants("int4")
    assert not wants("fp32") and not wants("fp16") and not wants("int8", graph="optimum")
    assert not wants("int8", prefill="none") and not wants("int8", device="cuda")


def test_a_prefill_graph_below_the_threshold_is_dropped_not_the_export(tmp_path: Path) -> None:
    (tmp_path / "prefill.onnx").write_bytes(b"graph")
    manifest = {"prefill": {"file": "prefill.onnx"},
                "quality": {"top1_agreement": 0.97, "prefill": {"top1_agreement": 0.8, "perplexity_ratio": 1.3}}}
    stages: list[str] = []
    _keep_prefill_if_good(manifest, tmp_path, ExportOptions(source="x", dtype="int8"), lambda s, m: stages.append(m))
    assert "prefill" not in manifest and not (tmp_path / "prefill.onnx").exists()
    assert manifest["quality"]["prefill"]["dropped"] is True and "dropped" in stages[0]
