"""The export's faster parts give the same results: GGUF parsed once over a plain mmap, numpy int8 MatMuls."""

from __future__ import annotations

import numpy as np
import pytest

from support import gguf_path


def test_gguf_file_is_parsed_once_and_loads_the_same_weights_and_vocabulary(torch_llm, default_models,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import gguf
    import torch

    from pgpt.export.causal_lm import load_model_and_tokenizer
    from pgpt.export.sources import gguf_source
    from pgpt.runtime.models import DEFAULT_LLM
    from pgpt.runtime.llm.text import load_tokenizer

    source = gguf_source(gguf_path())
    parsed: list[str] = []

    class CountingReader(gguf.GGUFReader):  # type: ignore[misc]
        def __init__(self, path, mode="r"):  # type: ignore[no-untyped-def]
            parsed.append(str(path))
            super().__init__(path, mode)

    monkeypatch.setattr(gguf, "GGUFReader", CountingReader)
    model, tokenizer = load_model_and_tokenizer(source, trust_remote_code=False)
    assert len(parsed) == 1  # config, weights and tokenizer share one reader (transformers made 4)
    assert gguf.GGUFReader is CountingReader  # the patch is undone
    expected = torch_llm.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    exported = load_tokenizer(default_models.model_cache / f"{DEFAULT_LLM}-int8")
    text = "Licensed under the Apache License, Version 2.0 (the \"License\"); café 東京"
    assert tokenizer.backend_tokenizer.encode(text).ids == exported.encode(text).ids


def _graph_of_two_matmuls(weights: list[np.ndarray], shared_input: bool = True):  # type: ignore[no-untyped-def]
    """x -> MatMul(W0) and MatMul(W1) (both reading x when ``shared_input``), as an ONNX model."""
    from onnx import TensorProto, helper, numpy_helper

    k = weights[0].shape[0]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", k])]
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["y0"], name="first"),
             helper.make_node("MatMul", ["x" if shared_input else "x1", "w1"], ["y1"], name="second")]
    if not shared_input:
        inputs.append(helper.make_tensor_value_info("x1", TensorProto.FLOAT, ["n", k]))
    outputs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, ["n", w.shape[1]])
               for i, w in enumerate(weights)]
    graph = helper.make_graph(nodes, "two", inputs, outputs,
                              [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _run(model, feeds):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_int8_matmuls_match_fp32_and_quantize_a_shared_input_once() -> None:
    from onnx import numpy_helper

    from pgpt.export.int8_compute import quantize_matmuls

    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(64, 48)).astype(np.float32), rng.normal(size=(64, 32)).astype(np.float32)]
    x = rng.normal(size=(20, 64)).astype(np.float32)
    model = _graph_of_two_matmuls(weights)
    expected = _run(model, {"x": x})
    assert quantize_matmuls(model) == 2
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["DynamicQuantizeLinear", "MatMulIntegerToFloat", "MatMulIntegerToFloat"]
    assert {t.name for t in model.graph.initializer} == {"w0_int8", "w0_int8_scale", "w1_int8", "w1_int8_scale"}
    codes = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w0_int8"))
    # 7-bit codes: uint8 x int8 pairs must fit vpmaddubsw's int16 on CPUs without VNNI
    assert np.abs(codes.astype(int)).max() == 64
    for got, want in zip(_run(model, {"x": x}), expected):
        # 8-bit activations, 7-bit weights: about 1-2% of the output's spread
        assert np.abs(got - want).max() < 0.03 * np.abs(want).max()


def test_kept_matmuls_stay_fp32_and_scales_are_per_column() -> None:
    from pgpt.export.int8_compute import per_column_int8, quantize_matmuls

    rng = np.random.default_rng(1)
    weights = [rng.normal(size=(16, 8)).astype(np.float32), rng.normal(size=(16, 8)).astype(np.float32)]
    weights[0][:, 3] *= 100  # one loud column must not coarsen the others
    model = _graph_of_two_matmuls(weights, shared_input=False)
    assert quantize_matmuls(model, keep_fp32=lambda name: name == "second") == 1
    assert [n.op_type for n in model.graph.node] == ["DynamicQuantizeLinear", "MatMulIntegerToFloat", "MatMul"]
    codes, scale = per_column_int8(weights[0])
    assert codes.dtype == np.int8 and scale.shape == (8,)
    assert np.abs(codes).max(axis=0).tolist() == [127] * 8
    np.testing.assert_allclose(codes * scale, weights[0], atol=float(scale.max()) / 2 + 1e-6)
