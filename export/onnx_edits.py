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
