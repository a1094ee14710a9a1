"""The fused graph (GroupQueryAttention) against Optimum's graph and the architectures it refuses."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from pgpt.export.causal_lm import choose_graph
from pgpt.export.fused_graph import supports
from pgpt.runtime.errors import UnsupportedModelError
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.models import find_model
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from support import gguf_path


def _config(**overrides: object) -> SimpleNamespace:
    base = {"model_type": "llama", "rope_scaling": None, "hidden_act": "silu", "mlp_bias": False,
            "attention_bias": False}
    return SimpleNamespace(**{**base, **overrides})


def test_llama_family_gets_the_fused_graph_and_others_fall_back_to_optimum() -> None:
    assert choose_graph(_config(), "auto") == "fused"
    assert choose_graph(_config(model_type="qwen2", attention_bias=True), "auto") == "fused"
    assert choose_graph(_config(model_type="phi3"), "auto") == "optimum"
    assert choose_graph(_config(), "optimum") == "optimum"
    ok, why = supports(_config(rope_scaling={"rope_type": "dynamic", "factor": 2.0}))
    assert not ok and "rope scaling" in why


def test_asking_for_the_fused_graph_of_an_unsupported_model_is_a_clear_error() -> None:
    with pytest.raises(UnsupportedModelError, match="--graph fused cannot write this model") as err:
        choose_graph(_config(model_type="gpt2", hidden_act="gelu_new"), "fused")
    assert "--graph optimum" in (err.value.hint or "")


def test_default_export_is_fused_with_the_contrib_operators(default_models: Settings) -> None:
    import onnx

    info = find_model(default_models, "smollm2-135m-instruct-fp32")
    assert info is not None and info.manifest["graph"] == "fused"
    graph = onnx.load(str(info.path / "model.onnx"), load_external_data=False).graph
    ops = {node.op_type for node in graph.node}
    assert {"GroupQueryAttention", "SkipSimplifiedLayerNormalization", "QuickGelu"} <= ops
    assert "Softmax" not in ops  # attention is the fused operator, not spelled out


@pytest.fixture(scope="module")
def optimum_graph(default_models: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LanguageModel]:
    """The same model through Optimum's exporter (the fallback for other architectures); its
    540 MB go when the module ends, not with the session."""
    from pgpt.export.pipeline import ExportOptions, export_model

    out: Path = tmp_path_factory.mktemp("optimum") / "smollm2-optimum"
    info = export_model(ExportOptions(source=str(gguf_path()), output=out, graph="optimum"))
    assert info.manifest["graph"] == "optimum" and info.manifest["quality"]["top1_agreement"] >= 0.99
    yield LanguageModel(info, provider="cpu")
    shutil.rmtree(out.parent, ignore_errors=True)


def test_both_graphs_generate_the_same_tokens(default_models: Settings, optimum_graph: LanguageModel) -> None:
    fused = LanguageModel(find_model(default_models, "smollm2-135m-instruct-fp32"), provider="cpu")
    ids = fused.tokenize(fused.render_prompt([{"role": "user", "content": "Name three colours."}]))
    options = SamplingOptions(max_new_tokens=24, ignore_eos=True)
    assert list(fused.generate(ids, options)) == list(optimum_graph.generate(ids, options))
