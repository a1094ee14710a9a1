"""Sentence-embedding export: encoder -> ONNX feature extraction, pooling recorded, cosine check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from pgpt.export.pipeline import ExportOptions, base_manifest, check_quality, copy_model_files, graph_opset, require_task
from pgpt.export.sources import ModelSource
from pgpt.runtime.errors import UnsupportedModelError

TASK = "feature-extraction"


def read_pooling(folder: Path) -> dict[str, Any]:
    """Pooling and normalization as the sentence-transformers modules define them."""
    modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").is_file() else []
    normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    mode = "mean"
    pooling_dir = next((m.get("path") for m in modules if str(m.get("type", "")).endswith("Pooling")), "")
    config_path = folder / str(pooling_dir) / "config.json" if pooling_dir else None
    if config_path and config_path.is_file():
        config = json.loads(config_path.read_text())
        if config.get("pooling_mode_cls_token"):
            mode = "cls"
    return {"mode": mode, "normalize": normalize}


def export_embedding(source: ModelSource, options: ExportOptions, tmp: Path, report: Any) -> dict[str, Any]:
    """Export an encoder and check its embeddings against PyTorch; returns the manifest."""
    import torch
    from optimum.exporters.onnx import onnx_export_from_model
    from transformers import AutoModel, AutoTokenizer

    if options.dtype == "int4":
        raise UnsupportedModelError(
            "int4 is for chat models: 4-bit weights cost an embedding model too much of its accuracy.",
            hint="Export embedding models with --dtype int8 (about 1.5x fp32's speed on the CPU) or fp32.")
    report("load", f"loading {source.folder.name} with transformers")
    model = AutoModel.from_pretrained(str(source.folder), use_safetensors=True,
                                      trust_remote_code=options.trust_remote_code).eval()
    require_task(model.config.model_type, TASK)
    tokenizer = AutoTokenizer.from_pretrained(str(source.folder))
    report("export", "exporting to ONNX (feature-extraction)")
    onnx_dir = tmp / "onnx"
    onnx_export_from_model(model, str(onnx_dir), task=TASK, do_validation=False, preprocessors=[tokenizer])
    out = tmp / "out"
    shutil.move(str(onnx_dir / "model.onnx"), out / "model.onnx")
    copy_model_files(onnx_dir, out)
    pooling = read_pooling(source.folder)
    st_config = source.folder / "sentence_bert_config.json"
    max_len = json.loads(st_config.read_text()).get("max_seq_length", 256) if st_config.is_file() else 256
    manifest = base_manifest(source, options, "embedding", TASK)
    if options.dtype == "int8":
        report("quantize", "int8 compute, outlier channels kept in fp32")
        manifest["weights"] = _quantize_int8(out / "model.onnx", model.config, tokenizer, source.folder, int(max_len))
    elif options.dtype == "fp16":
        report("quantize", "converting to float16 (fast on CUDA; slow on the CPU execution provider)")
        _convert_fp16(out / "model.onnx")
    manifest.update(pooling=pooling, max_seq_length=int(max_len), dimension=int(model.config.hidden_size),
                    opset=graph_opset(out / "model.onnx"), architecture=model.config.architectures[0])

    def reference(texts: list[str]) -> np.ndarray:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=int(max_len), return_tensors="pt")
        # Written in torch as sentence-transformers' Pooling/Normalize modules do it, so the
        # check does not reuse the runtime's own pooling code.
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
            if pooling["mode"] == "cls":
                vectors = hidden[:, 0]
            else:
                mask = batch["attention_mask"].unsqueeze(-1).float()
                vectors = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if pooling["normalize"]:
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return vectors.numpy()

    report("validate", "comparing embeddings with the PyTorch original (cosine)")
    from pgpt.export.quality import embedding_quality
    from pgpt.runtime.llm.embeddings import Embedder
    from pgpt.runtime.manifest import write_manifest
    from pgpt.runtime.models import ModelInfo

    draft = write_manifest(out, dict(manifest))
    manifest["quality"] = embedding_quality(reference, Embedder(ModelInfo(out.name, out, draft), provider="cpu"))
    check_quality(manifest["quality"], options, "embedding")
    report("validate", f"min cosine {manifest['quality']['min_cosine']:.5f}")
    return manifest


def calibration_texts(folder: Path) -> list[str]:
    """Texts whose activation ranges calibrate int8: the model card's passages and a few prompts.

    Disjoint from the quality check's texts (pgpt.export.quality.embed_texts).
    """
    from pgpt.export.quality import CALIBRATION_PROMPTS

    card = folder / "README.md"
    text = card.read_text(encoding="utf-8", errors="replace") if card.is_file() else ""
    return [text[i:i + 1000] for i in range(0, min(len(text), 16000), 1000)] + list(CALIBRATION_PROMPTS)


def _quantize_int8(graph: Path, config: Any, tokenizer: Any, folder: Path, max_len: int) -> dict[str, Any]:
    from pgpt.export.encoder_int8 import quantize_encoder

    batch = tokenizer(calibration_texts(folder), padding=True, truncation=True, max_length=max_len, return_tensors="np")
    feeds = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items()}
    # 0 lets ONNX Runtime's optimizer read the sizes from the graph (configs name them differently).
    heads, hidden = (int(getattr(config, key, 0) or 0) for key in ("num_attention_heads", "hidden_size"))
    return quantize_encoder(graph, graph, heads, hidden, feeds)  # read whole before it is overwritten


def _convert_fp16(graph: Path) -> None:
    import onnx

    from pgpt.export.quantize import convert_fp16, save_model

    save_model(convert_fp16(onnx.load(str(graph))), graph)
