"""GGUF blocks decoded into integer grids, each type against the gguf package's own dequantization."""

from __future__ import annotations

import numpy as np
import pytest

from pgpt.bench.synthetic_gguf import random_blocks
from pgpt.export.gguf_quants import GRID_LAYOUTS, GRID_TYPES, decode_grid
from pgpt.export.linear_weights import blocks_from_grid, narrowed, plan


@pytest.mark.parametrize("type_name", GRID_TYPES)
def test_each_block_type_decodes_as_gguf_dequantizes_it(type_name: str) -> None:
    import gguf

    rng = np.random.default_rng(3)
    raw = random_blocks(type_name, 6, 512, rng)
    expected = gguf.quants.dequantize(raw, gguf.GGMLQuantizationType[type_name])
    grid = decode_grid(raw, type_name, 512)
    bits, block, symmetric = GRID_LAYOUTS[type_name]
    assert (grid.bits, grid.block, grid.zero is not None) == (bits, block, symmetric)
    assert grid.codes.shape == (6, 512) and grid.codes.max() <= 2 ** bits - 1
    np.testing.assert_array_equal(grid.dequantize(), expected)


def test_large_tensors_are_decoded_in_passes_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    from pgpt.export import gguf_quants

    raw = random_blocks("Q4_K", 40, 1024, np.random.default_rng(4))
    whole = decode_grid(raw, "Q4_K", 1024)
    monkeypatch.setattr(gguf_quants, "_ROWS_PER_PASS", 7)
    parts = decode_grid(raw, "Q4_K", 1024)
    for name in ("codes", "scale", "low"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(whole, name))


@pytest.mark.parametrize("accuracy_level, tolerance", [(0, 1e-5), (4, 2e-2)])
@pytest.mark.parametrize("type_name", ["Q4_0", "Q4_1", "Q4_K", "Q3_K", "Q2_K", "Q8_0", "Q5_0"])
def test_kept_grids_compute_the_same_products_in_onnx_runtime(type_name: str, accuracy_level: int,
                                                              tolerance: float) -> None:
    """A kept grid as MatMulNBits (+ the offset MatMul for affine types) gives x @ W.T of the GGUF
    weights to float rounding in fp32 arithmetic (accuracy level 0), and within int8 activation
    rounding at the level the export uses (4)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    raw = random_blocks(type_name, 24, 512, rng)
    grid = decode_grid(raw, type_name, 512)
    keep, bits, _ = plan(type_name, "int4" if grid.bits <= 4 else "int8", "linear")
    assert keep
    blocks = blocks_from_grid(grid, bits, type_name.lower())
    n, k = blocks.shape
    nodes = [helper.make_node("MatMulNBits", ["x", "w", "s"], ["y0"], domain="com.microsoft", K=k, N=n, bits=bits,
                              block_size=blocks.block, accuracy_level=accuracy_level)]
    inits = [numpy_helper.from_array(blocks.data, "w"), numpy_helper.from_array(blocks.scale, "s")]
    if blocks.offset is not None:
        inits += [numpy_helper.from_array(np.array([0, 0, k // blocks.block, blocks.block]), "shape"),
                  numpy_helper.from_array(np.array([-1]), "axes"),
                  numpy_helper.from_array(np.ascontiguousarray(blocks.offset.T), "o")]
        nodes += [helper.make_node("Reshape", ["x", "shape"], ["xb"]),
                  helper.make_node("ReduceSum", ["xb", "axes"], ["sums"], keepdims=0),
                  helper.make_node("MatMul", ["sums", "o"], ["extra"]),
                  helper.make_node("Add", ["y0", "extra"], ["y"])]
    else:
        nodes.append(helper.make_node("Identity", ["y0"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17),
                                                                   helper.make_opsetid("com.microsoft", 1)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = rng.normal(size=(1, 3, k)).astype(np.float32)
    expected = x @ grid.dequantize().T
    got = session.run(None, {"x": x})[0]
    assert np.abs(got - expected).max() <= tolerance * np.abs(expected).max()


def test_int4_tables_follow_their_source_bits() -> None:
    """In int4 an embedding or lm_head that the GGUF already rounded to 5-6 bits goes to 4 bits (the
    lm_head MatMul reads half the bytes); an 8-bit or float table keeps 8 bits, exactly where it can."""
    assert plan("Q6_K", "int4", "table") == (False, 4, 32)
    assert plan("Q5_0", "int4", "table") == (False, 4, 32)
    assert plan("Q4_K", "int4", "table") == (True, 4, 32)
    assert plan("Q8_0", "int4", "table") == (True, 8, 32)
    assert plan("F16", "int4", "table") == (False, 8, 32)
    assert plan("F32", "int4", "table") == (False, 8, 32)
    assert plan("Q6_K", "int8", "table") == (False, 8, 32)


def test_int4_wide_keeps_5_to_8_bit_grids_at_8_bits() -> None:
    """The int4 export's second try (``wide``, after a failed quality check): a 5-8-bit GGUF grid
    keeps 8 bits, exactly where MatMulNBits can express it; 4-bit grids and float weights do not change."""
    assert plan("Q5_0", "int4", "linear") == (False, 4, 32) and narrowed("Q5_0", "int4", "linear")
    assert plan("Q5_0", "int4", "linear", wide=True) == (True, 8, 32)
    assert plan("Q8_0", "int4", "linear", wide=True) == (True, 8, 32)
    assert plan("Q6_K", "int4", "linear", wide=True) == (False, 8, 32)  # blocks of 16 with mins: re-rounded
    assert plan("Q6_K", "int4", "table", wide=True) == (False, 8, 32)
    assert plan("Q4_K", "int4", "linear", wide=True) == (True, 4, 32)
    assert plan("F32", "int4", "linear", wide=True) == (False, 4, 32) and not narrowed("F32", "int4", "linear")
    assert not narrowed("Q4_K", "int4", "linear") and not narrowed("Q8_0", "int4", "table")
