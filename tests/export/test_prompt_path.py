"""How prompts are read: chunked prompts, the int8 prefill graph of small int8 exports, and
decode graphs whose size follows their bits."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pgpt.export.pipeline import ExportOptions, export_model
from pgpt.export.quality import QUALITY_TEXT
from pgpt.runtime.llm import generation
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.models import ModelInfo, find_model
from support import gguf_path


@pytest.fixture(scope="module")
def fp32_model(default_models) -> LanguageModel:  # type: ignore[no-untyped-def]
    return LanguageModel(find_model(default_models, "smollm2-135m-instruct-fp32"), provider="cpu")


@pytest.fixture(scope="module")
def int4_export(tmp_path_factory: pytest.TempPathFactory) -> ModelInfo:
    """The default model in int4 with one graph (--prefill none), as models over 500M parameters are."""
    return export_model(ExportOptions(source=str(gguf_path()), output=tmp_path_factory.mktemp("int4") / "int4",
                                      dtype="int4", prefill="none"))


@pytest.fixture(scope="module")
def int8_model(default_models) -> LanguageModel:  # type: ignore[no-untyped-def]
    return LanguageModel(find_model(default_models, "smollm2-135m-instruct-int8"), provider="cpu")


def test_chunked_prompt_equals_one_pass(fp32_model: LanguageModel, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = fp32_model.tokenize(QUALITY_TEXT.read_text(encoding="utf-8"))[:600]  # three chunks of 256
    chunked = fp32_model.forward_logits(ids)
    monkeypatch.setattr(generation, "PREFILL_CHUNK", 4096)
    whole = fp32_model.forward_logits(ids)
    assert chunked.shape == whole.shape == (600, whole.shape[1])
    np.testing.assert_allclose(chunked, whole, atol=2e-3)


def _file_bytes(info: ModelInfo, prefix: str = "") -> int:
    return sum(f["size"] for f in info.manifest["files"] if f["path"].startswith(prefix))


def _table_weights(info: ModelInfo) -> int:
    """Weights of the embedding (which the tied lm_head reads)."""
    config = json.loads((info.path / "config.json").read_text())
    return int(config["vocab_size"]) * int(config["hidden_size"])


# Bytes per weight of the decode graph: the layers' blocks (int4: 4-bit codes, an fp32 scale and an
# fp32 offset per 32 weights = 0.75), and the embedding, kept at 8 bits (1.125 with its scales) in
# int4 too: re-rounded to 4 bits it took the default model's top-1 agreement from 96.8% to 83.2%.
@pytest.mark.parametrize("dtype, layer_bytes, table_bytes", [("int8", 1.3, 1.3), ("int4", 0.75, 1.125)])
def test_a_decode_graph_is_one_file_pair_whose_size_follows_its_bits(default_models, int4_export: ModelInfo,  # type: ignore[no-untyped-def]
                                                                     dtype: str, layer_bytes: float,
                                                                     table_bytes: float) -> None:
    """Before: int8 686 MB and int4 658 MB in all, against 657 MB for fp32: the decode graphs kept
    fp32 embeddings beside the quantized weights. The rotary tables add 2 MB, and lm_head's own
    copy of the table's scales 3.5 MB (GatherBlockQuantized wants them 3-D, MatMulNBits 2-D)."""
    info = int4_export if dtype == "int4" else find_model(default_models, f"smollm2-135m-instruct-{dtype}")
    assert info is not None
    assert {f["path"] for f in info.manifest["files"]} >= {"model.onnx", "model.onnx.data", "tokenizer.json"}
    parameters, table = info.manifest["parameters"], _table_weights(info)
    assert parameters == 134_515_008
    assert _file_bytes(info, "model.onnx") <= layer_bytes * (parameters - table) + table_bytes * table + 8_000_000


def test_int8_export_ships_a_prefill_graph_that_passed_the_check(int8_model: LanguageModel) -> None:
    """With its prefill graph the default int8 export is 316 MB (576 MB while the prefill graph held
    the tied embedding table twice in fp32, 385 MB while down_proj was fp32): its embedding and
    lm_head read 8-bit blocks, as the decode graph's do; down_proj is int8 with one scale per token,
    and only its widest input channels stay fp32."""
    import onnx
    from onnx import TensorProto

    manifest = int8_model.info.manifest
    assert manifest["prefill"]["file"] == "prefill.onnx" and "prefill.onnx" in {f["path"] for f in manifest["files"]}
    measured = manifest["quality"]["prefill"]
    assert measured["top1_agreement"] >= 0.9 and 0.9 < measured["perplexity_ratio"] < 1.1
    assert int8_model.has_prefill_graph
    assert _file_bytes(int8_model.info) < 330_000_000
    graph = onnx.load(str(int8_model.info.path / "prefill.onnx"), load_external_data=False).graph
    ops = {node.name: node.op_type for node in graph.node}
    assert ops["layers.0.down_proj_int8"] == "MatMulInteger" and ops["layers.0.down_outliers.down"] == "MatMul"
    assert ops["embed"] == "GatherBlockQuantized" and ops["lm_head"] == "MatMulNBits"
    assert {"DynamicQuantizeMatMul", "MatMulIntegerToFloat"} & set(ops.values()) or \
        {"MatMulInteger", "DynamicQuantizeLinear"} <= set(ops.values())
    fp32_bytes = {t.name: int(np.prod(t.dims)) * 4 for t in graph.initializer if t.data_type == TensorProto.FLOAT}
    # the outlier channels' gate and up (0.3 MB a layer) are the largest fp32 weights left (beside the
    # table's block scales, 3.5 MB); down_proj was 3.5 MB a layer, the table 113 MB
    weights = {name: size for name, size in fp32_bytes.items() if name.endswith(".weight")}
    assert max(weights.values()) < 400_000, max(weights, key=weights.__getitem__)
    assert max(fp32_bytes.values()) < 4_000_000, max(fp32_bytes, key=fp32_bytes.__getitem__)
    assert manifest["prefill"]["weights"]["lm_head"] == "MatMulNBits over the embedding's blocks (tied)"
    modes = {p.name: p.stat().st_mode & 0o777 for p in int8_model.info.path.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1, modes  # onnx wrote prefill.onnx.data 0600, the rest 0644


def test_decode_graph_reads_the_cache_the_prefill_graph_wrote(int8_model: LanguageModel) -> None:
    """The answer after an int8-prefilled prompt agrees with the one after a main-graph prompt."""
    prompt = int8_model.tokenize(int8_model.render_prompt([{"role": "user",
                                                            "content": "Give me three tips for sleeping well."}]))
    answer = list(int8_model.generate(prompt, SamplingOptions(max_new_tokens=32, ignore_eos=True)))
    sequence = prompt + answer
    hybrid = int8_model.forward_logits(sequence, len(prompt)).argmax(-1)[len(prompt):]
    main_only = int8_model.forward_logits(sequence, len(prompt), prefill_graph=False).argmax(-1)[len(prompt):]
    assert hybrid.tolist()[:-1] == answer[1:]  # generation follows the same path as forward_logits
    # A cache the decode graph misreads (V scaled by the smoothing, say) gives noise, near 0%;
    # the int8 prefill itself moves a few of 32 next-token choices (the manifest measures it).
    assert float((hybrid == main_only).mean()) >= 0.75


def test_an_export_without_a_prefill_graph_answers_on_its_decode_graph(int4_export: ModelInfo) -> None:
    """Models over 500M parameters (and --prefill none) have no prefill.onnx: chat, ask and the
    server's scheduler read prompts with the decode graph (``prefill_session`` is None)."""
    model = LanguageModel(int4_export, provider="cpu")
    assert "prefill" not in int4_export.manifest and model.prefill_session is None
    prompt = model.tokenize(model.render_prompt([{"role": "user", "content": "What is the capital of France?"}]))
    answer = list(model.generate(prompt, SamplingOptions(max_new_tokens=8, ignore_eos=True)))
    greedy = model.forward_logits(prompt + answer, len(prompt)).argmax(-1)[len(prompt) - 1:]
    assert len(answer) == 8 and greedy.tolist()[:-1] == answer


def test_prefill_graph_only_for_small_quantized_fused_cpu_exports() -> None:
    from pgpt.export.decoder_spec import DecoderSpec
    from pgpt.export.prefill_graph import wanted

    small = DecoderSpec("llama", 30, 576, 9, 3, 64, 1536, 49152, 1e-5, 8192, True, False, False, False, 0.0,
                        "silu", 1.0, 0.125, (0,) * 30)
    large = dataclasses.replace(small, layers=28, hidden=1536, intermediate=8960, vocab=151936)

    def wants(dtype: str, spec: DecoderSpec = small, graph: str = "fused", **options: str) -> bool:
        return wanted(ExportOptions(source="x", dtype=dtype, **options), graph, spec)

    assert wants("int8") and wants("int4")
    assert not wants("fp32") and not wants("fp16") and not wants("int8", graph="optimum")
    assert not wants("int8", prefill="none") and not wants("int8", device="cuda")
    assert not wants("int8", large)  # 1.5B: the prefill graph would hold the whole model in fp32
    assert not wants("int8", dataclasses.replace(small, sandwich_norms=True))  # Gemma 3


def test_a_prefill_graph_below_the_threshold_is_dropped_not_the_export(tmp_path: Path) -> None:
    from pgpt.export.prefill_graph import keep_if_good

    (tmp_path / "prefill.onnx").write_bytes(b"graph")
    manifest = {"prefill": {"file": "prefill.onnx"},
                "quality": {"top1_agreement": 0.97, "prefill": {"top1_agreement": 0.8, "perplexity_ratio": 1.3}}}
    lines: list[str] = []
    keep_if_good(manifest, tmp_path, ExportOptions(source="x", dtype="int8"), lambda stage, line: lines.append(line))
    assert "prefill" not in manifest and manifest["quality"]["prefill"]["dropped"]
    assert not (tmp_path / "prefill.onnx").exists() and "prefill graph dropped" in lines[0]


LOADED_RSS = """
import json, sys, resource
from pathlib import Path
from pgpt.runtime.models import ModelInfo
from pgpt.runtime.manifest import read_manifest
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.sampling import SamplingOptions
folder = Path(sys.argv[1])
model = LanguageModel(ModelInfo(folder.name, folder, read_manifest(folder)), provider="cpu")
ids = model.tokenize(model.render_prompt([{"role": "user", "content": "Name three colours."}]))
list(model.generate(ids, SamplingOptions(max_new_tokens=32, ignore_eos=True)))
status = open("/proc/self/status").read()
print(json.dumps({key: int(line.split()[1]) * 1024 for line in status.splitlines()
                  for key in ("VmRSS", "VmHWM") if line.startswith(key + ":")}))
"""


@pytest.mark.slow
def test_a_loaded_int4_export_takes_about_twice_its_files_in_memory(int4_export: ModelInfo) -> None:
    """Measured (2026-12-02): Python with numpy, ONNX Runtime and the tokenizer 55 MB, loaded 277 MB,
    after 32 tokens 288 MB, for 118 MB of files: ONNX Runtime holds the repacked MatMulNBits weights
    (with their block sums for int8 compute) and the tied embedding table both as GatherBlockQuantized
    reads it and as lm_head's packed copy. Issue 19's target (0.75 bytes per weight plus ~100 MB,
    about 200 MB here) is not met yet; this guards against losing what is there (main's int8 export
    with its fp32-weight prefill graph loaded at over 600 MB)."""
    result = subprocess.run([sys.executable, "-c", LOADED_RSS, str(int4_export.path)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rss = json.loads(result.stdout.strip().splitlines()[-1])
    assert rss["VmHWM"] <= 2 * _file_bytes(int4_export) + 100_000_000
