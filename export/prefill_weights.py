"""The prefill graph's embedding and output projection, stored in 8-bit blocks instead of fp32.

The int8-compute prefill graph keeps the embedding table and the output projection away from
dynamic int8 activations. In fp32 those were 226 of the default model's 415 MB of prefill
weights (the tied table twice: once to gather rows, once transposed for lm_head), loaded beside
the decode graph's own 8-bit copy (issue 19: an export's size must follow its bits). Here both
read one 8-bit copy as the decode graph does: ``GatherBlockQuantized`` for the rows, and a
``MatMulNBits`` over the same blocks for the logits (one row per prompt, ``num_logits_to_keep``).
Neither is on the prompt's critical path: a 1000-token prompt's first token took as long.

``down_proj`` stays fp32. Stored as int8 (per column, behind a DequantizeLinear) or as 8-bit
MatMulNBits it saved 80 MB more but cost 13-15% of the 1000-token TTFT on 2 AVX2 cores (2.50 and
2.54 s against 2.22 s, medians of 5 in one process): the weights are widened on every chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BITS = 8


def compact(model: Any) -> dict[str, str]:
    """Rewrite, in place, the fp32 embedding and output projection of a fused prefill graph (a
    ModelProto) as 8-bit blocks; returns what became of each, for the manifest."""
    from onnx import numpy_helper

    from pgpt.export.linear_weights import requantize
    from pgpt.export.onnx_edits import replace_nodes

    weights = {t.name: t for t in model.graph.initializer}
    by_name = {node.name: node for node in model.graph.node}
    embed, head = by_name["embed"], by_name["lm_head"]
    table = numpy_helper.to_array(weights[embed.input[0]])
    blocks = requantize(table, BITS)
    new = {"embed": _embedding(embed, blocks, model.graph.initializer)}
    head_weight = numpy_helper.to_array(weights[head.input[1]])  # (hidden, vocab)
    tied = head_weight.shape == table.shape[::-1] and np.array_equal(head_weight.T, table)
    del table
    head_blocks = blocks if tied else requantize(np.ascontiguousarray(head_weight.T), BITS)
    new["lm_head"] = _output_projection(head, head_blocks, tied, model.graph.initializer)
    nodes = [n for node in model.graph.node for n in new.get(node.name, [node])]
    replace_nodes(model, nodes, {embed.input[0], head.input[1]})
    return {"embedding": f"{BITS}-bit blocks of {blocks.block} (GatherBlockQuantized)",
            "lm_head": "MatMulNBits over " + ("the embedding's blocks (tied)" if tied else f"{BITS}-bit blocks")}


def _embedding(node: Any, blocks: Any, initializers: Any) -> list[Any]:
    """GatherBlockQuantized rows of the table's blocks, reshaped to (batch, seq, hidden)."""
    from onnx import helper, numpy_helper

    hidden = blocks.shape[1]
    initializers.extend([numpy_helper.from_array(blocks.data, "embed_tokens.weight_q8"),
                         numpy_helper.from_array(blocks.scale[..., None], "embed_tokens.weight_scale3"),
                         numpy_helper.from_array(np.array([0, 0, hidden], dtype=np.int64), "embed_rows_shape")])
    return [helper.make_node("GatherBlockQuantized", ["embed_tokens.weight_q8", node.input[1], "embed_tokens.weight_scale3"],
                             ["embed/blocks"], name="embed", domain="com.microsoft",
                             gather_axis=0, quantize_axis=2, block_size=blocks.block, bits=BITS),
            helper.make_node("Reshape", ["embed/blocks", "embed_rows_shape"], list(node.output), name="embed_rows")]


def _output_projection(node: Any, blocks: Any, tied: bool, initializers: Any) -> list[Any]:
    """lm_head as MatMulNBits, over the embedding's blocks when tied (stored once)."""
    from onnx import helper, numpy_helper

    from pgpt.export.linear_weights import ACCURACY_LEVEL

    data = "embed_tokens.weight_q8" if tied else "lm_head.weight_q8"
    scale = "lm_head.weight_scale"
    initializers.append(numpy_helper.from_array(blocks.scale, scale))
    if not tied:
        initializers.append(numpy_helper.from_array(blocks.data, data))
    vocab, hidden = blocks.shape
    return [helper.make_node("MatMulNBits", [node.input[0], data, scale], list(node.output), name="lm_head",
                             domain="com.microsoft", K=hidden, N=vocab, bits=BITS, block_size=blocks.block,
                             accuracy_level=ACCURACY_LEVEL)]
