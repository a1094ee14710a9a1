"""Prompts and answers run on one graph: chunked prompts, and exports whose size follows their bits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pgpt.export.pipeline import ExportOptions, export_model
from pgpt.export.quality import QUALITY_TEXT
from pgpt.runtime.llm import generation
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.models import ModelInfo, find_model
from support import gguf_path


@pytest.fixture(scope="module")
def fp32_model(default_models) -> LanguageModel:  # type: ignore[no-untyped-def]
    return LanguageModel(find_model(default_models, "smollm2-135m-instruct-fp32"), provider="cpu")


@pytest.fixture(scope="module")
def int4_export(tmp_path_factory: pytest.TempPathFactory) -> ModelInfo:
    return export_model(ExportOptions(source=str(gguf_path()), output=tmp_path_factory.mktemp("int4") / "int4",
                                      dtype="int4"))


def test_chunked_prompt_equals_one_pass(fp32_model: LanguageModel, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = fp32_model.tokenize(QUALITY_TEXT.read_text(encoding="utf-8"))[:600]  # three chunks of 256
    chunked = fp32_model.forward_logits(ids)
    monkeypatch.setattr(generation, "PREFILL_CHUNK", 4096)
    whole = fp32_model.forward_logits(ids)
    assert chunked.shape == whole.shape == (600, whole.shape[1])
    np.testing.assert_allclose(chunked, whole, atol=2e-3)


def _file_bytes(info: ModelInfo) -> int:
    return sum(f["size"] for f in info.manifest["files"])


def _table_weights(info: ModelInfo) -> int:
    """Weights of the embedding (which the tied lm_head reads)."""
    config = json.loads((info.path / "config.json").read_text())
    return int(config["vocab_size"]) * int(config["hidden_size"])


# Bytes per weight of the files: the layers' blocks (int4: 4-bit codes, an fp32 scale and an fp32
# offset per 32 weights = 0.75), and the embedding, kept at 8 bits (1.125 with its scales) in int4
# too: re-rounded to 4 bits it took the default model's top-1 agreement from 96.8% to 83.2%.
@pytest.mark.parametrize("dtype, layer_bytes, table_bytes", [("int8", 1.3, 1.3), ("int4", 0.75, 1.125)])
def test_an_export_is_one_graph_whose_files_follow_its_bits(default_models, int4_export: ModelInfo,  # type: ignore[no-untyped-def]
                                                             dtype: str, layer_bytes: float,
                                                             table_bytes: float) -> None:
    """Before: int8 686 MB and int4 658 MB (an fp32 prefill graph and fp32 embeddings beside the
    quantized weights), against 657 MB for fp32. The tokenizer, configs and rotary tables add ~6 MB."""
    info = int4_export if dtype == "int4" else find_model(default_models, f"smollm2-135m-instruct-{dtype}")
    assert info is not None
    assert "prefill" not in info.manifest
    assert {f["path"] for f in info.manifest["files"]} >= {"model.onnx", "model.onnx.data", "tokenizer.json"}
    parameters, table = info.manifest["parameters"], _table_weights(info)
    assert parameters == 134_515_008
    assert _file_bytes(info) <= layer_bytes * (parameters - table) + table_bytes * table + 10_000_000


LOADED_RSS = """
import json, sys, resource
from pathlib import Path
from pgpt.runtime.models import ModelInfo
from pgpt.runtime.manifest import read_manifest
from pgpt.runtime.llm.generation import LanguageModel
from pgpt.runtime.llm.sampling import SamplingOptions
folder = Path(sys.argv[1])
model = LanguageModel(ModelInfo(folder.name, folder, read_manifest(folder)), provider="cpu")
ids = model.tokenize(model.render_prompt([{"role": "user", "content": "Name three colours."}]))
list(model.generate(ids, SamplingOptions(max_new_tokens=32, ignore_eos=True)))
status = open("/proc/self/status").read()
print(json.dumps({key: int(line.split()[1]) * 1024 for line in status.splitlines()
                  for key in ("VmRSS", "VmHWM") if line.startswith(key + ":")}))
"""


@pytest.mark.slow
def test_a_loaded_int4_export_takes_about_twice_its_files_in_memory(int4_export: ModelInfo) -> None:
    """Measured (2026-12-02): Python with numpy, ONNX Runtime and the tokenizer 55 MB, loaded 277 MB,
    after 32 tokens 288 MB, for 118 MB of files: ONNX Runtime holds the repacked MatMulNBits weights
    (with their block sums for int8 compute) and the tied embedding table both as GatherBlockQuantized
    reads it and as lm_head's packed copy. Issue 19's target (0.75 bytes per weight plus ~100 MB,
    about 200 MB here) is not met yet; this guards against losing what is there (main's int8 export
    with its fp32-weight prefill graph loaded at over 600 MB)."""
    result = subprocess.run([sys.executable, "-c", LOADED_RSS, str(int4_export.path)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rss = json.loads(result.stdout.strip().splitlines()[-1])
    assert rss["VmHWM"] <= 2 * _file_bytes(int4_export) + 100_000_000
