"""An int8-compute prefill graph (SmoothQuant W8A8) beside an int8 fused export.

Why a second graph: on the CPU a 1000-token prompt is bound by matrix multiplications, and the
fp32 ones already run at the fp32 peak of the cores (measured: 0.9 s of a 1.5-1.7 s TTFT on 2
cores). Int8 dot products (AVX-512 VNNI, AVX2) do four times the work per instruction, but the
weight-only MatMulNBits of the decode graph dequantizes and is slower than fp32 for long prompts.
This graph quantizes activations too (``DynamicQuantizeMatMul``), only for the prompt.

Quality, measured on SmolLM2-135M (teacher-forced top-1 agreement with PyTorch):
- plain dynamic int8 (per-tensor activations): 59%; activation outliers ruin the scale.
- SmoothQuant (alpha 0.7) moves the outliers into the weights first: 86%.
- and keeping ``down_proj`` in fp32 (its input, SiLU(gate) x up, has the worst outliers): 95%
  (93.0% with today's check, 2026-12-03).
- ``down_proj`` in int8 as well, per tensor: 87.5%; smoothed or with its widest input channels
  in fp32 (4-64 of 1536), 87-90%; per tensor, one loud token coarsens all the others.
- ``down_proj`` with one activation scale per token and its ``OUTLIER_CHANNELS`` widest input
  channels (by calibrated max) in an fp32 side MatMul, unsmoothed: 93.3%, perplexity x1.018
  (fp32 ``down_proj``: x1.028); 16 or 128 channels: 92.1-92.5%, smoothed 92.7%.
The embedding and lm_head keep fp32 activations over 8-bit weights (``prefill_weights``).
The smoothing itself is exact: its scales fold into the RMSNorm weights before q/k/v and gate/up.

Issue 19 tried one graph per export (prompts on the decode graph's MatMulNBits, int8 compute):
in the same run on 2 cores (AMX) the default model's 1000-token TTFT was 4.24-4.89 s against
1.67-2.04 s with this graph, so it stays for small models. It is made from the whole model in
fp32 (the fused graph and the PyTorch original for calibration), so only up to
``MAX_PARAMETERS``: larger exports keep the bounded-memory path and read prompts on the decode graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pgpt.runtime.errors import TensorShapeError

FILE_NAME = "prefill.onnx"
ALPHA = 0.7
MAX_PARAMETERS = 500_000_000  # 2 GB of fp32 weights, held about three times while this graph is made
OUTLIER_CHANNELS = 64
METHOD = ("SmoothQuant (alpha 0.7) + dynamic int8 MatMul; down_proj int8 per token with its "
          f"{OUTLIER_CHANNELS} widest input channels fp32; embedding and lm_head 8-bit blocks")


def write_prefill_graph(model: Any, maxima: dict[str, np.ndarray], target: Path) -> dict[str, str]:
    """Write ``target`` from the fp32 fused graph (a ModelProto of ``fused_graph``, with its weights
    loaded; changed in place), smoothed with the ``activation_maxima`` of its PyTorch original;
    returns how its embedding and lm_head are stored (``prefill_weights.compact``)."""
    layers = _layer_count(model)
    weights = {t.name: t for t in model.graph.initializer}
    _smooth(weights, maxima, layers)
    del weights
    from pgpt.export.int8_compute import quantize_matmuls
    from pgpt.export.prefill_weights import compact
    from pgpt.export.quantize import save_model

    for layer in range(layers):
        split_outlier_channels(model, layer, maxima[_observed(layer)["down"]])
    quantize_matmuls(model, keep_fp32=lambda name: name == "lm_head" or _OUTLIERS in name,
                     per_row=lambda name: name.endswith(".down_proj"))
    stored = compact(model)
    # Weights beside the graph: one protobuf of 400 MB is serialized in a single call that holds
    # the GIL for seconds, and the stage's heartbeat line missed its turn (6.5 s on a busy 2-core
    # machine); written tensor by tensor, the heartbeat keeps its 3 s.
    save_model(model, target, external=True)
    return stored


def _layer_count(model: Any) -> int:
    """Decoder layers of the fused graph: one GroupQueryAttention node each."""
    return sum(1 for n in model.graph.node if n.op_type == "GroupQueryAttention")


def _observed(layer: int) -> dict[str, str]:
    """The tensor feeding each smoothed MatMul of one layer (names from fused_graph)."""
    p = f"layers.{layer}"
    return {"qkv": f"{p}.input_norm/out0", "mlp": f"{p}.post_norm/out0", "down": f"{p}.gate_mul/out0"}


def activation_maxima(torch_model: Any, sequences: list[list[int]]) -> dict[str, np.ndarray]:
    """Per-channel max |activation| of every smoothed MatMul input over the calibration text.

    Observed in the PyTorch original, which computes the same fp32 tensors as the fused graph:
    running the graph instead meant serializing its 540 MB of weights into a session first
    (8 s of a 14 s stage on 2 cores).
    """
    import torch

    maxima: dict[str, np.ndarray] = {}

    def observe(name: str) -> Any:
        def hook(module: Any, inputs: tuple[Any, ...]) -> None:
            value = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0).float().numpy()
            maxima[name] = np.maximum(maxima.get(name, value), value)
        return hook

    hooks = []
    for index, layer in enumerate(torch_model.model.layers):
        seen = _observed(index)
        hooks += [layer.self_attn.q_proj.register_forward_pre_hook(observe(seen["qkv"])),
                  layer.mlp.gate_proj.register_forward_pre_hook(observe(seen["mlp"])),
                  layer.mlp.down_proj.register_forward_pre_hook(observe(seen["down"]))]
    try:
        with torch.no_grad():
            for ids in sequences:
                torch_model(torch.tensor([ids]))
    finally:
        for hook in hooks:
            hook.remove()
    return maxima


def _smooth(tensors: dict[str, Any], maxima: dict[str, np.ndarray], layers: int) -> None:
    """Divide each MatMul input by s and multiply the weight rows by s, folding 1/s upstream.

    down_proj is not smoothed: its outlier channels go to fp32 instead (``split_outlier_channels``).
    o_proj is not smoothed: its 1/s would fold into V, and V is written to the KV cache that
    the main (decode) graph reads after the prompt.
    """
    from onnx import numpy_helper

    from pgpt.export.int8_compute import smoothquant_scales

    w = {name: numpy_helper.to_array(t).copy() for name, t in tensors.items()
         if name.startswith(("layers.", "model.layers."))}  # MatMul weights, and the norms by source name
    for layer in range(layers):
        p, seen = f"layers.{layer}", _observed(layer)
        qkv = w[f"{p}.qkv_proj.weight"]
        s = smoothquant_scales(maxima[seen["qkv"]], np.abs(qkv).max(axis=1), ALPHA)
        w[f"model.{p}.input_layernorm.weight"] /= s
        qkv *= s[:, None]
        gate, up = w[f"{p}.gate_proj.weight"], w[f"{p}.up_proj.weight"]
        gate_up_max = np.maximum(np.abs(gate).max(axis=1), np.abs(up).max(axis=1))
        s = smoothquant_scales(maxima[seen["mlp"]], gate_up_max, ALPHA)
        w[f"model.{p}.post_attention_layernorm.weight"] /= s
        gate *= s[:, None]
        up *= s[:, None]
    for name, array in w.items():
        tensors[name].CopyFrom(numpy_helper.from_array(array, name))


_OUTLIERS = ".down_outliers"


def split_outlier_channels(model: Any, layer: int, down_max: np.ndarray) -> None:
    """Move the ``OUTLIER_CHANNELS`` widest intermediate channels of ``layer``'s MLP (by the
    calibrated max of ``down_proj``'s input) out of its gate, up and down weights into an fp32
    side branch whose result is added to ``down_proj``'s: the same product, in two parts.

    The branch computes its own gate and up columns rather than gathering them from the int8
    ones: 93.2% top-1 against 91.9%, at the same speed."""
    from onnx import helper, numpy_helper

    p, graph = f"layers.{layer}", model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    gate, up, down = (numpy_helper.to_array(weights[f"{p}.{m}.weight"]) for m in ("gate_proj", "up_proj", "down_proj"))
    count = min(OUTLIER_CHANNELS, down_max.size // 8)
    wide = np.sort(np.argsort(-down_max, kind="stable")[:count])
    rest = np.setdiff1d(np.arange(down_max.size), wide)
    for name, kept in (("gate_proj", gate[:, rest]), ("up_proj", up[:, rest]), ("down_proj", down[rest])):
        weights[f"{p}.{name}.weight"].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(kept), f"{p}.{name}.weight"))
    side = f"{p}{_OUTLIERS}"
    graph.initializer.extend([
        numpy_helper.from_array(np.ascontiguousarray(np.concatenate([gate[:, wide], up[:, wide]], axis=1)),
                                f"{side}.gate_up.weight"),
        numpy_helper.from_array(np.ascontiguousarray(down[wide]), f"{side}.down.weight"),
        numpy_helper.from_array(np.array([count, count], dtype=np.int64), f"{side}.sizes")])
    activation = next(n for n in graph.node if n.output[0] == nodes[f"{p}.gate_mul"].input[0])
    main = nodes[f"{p}.down_proj"]
    total = main.output[0]
    main.output[0] = f"{side}/main"
    act = helper.make_node(activation.op_type, [f"{side}/gate"], [f"{side}/act"], name=f"{side}.act",
                           domain=activation.domain)
    act.attribute.extend(activation.attribute)
    branch = [
        helper.make_node("MatMul", [nodes[f"{p}.gate_proj"].input[0], f"{side}.gate_up.weight"], [f"{side}/gate_up"],
                         name=f"{side}.gate_up"),
        helper.make_node("Split", [f"{side}/gate_up", f"{side}.sizes"], [f"{side}/gate", f"{side}/up"],
                         name=f"{side}.split", axis=-1),
        act,
        helper.make_node("Mul", [f"{side}/act", f"{side}/up"], [f"{side}/product"], name=f"{side}.mul"),
        helper.make_node("MatMul", [f"{side}/product", f"{side}.down.weight"], [f"{side}/out"], name=f"{side}.down"),
        helper.make_node("Add", [f"{side}/main", f"{side}/out"], [total], name=f"{side}.add")]
    position = list(graph.node).index(main) + 1
    for offset, node in enumerate(branch):
        graph.node.insert(position + offset, node)


def wanted(options: Any, graph: str, spec: Any) -> bool:
    """A calibrated prefill graph goes with int8/int4 fused CPU exports of models up to
    ``MAX_PARAMETERS`` (unless --prefill none); not for Gemma 3, whose norms after each block it
    does not smooth. Larger models and Gemma 3 get ``prefill_stream``'s with --prefill int8."""
    return options.prefill in ("auto", "int8") and graph == "fused" and options.dtype in ("int8", "int4") \
        and options.device == "cpu" and spec.weights <= MAX_PARAMETERS and not spec.sandwich_norms


def write_for_export(source: Any, spec: Any, config: Any, weights: Any, tokenizer: Any, tmp: Path,
                     options: Any, report: Any) -> dict[str, str]:
    """``tmp/out/prefill.onnx`` from an fp32 fused graph written to ``tmp/prefill-fp32`` (deleted
    after), calibrated on the PyTorch original; returns the manifest's ``prefill`` entry."""
    import gc
    import shutil

    import onnx

    from pgpt.export.model_loading import load_torch_model
    from pgpt.export.fused_export import write_fused
    from pgpt.export.gguf_loading import fast_gguf_reading
    from pgpt.export.quality import calibration_sequences

    with report.heartbeat("quantize", "int8-compute prefill graph: calibrating on the PyTorch original"):
        try:
            with fast_gguf_reading():
                torch_model = load_torch_model(source, options.trust_remote_code)
        except TensorShapeError as exc:  # only this step needs the PyTorch model of a fused export
            raise TensorShapeError(f"{exc} This happened while calibrating the int8 prefill graph on PyTorch's model "
                                   "of the file; --prefill none leaves that graph out.") from None
        maxima = activation_maxima(torch_model, calibration_sequences(tokenizer, spec.positions))
        del torch_model
        gc.collect()
    work = tmp / "prefill-fp32"
    work.mkdir()
    write_fused(spec, config, weights, work, "fp32", report)  # its own progress lines
    with report.heartbeat("quantize", "int8-compute prefill graph (SmoothQuant W8A8)"):
        stored = write_prefill_graph(onnx.load(str(work / "model.onnx")), maxima, tmp / "out" / FILE_NAME)
    shutil.rmtree(work)
    return {"file": FILE_NAME, "method": METHOD, "device": "cpu", "weights": stored}


def keep_if_good(manifest: dict[str, Any], out: Path, options: Any, report: Any) -> None:
    """Drop the prefill graph when it misses the quality threshold: it is a speed-up, not the model."""
    from pgpt.export.pipeline import percent

    measured = manifest["quality"].get("prefill")
    if not measured:
        return
    if measured["top1_agreement"] >= options.min_agreement or options.accept_quality_loss:
        report("validate", f"prefill graph: top-1 agreement {measured['top1_agreement']:.1%}, "
                           f"perplexity x{measured['perplexity_ratio']:.3f}")
        return
    report("validate", f"prefill graph dropped: top-1 agreement {measured['top1_agreement']:.1%} "
                       f"is below {percent(options.min_agreement)}; prompts run on the main graph")
    for extra in (out / FILE_NAME, out / (FILE_NAME + ".data")):
        extra.unlink(missing_ok=True)
    del manifest["prefill"]
    measured["dropped"] = True
