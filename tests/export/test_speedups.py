"""The export's faster parts give the same results: GGUF parsed once over a plain mmap, numpy int8 MatMuls."""

from __future__ import annotations

import numpy as np
import pytest

from support import gguf_path


def test_gguf_file_is_parsed_once_and_loads_the_same_weights_and_vocabulary(torch_llm, default_models,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import gguf
    import torch

    from pgpt.export.model_loading import load_model_and_tokenizer
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


def _one_matmul(weight: np.ndarray):  # type: ignore[no-untyped-def]
    """x (batch, tokens, K) -> MatMul(W), as an ONNX model."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="layers.0.down_proj")], "one",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "n", weight.shape[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "n", weight.shape[1]])],
                              [numpy_helper.from_array(weight, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def test_per_row_activations_keep_a_loud_token_from_coarsening_the_others() -> None:
    """A down_proj input's first token can be 100x louder than the rest: with one scale per tensor
    it rounds every other token to a few levels; with one scale per token each keeps 8 bits."""
    from pgpt.export.int8_compute import quantize_matmuls

    rng = np.random.default_rng(2)
    weight = rng.normal(size=(96, 40)).astype(np.float32)
    x = rng.normal(size=(2, 7, 96)).astype(np.float32)
    x[0, 0] *= 300  # the loud token
    expected = x @ weight
    errors = {}
    for rows in (False, True):
        model = _one_matmul(weight)
        assert quantize_matmuls(model, per_row=lambda name: rows) == 1
        got = _run(model, {"x": x})[0]
        assert got.shape == expected.shape
        errors[rows] = np.abs(got - expected)[0, 1:].max() / np.abs(expected[0, 1:]).max()
        if rows:  # each token alone gives the same numbers: nothing depends on its neighbours
            alone = _run(model, {"x": x[1:, 3:4]})[0]
            np.testing.assert_array_equal(alone, got[1:, 3:4])
            assert "MatMulInteger" in {n.op_type for n in model.graph.node}
    assert errors[True] < 0.03 < errors[False]


def _mlp(hidden: int, inner: int, seed: int):  # type: ignore[no-untyped-def]
    """One SwiGLU MLP with the fused graph's node names (gate, up, QuickGelu, Mul, down)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = {name: rng.normal(size=shape).astype(np.float32) * 0.2 for name, shape in
         (("gate_proj", (hidden, inner)), ("up_proj", (hidden, inner)), ("down_proj", (inner, hidden)))}
    w["up_proj"][:, 5] *= 40  # an outlier channel of down_proj's input
    p = "layers.0"
    nodes = [helper.make_node("MatMul", ["x", f"{p}.gate_proj.weight"], ["gate"], name=f"{p}.gate_proj"),
             helper.make_node("MatMul", ["x", f"{p}.up_proj.weight"], ["up"], name=f"{p}.up_proj"),
             helper.make_node("QuickGelu", ["gate"], ["act"], name=f"{p}.silu", domain="com.microsoft", alpha=1.0),
             helper.make_node("Mul", ["act", "up"], [f"{p}.gate_mul/out0"], name=f"{p}.gate_mul"),
             helper.make_node("MatMul", [f"{p}.gate_mul/out0", f"{p}.down_proj.weight"], ["y"], name=f"{p}.down_proj")]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "n", hidden])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "n", hidden])],
                              [numpy_helper.from_array(v, f"{p}.{k}.weight") for k, v in w.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=9)


def test_outlier_channels_of_down_proj_move_to_an_fp32_branch_with_the_same_product() -> None:
    from onnx import numpy_helper

    from pgpt.export import prefill_graph
    from pgpt.export.int8_compute import quantize_matmuls

    hidden, inner = 32, 128
    model = _mlp(hidden, inner, 3)
    x = np.random.default_rng(4).normal(size=(1, 9, hidden)).astype(np.float32)
    expected = _run(model, {"x": x})[0]
    down_max = np.abs(np.random.default_rng(5).normal(size=inner)).astype(np.float32)
    down_max[[5, 77]] = 50.0
    prefill_graph.split_outlier_channels(model, 0, down_max)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    side = weights["layers.0.down_outliers.down.weight"]
    count = inner // 8  # at most an eighth of the channels
    assert side.shape == (count, hidden) and weights["layers.0.down_proj.weight"].shape == (inner - count, hidden)
    assert weights["layers.0.down_outliers.gate_up.weight"].shape == (hidden, 2 * count)
    original = numpy_helper.to_array(next(t for t in _mlp(hidden, inner, 3).graph.initializer
                                          if t.name == "layers.0.down_proj.weight"))
    assert any(np.array_equal(row, original[5]) for row in side) and any(np.array_equal(row, original[77]) for row in side)
    np.testing.assert_allclose(_run(model, {"x": x})[0], expected, rtol=1e-4, atol=1e-4)  # fp32: a reordered sum
    quantize_matmuls(model, keep_fp32=lambda name: "down_outliers" in name,
                     per_row=lambda name: name.endswith(".down_proj"))
    ops = {n.name: n.op_type for n in model.graph.node}
    assert ops["layers.0.down_proj_int8"] == "MatMulInteger" and ops["layers.0.down_outliers.down"] == "MatMul"
    assert ops["layers.0.gate_proj_int8"] == "MatMulIntegerToFloat"
    got = _run(model, {"x": x})[0]
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()
