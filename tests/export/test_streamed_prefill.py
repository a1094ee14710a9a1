"""The prefill graph made from the decode graph's weights (--prefill int8 above 500M parameters):
exported as a user would, shared tensors stored once, prompts read as the decode graph reads
them up to int8 rounding, and made one matrix at a time."""

from __future__ import annotations

import dataclasses
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pgpt.export import prefill_graph
from pgpt.export.pipeline import ExportOptions, export_model
from pgpt.export.prefill_stream import METHOD, wanted, write_streamed_prefill
from pgpt.export.quality import QUALITY_TEXT
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.models import ModelInfo
from support import gguf_path


@pytest.fixture(scope="module")
def streamed_export(tmp_path_factory: pytest.TempPathFactory) -> ModelInfo:
    """The default model in int4 with --prefill int8, taken as a model over the calibrated graph's
    size limit. Its gate is 80%: this graph is made for larger models, and on the 135M one its
    calibrated graph (SmoothQuant, outlier channels) agrees better."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prefill_graph, "MAX_PARAMETERS", 0)
        return export_model(ExportOptions(source=str(gguf_path()), output=tmp_path_factory.mktemp("stream") / "int4",
                                          dtype="int4", prefill="int8", min_agreement=0.8))


def test_export_writes_a_checked_prefill_graph_sharing_the_decode_graphs_tensors(streamed_export: ModelInfo) -> None:
    import onnx

    manifest = streamed_export.manifest
    assert manifest["prefill"]["method"] == METHOD
    files = {f["path"]: f["size"] for f in manifest["files"]}
    assert {"prefill.onnx", "prefill.onnx.data", "model.onnx.data"} <= set(files)
    measured = manifest["quality"]["prefill"]
    assert measured["top1_agreement"] >= 0.8 and 0.9 < measured["perplexity_ratio"] < 1.15
    graph = onnx.load(str(streamed_export.path / "prefill.onnx"), load_external_data=False).graph
    ops = {node.name: node.op_type for node in graph.node}
    assert ops["layers.0.gate_up_proj_int8"] == "MatMulInteger" and ops["lm_head"] == "MatMulNBits"
    # down_proj's loud input channels stay on the decode graph's blocks; the rest is int8
    assert {name for name, op in ops.items() if op == "MatMulNBits"} == {"lm_head"} | {
        f"layers.{n}.down_proj" for n in range(30)}
    location = {t.name: {e.key: e.value for e in t.external_data}.get("location") for t in graph.initializer}
    # the embedding table and lm_head are read from the decode graph's file: stored once
    assert location["embed_tokens.weight_q8"] == "model.onnx.data"
    layer_weights = 30 * 576 * (960 + 576 + 2 * 1536)  # q/k/v, o, gate/up (down_proj: shared)
    assert files["prefill.onnx.data"] < 1.05 * layer_weights  # 1 byte a weight, no table, no down_proj


def test_prompts_on_the_streamed_graph_agree_with_the_decode_graph(streamed_export: ModelInfo) -> None:
    model = LanguageModel(streamed_export, provider="cpu")
    assert model.has_prefill_graph
    ids = model.tokenize(QUALITY_TEXT.read_text(encoding="utf-8"))[:300]
    streamed = model.forward_logits(ids).argmax(-1)
    decode = model.forward_logits(ids, prefill_graph=False).argmax(-1)
    # a graph that read the wrong weights (a transposed matrix, a lost offset) agrees on almost nothing
    assert float((streamed == decode).mean()) >= 0.8
    prompt = model.tokenize(model.render_prompt([{"role": "user", "content": "What is the capital of France?"}]))
    answer = list(model.generate(prompt, SamplingOptions(max_new_tokens=8, ignore_eos=True)))
    greedy = model.forward_logits(prompt + answer, len(prompt)).argmax(-1)[len(prompt) - 1:]
    assert len(answer) == 8 and greedy.tolist()[:-1] == answer  # generation reads prompts through it


def test_the_graph_is_made_one_matrix_at_a_time(streamed_export: ModelInfo, tmp_path: Path) -> None:
    """Peak memory follows the largest matrix (gate/up: 3072 x 576), not the model: the layers hold
    106M weights, 425 MB in fp32."""
    for name in ("model.onnx", "model.onnx.data"):
        shutil.copy(streamed_export.path / name, tmp_path / name)
    lines: list[str] = []
    tracemalloc.start()
    try:
        entry = write_streamed_prefill(tmp_path, lambda stage, line: lines.append(line))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    largest = 3072 * 576 * 4
    assert peak < 8 * largest, peak
    assert entry["file"] == "prefill.onnx" and (tmp_path / "prefill.onnx.data").stat().st_size > 50_000_000
    assert lines[-2].startswith("tensors 90/90"), lines  # q/k/v, o and gate/up: 3 products a layer
    original = (streamed_export.path / "prefill.onnx.data").read_bytes()
    assert np.array_equal(np.frombuffer(original, np.uint8), np.fromfile(tmp_path / "prefill.onnx.data", np.uint8))


def test_streamed_prefill_is_what_int8_asks_for_where_the_calibrated_graph_is_not() -> None:
    from pgpt.export.decoder_spec import DecoderSpec

    small = DecoderSpec("llama", 30, 576, 9, 3, 64, 1536, 49152, 1e-5, 8192, True, False, False, False, 0.0,
                        "silu", 1.0, 0.125, (0,) * 30)
    large = dataclasses.replace(small, layers=28, hidden=1536, intermediate=8960, vocab=151936)

    def both(spec: DecoderSpec, **options: str) -> tuple[bool, bool]:
        chosen = ExportOptions(source="x", **{"dtype": "int4", **options})
        return prefill_graph.wanted(chosen, "fused", spec), wanted(chosen, "fused", spec)

    assert both(small) == both(small, prefill="int8") == (True, False)
    assert both(large) == (False, False)  # auto: memory follows the bits
    assert both(large, prefill="int8") == (False, True)
    assert both(dataclasses.replace(small, sandwich_norms=True), prefill="int8") == (False, True)  # Gemma 3
    assert both(large, prefill="none") == both(large, prefill="int8", dtype="fp32") == (False, False)
    assert both(large, prefill="int8", device="cuda") == (False, False)


def test_gemma3_gets_a_streamed_prefill_graph_with_int8(tmp_path: Path) -> None:
    """Gemma 3's norms after each block keep it from the calibrated (smoothed) graph; the streamed
    one changes only the products, so its sliding-window layers and sandwich norms stay as they are."""
    from pgpt.bench.synthetic_gguf import GGUFModel, train_vocabulary, write_gguf

    spec = GGUFModel("gemma3", layers=6, head_dim=32, sliding_window=8, rope_base=1e6, std=0.06)
    path = write_gguf(tmp_path / "gemma.gguf", spec, train_vocabulary())
    info = export_model(ExportOptions(source=str(path), output=tmp_path / "int8", dtype="int8", prefill="int8",
                                      accept_quality_loss=True))  # random weights: the gate is not the point
    assert info.manifest["prefill"]["method"] == METHOD
    model = LanguageModel(info, provider="cpu")
    ids = np.random.default_rng(1).integers(0, 500, 40).tolist()  # past the 8-token window
    streamed, decode = model.forward_logits(ids), model.forward_logits(ids, prefill_graph=False)
    assert np.abs(decode).max() > 1.0
    assert np.abs(streamed - decode).max() < 0.05 * np.abs(decode).max()  # measured 0.016
    assert float((streamed.argmax(-1) == decode.argmax(-1)).mean()) >= 0.9
