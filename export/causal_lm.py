"""Causal LM export: transformers (safetensors or GGUF) -> ONNX with KV cache, then quality check."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from pgpt.export.pipeline import (
    ExportOptions,
    base_manifest,
    check_quality,
    copy_model_files,
    graph_opset,
    percent,
    read_config,
    require_task,
)
from pgpt.export.prefill_graph import FILE_NAME as PREFILL_FILE
from pgpt.export.prefill_graph import METHOD as PREFILL_METHOD
from pgpt.export.sources import ModelSource
from pgpt.runtime.errors import ProviderError, UnsupportedModelError

TASK = "text-generation-with-past"


def load_torch_model(source: ModelSource, trust_remote_code: bool) -> Any:
    """Load the original in fp32 with eager attention (its graph is ~10% faster than SDPA's)."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"attn_implementation": "eager", "dtype": torch.float32,
                              "trust_remote_code": trust_remote_code}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    else:
        kwargs["use_safetensors"] = True
    try:
        model = AutoModelForCausalLM.from_pretrained(str(source.folder), **kwargs)
    except (ValueError, KeyError) as exc:
        raise UnsupportedModelError(f"transformers cannot load this model as a causal LM ({exc}).") from None
    return model.eval()


def load_model_and_tokenizer(source: ModelSource, trust_remote_code: bool) -> tuple[Any, Any]:
    """The fp32 original and its tokenizer; a GGUF file is parsed once for both (see gguf_loading)."""
    from transformers import AutoTokenizer

    from pgpt.export.gguf_loading import fast_gguf_reading

    extra = {"gguf_file": source.gguf_file} if source.gguf_file else {"trust_remote_code": trust_remote_code}
    with fast_gguf_reading():
        model = load_torch_model(source, trust_remote_code)
        require_task(model.config.model_type, TASK)
        return model, AutoTokenizer.from_pretrained(str(source.folder), **extra)


def export_causal_lm(source: ModelSource, options: ExportOptions, tmp: Path, report: Any) -> dict[str, Any]:
    """Export, convert to the asked dtype and validate; returns the manifest (without files)."""
    if options.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ProviderError("--device cuda was given but PyTorch sees no CUDA GPU here.",
                                hint="Export on the CPU (--device cpu); the graph still runs on CUDA later.")
    if not source.gguf_file:
        require_task(str(read_config(source.folder).get("model_type", "")), TASK)
    report("load", f"loading {source.gguf_file or source.folder.name} with transformers")
    model, tokenizer = load_model_and_tokenizer(source, options.trust_remote_code)
    graph = choose_graph(model.config, options.graph)
    weights = _write_graphs(model, tokenizer, graph, tmp, options, report)
    out = tmp / "out"
    tokenizer.save_pretrained(str(tmp / "hf"))
    model.generation_config.save_pretrained(str(tmp / "hf"))
    model.config.save_pretrained(str(tmp / "hf"))
    copy_model_files(tmp / "hf", out)
    manifest = base_manifest(source, options, "llm", TASK)
    manifest["graph"] = graph
    if weights:
        manifest["weights"] = weights
    if (out / PREFILL_FILE).exists():
        manifest["prefill"] = {"file": PREFILL_FILE, "method": PREFILL_METHOD, "device": "cpu"}
    manifest["opset"] = graph_opset(out / "model.onnx")
    manifest["architecture"] = read_config(out).get("architectures", [""])[0]
    report("validate", "comparing with the PyTorch original (teacher-forced top-1, perplexity)")
    manifest["quality"] = _measure(model, out, manifest, options)
    check_quality(manifest["quality"], options, "llm")
    report("validate", f"top-1 agreement {manifest['quality']['top1_agreement']:.1%}, "
                       f"perplexity x{manifest['quality']['perplexity_ratio']:.3f}")
    _keep_prefill_if_good(manifest, out, options, report)
    return manifest


def choose_graph(config: Any, asked: str) -> str:
    """``fused`` where the architecture has a fused graph (unless ``optimum`` was asked), else ``optimum``."""
    from pgpt.export.fused_graph import supports

    ok, why = supports(config)
    if asked == "fused" and not ok:
        raise UnsupportedModelError(f"--graph fused cannot write this model: {why}.",
                                    hint="Use --graph optimum (or leave --graph at auto).")
    return "fused" if ok and asked != "optimum" else "optimum"


def wants_prefill_graph(options: ExportOptions, graph: str) -> bool:
    """An int8 prefill graph goes with quantized fused exports for the CPU, unless --prefill none."""
    return options.prefill == "auto" and graph == "fused" and options.dtype in ("int8", "int4") \
        and options.device == "cpu"


def _calibrate(model: Any, tokenizer: Any) -> dict[str, Any]:
    """Activation maxima for the prefill graph's SmoothQuant, from PyTorch passes over calibration text."""
    from pgpt.export.prefill_graph import activation_maxima
    from pgpt.export.quality import calibration_sequences

    return activation_maxima(model, calibration_sequences(tokenizer))


def _write_graphs(model: Any, tokenizer: Any, graph: str, tmp: Path, options: ExportOptions,
                  report: Any) -> dict[str, Any]:
    """model.onnx in the asked dtype (and prefill.onnx where wants_prefill_graph) into ``tmp/out``."""
    out = tmp / "out"
    if graph == "optimum":
        report("export", "exporting to ONNX with Optimum (text-generation-with-past)")
        return _export_optimum(model, tokenizer, tmp, options, report)
    report("export", "writing the fused ONNX graph (GroupQueryAttention, fused RMSNorm)")
    from pgpt.export.fused_graph import build_graph
    from pgpt.export.prefill_graph import write_prefill_graph

    # Kept in memory: writing the fp32 graph and reading it back twice took ~10 s on 2 cores.
    fused = build_graph(model)
    if wants_prefill_graph(options, graph):
        report("quantize", "int8-compute prefill graph for long prompts (SmoothQuant W8A8, calibrated)")
        write_prefill_graph(fused, _calibrate(model, tokenizer), out / PREFILL_FILE)
    return _convert(fused, out / "model.onnx", options.dtype, report)


def _keep_prefill_if_good(manifest: dict[str, Any], out: Path, options: ExportOptions, report: Any) -> None:
    """Drop the prefill graph when it misses the quality threshold: it is a speed-up, not the model."""
    measured = manifest["quality"].get("prefill")
    if not measured:
        return
    if measured["top1_agreement"] >= options.min_agreement or options.accept_quality_loss:
        report("validate", f"prefill graph: top-1 agreement {measured['top1_agreement']:.1%}, "
                           f"perplexity x{measured['perplexity_ratio']:.3f}")
        return
    report("validate", f"prefill graph dropped: top-1 agreement {measured['top1_agreement']:.1%} "
                       f"is below {percent(options.min_agreement)}; prompts run on the main graph")
    (out / PREFILL_FILE).unlink()
    for extra in out.glob(PREFILL_FILE + ".data"):
        extra.unlink()
    del manifest["prefill"]
    measured["dropped"] = True


def _export_optimum(model: Any, tokenizer: Any, tmp: Path, options: ExportOptions, report: Any) -> dict[str, Any]:
    """Optimum's graph into ``tmp/out`` in the asked dtype; returns how the weights were written."""
    import onnx
    from optimum.exporters.onnx import onnx_export_from_model

    onnx_dir = tmp / "onnx"
    onnx_export_from_model(model, str(onnx_dir), task=TASK, do_validation=False, preprocessors=[tokenizer])
    weights: dict[str, Any] = {}
    if options.dtype == "fp32":  # as written: moved with its external data, never loaded
        for path in onnx_dir.glob("model.onnx*"):
            shutil.move(str(path), tmp / "out" / path.name)
    else:
        weights = _convert(onnx.load(str(onnx_dir / "model.onnx")), tmp / "out" / "model.onnx", options.dtype, report)
    copy_model_files(onnx_dir, tmp / "out")
    shutil.rmtree(onnx_dir, ignore_errors=True)
    return weights


def _convert(fp32: Any, target: Path, dtype: str, report: Any) -> dict[str, Any]:
    """Write the fp32 ModelProto ``fp32`` (changed in place) to ``target`` as ``dtype``.

    Returns how the weights were written, for the manifest.
    """
    from pgpt.export.quantize import convert_fp16, quantize_weights, save_model

    weights: dict[str, Any] = {}
    if dtype == "fp16":
        report("quantize", "converting to fp16 (made for CUDA: fp16 on the CPU EP is slow)")
        fp32 = convert_fp16(fp32)
    elif dtype == "int8":
        report("quantize", "weight-only 8-bit block quantization (MatMulNBits, block 32, symmetric)")
        fp32 = quantize_weights(fp32, 8)
        weights["method"] = "MatMulNBits 8-bit, block 32, symmetric"
    elif dtype == "int4":
        fp32, weights = _convert_int4(fp32, report)
    save_model(fp32, target)
    return weights


def _convert_int4(fp32: Any, report: Any) -> tuple[Any, dict[str, Any]]:
    """int4: GGUF Q4_1/Q8_0 weights as their own blocks (exact), the rest re-quantized to 4 bits."""
    from pgpt.export.gguf_blocks import write_exact_blocks
    from pgpt.export.quantize import quantize_weights

    report("quantize", "looking for GGUF 4-bit/8-bit blocks in the weights (written exactly)")
    exact = write_exact_blocks(fp32)
    report("quantize", f"{exact.q4_1} MatMuls as their Q4_1 blocks, {exact.q8_0} as their Q8_0 blocks; "
                       f"{exact.left} re-quantized (MatMulNBits 4-bit, block 32, symmetric)")
    if exact.left:
        fp32 = quantize_weights(fp32, 4, exclude=tuple(exact.helper_nodes))
    return fp32, {"method": "GGUF blocks written exactly where found, else MatMulNBits 4-bit symmetric",
                  "exact_blocks": exact.summary(), "requantized": exact.left}


def _measure(model: Any, out: Path, manifest: dict[str, Any], options: ExportOptions) -> dict[str, Any]:
    from pgpt.export.quality import llm_quality
    from pgpt.runtime.llm.generation import LanguageModel
    from pgpt.runtime.manifest import write_manifest
    from pgpt.runtime.models import ModelInfo

    draft = write_manifest(out, dict(manifest))
    provider = "cuda" if options.device == "cuda" else "cpu"
    onnx_model = LanguageModel(ModelInfo(out.name, out, draft), provider=provider)
    return llm_quality(model, onnx_model)
