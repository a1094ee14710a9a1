"""Small in-place ONNX graph edits shared by the weight rewrites (int8 compute, GGUF blocks)."""

from __future__ import annotations

from typing import Any


def matmul_weight(node: Any, initializers: dict[str, Any]) -> Any:
    """The fp32 2-D initializer ``node`` multiplies by, when it is such a MatMul; else None."""
    from onnx import TensorProto

    if node.op_type != "MatMul" or len(node.input) != 2:
        return None
    weight = initializers.get(node.input[1])
    if weight is None or weight.data_type != TensorProto.FLOAT or len(weight.dims) != 2:
        return None
    return weight


def replace_nodes(model: Any, nodes: list[Any], replaced_weights: set[str]) -> None:
    """Install ``nodes`` as the graph, drop the replaced weights no node reads any more, and
    declare the com.microsoft domain the rewrites' operators belong to."""
    from onnx import helper

    graph = model.graph
    del graph.node[:]
    graph.node.extend(nodes)
    still_read = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name not in replaced_weights or t.name in still_read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if replaced_weights and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))


def gemms_as_matmuls(model: Any) -> int:
    """Rewrite each ``Gemm(A, W, C)`` whose weight ``W`` is an fp32 initializer as ``MatMul(A, W') + C``
    (in place); returns how many. ONNX Runtime's MatMulNBits quantizer only sees MatMuls, and
    Optimum writes GPT-2's Conv1D linears as Gemm: left alone they stayed fp32 under an int8 label.

    ``W'`` is ``alpha * W``, transposed when ``transB``; a ``beta`` other than 1 scales C's
    initializer. A Gemm with ``transA``, or with a computed C and such a beta, is left as it is.
    """
    from onnx import TensorProto, helper

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    nodes: list[Any] = []
    made: dict[tuple[str, bool, float], str] = {}  # one new initializer per weight, though Gemms share it
    replaced: set[str] = set()
    rewritten = 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = initializers.get(node.input[1]) if node.op_type == "Gemm" and len(node.input) >= 2 else None
        bias = node.input[2] if len(node.input) > 2 else ""
        beta = float(attrs.get("beta", 1.0))
        if (weight is None or weight.data_type != TensorProto.FLOAT or len(weight.dims) != 2
                or attrs.get("transA", 0) or (bias and beta != 1.0 and bias not in initializers)):
            nodes.append(node)
            continue
        matrix = _scaled(graph, made, weight, bool(attrs.get("transB", 0)), float(attrs.get("alpha", 1.0)))
        if bias and beta != 1.0:
            bias = _scaled(graph, made, initializers[bias], False, beta)
        replaced.update(name for name in node.input[1:] if name)
        product = f"{node.output[0]}_matmul" if bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], matrix], [product], name=f"{node.name}_MatMul"))
        if bias:
            nodes.append(helper.make_node("Add", [product, bias], [node.output[0]], name=f"{node.name}_Add"))
        rewritten += 1
    replace_nodes(model, nodes, replaced)
    return rewritten


def _scaled(graph: Any, made: dict[tuple[str, bool, float], str], tensor: Any, transpose: bool,
            factor: float) -> str:
    """The name of ``tensor`` transposed and times ``factor`` (itself when neither changes it)."""
    import numpy as np
    from onnx import numpy_helper

    if not transpose and factor == 1.0:
        return str(tensor.name)
    key = (str(tensor.name), transpose, factor)
    if key not in made:
        array = numpy_helper.to_array(tensor)
        array = np.ascontiguousarray(array.T if transpose else array) * np.float32(factor)
        made[key] = f"{tensor.name}_{'t' if transpose else ''}x{factor:g}"
        graph.initializer.append(numpy_helper.from_array(array.astype(np.float32), made[key]))
    return made[key]


def fp32_matrices(model: Any, exclude: tuple[str, ...] = ()) -> int:
    """How many MatMul/Gemm nodes still multiply by an fp32 2-D initializer: weights left unquantized.

    Nodes named in ``exclude`` (the small fp32 offset MatMuls of GGUF blocks) are not counted."""
    from onnx import TensorProto

    initializers = {t.name: t for t in model.graph.initializer}
    count = 0
    for node in model.graph.node:
        if node.name in exclude:
            continue
        weight = initializers.get(node.input[1]) if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1 else None
        count += weight is not None and weight.data_type == TensorProto.FLOAT and len(weight.dims) == 2
    return count
