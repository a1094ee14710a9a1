"""The fused export in bounded memory: weights streamed from the source into the graph, then
checked against a reference that runs one decoder layer at a time.

Peak memory is the largest tensor while writing, and the loaded export plus one fp32 layer while
checking (``memory.fused_need``), not the model: on Qwen2.5-Coder-1.5B the old path (transformers
model, whole graph in memory) peaked at 23.7 GB; see the README's "Real-size models" for this one.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from pgpt.export.decoder_spec import DecoderSpec, decoder_spec
from pgpt.export.pipeline import ExportOptions
from pgpt.export.sources import ModelSource
from pgpt.export.weights import GGUFWeights, SafetensorsWeights, WeightSource

METHODS = {
    "fp32": "fp32 weights as stored (dequantized from GGUF blocks)",
    "fp16": "fp16 weights and activations",
    "int8": "MatMulNBits 8-bit, blocks of 32, symmetric; GGUF Q8_0/Q4_0/Q5_0 blocks kept exactly",
    "int4": "MatMulNBits 4-bit; GGUF blocks of at most 4 bits (Q4_0, Q4_1, Q4_K, Q3_K, Q2_K) kept exactly, "
            "wider ones re-rounded to 4 bits (blocks of 32, symmetric), embedding and lm_head to 8 bits",
}


def open_weights(source: ModelSource, config: Any) -> WeightSource:
    """The source's tensors, one at a time, by transformers name."""
    if source.gguf_file:
        return GGUFWeights(source.folder / source.gguf_file, config.model_type, config.num_attention_heads,
                           config.num_key_value_heads)
    return SafetensorsWeights(source.folder)


def fused_spec(config: Any, weights: WeightSource) -> DecoderSpec:
    """The decoder's spec; lm_head reads the embedding exactly when the source has no lm_head tensor.

    Raises:
        TensorShapeError: the tensors do not fit the header's architecture (see ``check_tensors``).
    """
    spec = dataclasses.replace(decoder_spec(config), tied=weights.info("lm_head.weight") is None)
    check_tensors(spec, weights)
    return spec


def check_tensors(spec: DecoderSpec, weights: WeightSource) -> None:
    """Refuse a file whose header and tensors disagree, before any graph is written: a header that
    counts more layers than the file holds ended in a KeyError, and a wrong width in ONNX Runtime's
    GroupQueryAttention error, both called a bug in pgpt (t51)."""
    from pgpt.runtime.errors import TensorShapeError

    expected = {"model.embed_tokens.weight": (spec.vocab, spec.hidden),
                "model.layers.0.self_attn.q_proj.weight": (spec.heads * spec.head_dim, spec.hidden),
                "model.layers.0.self_attn.k_proj.weight": (spec.kv_heads * spec.head_dim, spec.hidden)}
    for name, shape in expected.items():
        info = weights.info(name)
        if info is None and name == "model.embed_tokens.weight":
            raise TensorShapeError("The file has no embedding table (model.embed_tokens.weight).")
        if info is not None and tuple(info.shape) != shape:
            raise TensorShapeError(f"Its header's architecture gives {name} the shape {_dims(shape)}, and the "
                                   f"file holds {_dims(info.shape)}.")
    present = [i for i in range(spec.layers) if weights.info(f"model.layers.{i}.input_layernorm.weight") is not None]
    if len(present) < spec.layers:
        raise TensorShapeError(f"Its header counts {spec.layers} layers, and the file holds the tensors of "
                               f"{len(present)}.")


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def write_fused(spec: DecoderSpec, config: Any, weights: WeightSource, out: Path, dtype: str,
                report: Any, wide: bool = False) -> dict[str, Any]:
    """``out/model.onnx`` (+ its data file) in ``dtype``; returns how the weights were written.

    ``wide`` (int4): GGUF tensors with 5-8-bit grids keep 8 bits (``linear_weights.plan``).
    """
    from pgpt.export.fused_graph import count_tensors, graph_io, write_graph
    from pgpt.export.linear_weights import LinearWriter
    from pgpt.export.onnx_writer import ByteProgress, GraphWriter

    report("export", f"writing the fused ONNX graph tensor by tensor ({spec.layers} layers, {dtype})")
    graph = GraphWriter(out)
    progress = ByteProgress(report, "export", weights.stored_bytes(), count_tensors(spec, weights))
    linear = LinearWriter(graph, weights, "fp32" if dtype == "fp16" else dtype, progress, wide)
    try:
        with report.heartbeat("export", progress.waiting_line):
            write_graph(spec, config, linear)
        graph.finish(*graph_io(spec), "pgpt-fused-decoder")
    finally:
        graph.close()
    report("export", f"wrote {graph.written / 1e6:.0f} MB of weights")
    if dtype == "fp16":
        _to_fp16(out / "model.onnx", report)
    if dtype not in ("int8", "int4"):
        return {}
    summary = {"method": METHODS[dtype], "exact_blocks": dict(sorted(linear.kept.items())),
               "requantized": linear.requantized, "tensors": dict(sorted(linear.record.items()))}
    if dtype == "int4":  # how many 5-8-bit GGUF matrices went to 4 bits (0 after a wide retry)
        summary["narrowed_to_4bit"] = linear.narrowed
    report("quantize", blocks_line(linear.kept, linear.requantized, "4 or 8" if wide else dtype.removeprefix("int")))
    return summary


def blocks_line(kept: dict[str, int], requantized: int, bits: str) -> str:
    """``210 weight matrices as their Q4_1 blocks, 1 as their Q8_0 blocks; 0 re-quantized (...)``."""
    counts = sorted(kept.items(), key=lambda item: -item[1])
    parts = [f"{n} as their {kind.upper()} blocks" for kind, n in counts] or ["0 as GGUF blocks"]
    return f"{parts[0].replace(' as', ' weight matrices as', 1)}{''.join(', ' + p for p in parts[1:])}; " \
           f"{requantized} re-quantized (MatMulNBits {bits}-bit, block 32, symmetric)"


def _to_fp16(path: Path, report: Any) -> None:
    """Convert the fp32 graph to fp16 in place, one weight at a time.

    The weights (the side file) are converted as they are copied to a new side file, then the
    graph's structure alone goes through ONNX Runtime's converter, which finds them fp16 already.
    Converting the loaded graph held the whole model several times: a peak RSS of 15.3 GB and
    four minutes for Qwen2.5-1.5B's shape on 2 cores.
    """
    import onnx

    from pgpt.export.quantize import convert_fp16

    data = path.with_name(path.name + ".data")
    fresh = path.with_name(path.name + ".data.fp16")
    with report.heartbeat("quantize", "converting to fp16 (made for CUDA: fp16 on the CPU EP is slow)"):
        model = onnx.load(str(path), load_external_data=False)
        weights_to_fp16(model, data, fresh)
        model = convert_fp16(model)  # the structure: inputs, outputs, casts, the small inline tensors
        fresh.replace(data)
        onnx.save_model(model, str(path))


def weights_to_fp16(model: Any, data: Path, fresh: Path) -> None:
    """Copy every external weight of ``model`` from ``data`` to ``fresh``, float32 ones as float16
    (with the converter's own clipping), and point the graph at them under ``data``'s name."""
    import numpy as np
    from onnx import TensorProto
    from onnxruntime.transformers.float16 import convert_np_to_float16

    with open(data, "rb") as source, open(fresh, "wb") as target:
        for tensor in model.graph.initializer:
            if tensor.data_location != TensorProto.EXTERNAL:
                continue
            where = {entry.key: entry.value for entry in tensor.external_data}
            source.seek(int(where.get("offset", 0)))
            raw = source.read(int(where["length"]))
            if tensor.data_type == TensorProto.FLOAT:
                raw = convert_np_to_float16(np.frombuffer(raw, dtype=np.float32)).tobytes()
                tensor.data_type = TensorProto.FLOAT16
            offset = target.tell()
            target.write(raw)
            del tensor.external_data[:]
            for key, value in (("location", data.name), ("offset", str(offset)), ("length", str(len(raw)))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value


def measure_fused(spec: DecoderSpec, config: Any, weights: WeightSource, out: Path, manifest: dict[str, Any],
                  options: ExportOptions, report: Any) -> dict[str, Any]:
    """Quality of the export in ``out`` against the layer-by-layer reference."""
    from pgpt.export.quality import llm_quality
    from pgpt.export.reference import LayerwiseReference

    steps = CheckSteps(report)
    reference = LayerwiseReference(config, spec, weights, progress=steps.detail, step=steps)
    with report.heartbeat("validate", steps.waiting, clock=False):
        return llm_quality(reference, lambda: open_export(out, manifest, options, report), progress=steps)


class CheckSteps:
    """The quality check's current step, which its heartbeat names on the step's own clock: it said
    "comparing (90s)" (seconds since the check began) between the reference's "reference layer 8/28,
    ETA 39s" lines, and "comparing (143s)" through the 16 s of scoring after them."""

    def __init__(self, report: Any) -> None:
        self._report = report
        self._name, self._since = "comparing with the original", time.perf_counter()

    def __call__(self, line: str) -> None:
        """A new step: reported, and named by the heartbeat until the next one."""
        self._name, self._since = line, time.perf_counter()
        self._report("validate", line)

    def detail(self, line: str) -> None:
        """Progress within the step (the reference's layer lines): reported, the step's name kept."""
        self._report("validate", line)

    def waiting(self) -> str:
        """The heartbeat's line: "running the original as the reference, 12s in this step"."""
        return f"{self._name}, {time.perf_counter() - self._since:.0f}s in this step"


def open_export(out: Path, manifest: dict[str, Any], options: ExportOptions, report: Any) -> Any:
    """The export in ``out`` as a LanguageModel (its manifest written as a draft first)."""
    from pgpt.runtime.llm.generation import LanguageModel
    from pgpt.runtime.manifest import write_manifest
    from pgpt.runtime.models import ModelInfo

    draft = write_manifest(out, dict(manifest))
    report("validate", "loading the export")
    return LanguageModel(ModelInfo(out.name, out, draft), provider="cuda" if options.device == "cuda" else "cpu")
