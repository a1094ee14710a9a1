"""Exact int4: GGUF Q4_1 / Q8_0 blocks recovered from fp32 weights and run by ONNX Runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pgpt.export.gguf_blocks import affine4_blocks, symmetric8_blocks, write_exact_blocks
from support import gguf_path

RNG = np.random.default_rng(7)


def q4_1_weight(k: int, n: int) -> np.ndarray:
    """A (K, N) weight as llama.cpp's Q4_1 dequantizes: fp16 scale and minimum, codes 0..15 spanning each block."""
    codes = RNG.integers(0, 16, (n, k // 32, 32))
    codes[..., 0], codes[..., 1] = 0, 15  # the block's minimum and maximum, as the quantizer makes them
    scale = (RNG.random((n, k // 32)) * 0.02 + 0.001).astype(np.float16).astype(np.float32)
    low = (-scale * 7.3 + RNG.normal(0, 0.003, scale.shape)).astype(np.float16).astype(np.float32)
    return (low[..., None] + scale[..., None] * codes).astype(np.float32).reshape(n, k).T.copy()


def q8_0_weight(k: int, n: int) -> np.ndarray:
    codes = RNG.integers(-127, 128, (n, k // 32, 32))
    codes[..., 0] = 127
    scale = (RNG.random((n, k // 32)) * 0.01 + 0.001).astype(np.float16).astype(np.float32)
    return (scale[..., None] * codes).astype(np.float32).reshape(n, k).T.copy()


def test_q4_1_blocks_are_recovered_exactly() -> None:
    weight = q4_1_weight(96, 40)
    codes, scale, low = affine4_blocks(weight)  # type: ignore[misc]
    rebuilt = (low[..., None] + scale[..., None] * codes).reshape(40, 96).T
    assert codes.max() == 15 and codes.min() == 0
    np.testing.assert_allclose(rebuilt, weight, rtol=0, atol=1e-6 * np.abs(weight).max())


def test_weights_off_the_grid_are_not_taken_for_blocks() -> None:
    noisy = q4_1_weight(96, 40) + RNG.normal(0, 1e-4, (96, 40)).astype(np.float32)
    assert affine4_blocks(noisy) is None
    assert symmetric8_blocks(noisy) is None
    assert affine4_blocks(q4_1_weight(96, 40)[:80]) is None  # K not a multiple of the block size
    assert affine4_blocks(q8_0_weight(64, 8)) is None  # 255 levels are not 16


def test_q8_0_blocks_are_recovered_exactly() -> None:
    weight = q8_0_weight(64, 24)
    codes, scale = symmetric8_blocks(weight)  # type: ignore[misc]
    rebuilt = (scale[..., None] * (codes.astype(np.float32) - 128)).reshape(24, 64).T
    np.testing.assert_allclose(rebuilt, weight, rtol=0, atol=1e-6 * np.abs(weight).max())


def _graph(weights: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    """x (batch, seq, K) -> one output per weight, all MatMuls reading the same input."""
    from onnx import TensorProto, helper, numpy_helper

    k = next(iter(weights.values())).shape[0]
    nodes = [helper.make_node("MatMul", ["x", name], [f"y_{name}"], name=f"mm_{name}") for name in weights]
    outputs = [helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, None) for name in weights]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", k])],
                              outputs, [numpy_helper.from_array(w, name) for name, w in weights.items()])
    return helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("accuracy_level, tolerance", [(0, 1e-5), (4, 2e-2)])
def test_rewritten_graph_computes_the_same_products(accuracy_level: int, tolerance: float) -> None:
    import onnxruntime as ort

    weights = {"q41": q4_1_weight(128, 48), "q80": q8_0_weight(128, 40), "plain": RNG.normal(size=(128, 8)).astype(np.float32)}
    model = _graph(weights)
    done = write_exact_blocks(model, accuracy_level=accuracy_level)
    assert (done.q4_1, done.q8_0) == (1, 1)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("MatMulNBits") == 2 and "mm_plain" in [node.name for node in model.graph.node]
    assert {t.name for t in model.graph.initializer}.isdisjoint({"q41", "q80"})  # fp32 copies dropped
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = RNG.normal(size=(2, 3, 128)).astype(np.float32)
    for name, out in zip(weights, session.run([f"y_{name}" for name in weights], {"x": x})):
        expected = x @ weights[name]
        assert np.abs(out - expected).max() <= tolerance * np.abs(expected).max(), name


def test_a_weight_read_by_two_matmuls_is_converted_once() -> None:
    import onnxruntime as ort
    from onnx import helper

    weight = q4_1_weight(64, 16)
    model = _graph({"tied": weight})
    model.graph.node.append(helper.make_node("MatMul", ["x", "tied"], ["y_again"], name="mm_again"))
    model.graph.output.append(helper.make_tensor_value_info("y_again", 1, None))
    done = write_exact_blocks(model, accuracy_level=0)
    names = [t.name for t in model.graph.initializer]
    assert done.q4_1 == 2 and len(names) == len(set(names))
    x = RNG.normal(size=(1, 2, 64)).astype(np.float32)
    first, again = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["y_tied", "y_again"], {"x": x})
    np.testing.assert_allclose(first, x @ weight, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(first, again)


def test_the_offset_matmuls_of_exact_blocks_are_not_counted_as_fp32_weights(tmp_path: Path) -> None:
    """int4 of Optimum's graph records weights left fp32; a Q4_1 block's small offset MatMul is none."""
    from pgpt.export.causal_lm import _convert

    model = _graph({"q41": q4_1_weight(128, 48), "plain": RNG.normal(size=(128, 64)).astype(np.float32)})
    weights = _convert(model, tmp_path / "model.onnx", "int4", lambda stage, text: None)
    assert weights["exact_blocks"] == {"q4_1": 1, "q8_0": 0} and weights["requantized"] == 1
    assert "fp32_matrices" not in weights and "helper_nodes" not in weights


def test_int4_export_of_the_gguf_keeps_its_blocks_and_quality(tmp_path: Path) -> None:
    """The default GGUF's int4 export: every linear weight its own Q4_1 blocks, lm_head its Q8_0 blocks."""
    out = tmp_path / "int4"
    result = subprocess.run([sys.executable, "-m", "pgpt.export.cli", str(gguf_path()), "--dtype", "int4", "--prefill", "none",
                             "-o", str(out)],
                            capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "210 weight matrices as their Q4_1 blocks, 1 as their Q8_0 blocks; 0 re-quantized" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"]["exact_blocks"] == {"q4_1": 210, "q8_0": 1}
    assert manifest["weights"]["requantized"] == 0
    # re-rounding these weights onto a new 4-bit grid kept 66-79%; the blocks themselves keep ~97%
    assert manifest["quality"]["top1_agreement"] >= 0.95
    assert manifest["quality"]["perplexity_ratio"] <= 1.02
