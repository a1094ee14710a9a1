"""`pgpt-tui bench --model NAME`: named exports on pgpt beside llama.cpp on their GGUF source, each row
set against the measured memory bandwidth; the refusals that name their cause."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pgpt.bench.bandwidth import measure_bandwidth, onnx_bytes_per_token
from pgpt.bench.engines import NOT_INSTALLED, BenchOptions, format_table, missing_exports, not_measured, run_bench
from pgpt.bench.loaders import Job
from pgpt.bench.named import gguf_quant, named_models, plan_named
from pgpt.runtime.errors import ModelNotFoundError, UsageError
from pgpt.runtime.models import DEFAULT_EMBEDDER, DEFAULT_LLM, ModelInfo, find_model
from pgpt.runtime.settings import Settings
from support import cli_env, gguf_path

INT8 = f"{DEFAULT_LLM}-int8"


def test_a_named_export_runs_beside_llama_cpp_on_its_gguf(default_models: Settings) -> None:
    messages: list[str] = []
    options = BenchOptions(models=(INT8,), engines=("pgpt", "llama.cpp"), prompt_tokens=64, new_tokens=4,
                           repeats=1, bandwidth_mb=256)
    assert missing_exports(default_models, options) == []  # named models are never exported by bench
    pgpt, llama = run_bench(default_models, options, progress=messages.append)
    assert pgpt["status"] == "ok" and pgpt["model"] == INT8 and pgpt["dtype"] == "int8", pgpt
    assert pgpt["decode_tok_s"] > 0 and pgpt["ttft_s"] > 0 and pgpt["peak_rss_mb"] > 0
    assert pgpt["read_gb_s"] > 0 and pgpt["bandwidth_limit_tok_s"] > 0
    # decode reads model.onnx's weights but the embedding table (one row of it)
    folder = find_model(default_models, INT8).path
    graph_mb = sum(f.stat().st_size for f in folder.glob("model.onnx*")) / 1e6  # the graph and its external data
    assert 0 < pgpt["weights_mb_per_token"] < graph_mb
    if importlib.util.find_spec("llama_cpp") is None:
        assert llama["status"] == NOT_INSTALLED
    else:
        assert llama["model"] == gguf_path().name and llama["dtype"] == "q4_1"
        assert llama["status"] == "ok" and llama["decode_tok_s"] > 0, llama
        assert llama["weights_mb_per_token"] < gguf_path().stat().st_size / 1e6
    assert any(m.startswith("bench: measuring memory bandwidth") for m in messages)
    table = format_table([pgpt, llama])
    assert "read_gb_s" not in llama or llama["status"] == "ok"  # only rows that run get a limit
    assert table.splitlines()[0].startswith("| engine | model | dtype |") and "bandwidth limit tok/s" in table
    assert f"| pgpt | {INT8} | int8 |" in table and "Bandwidth limit: " in table


def test_the_default_engines_with_a_model_are_pgpt_and_llama_cpp() -> None:
    options = BenchOptions(models=(INT8,))
    expected = ("pgpt", "llama.cpp") if importlib.util.find_spec("llama_cpp") else ("pgpt",)
    assert options.chosen_engines() == expected
    assert set(not_measured(options)) == {"pgpt", "llama.cpp"} - set(expected)


def _fake_export(folder: Path, tokenizer_sha: str, source: dict[str, str], kind: str = "llm") -> ModelInfo:
    """A model folder holding only a manifest: enough to plan rows, never to run them."""
    folder.mkdir(parents=True)
    manifest = {"format_version": 1, "kind": kind, "dtype": "int4", "graph": "fused", "source": source,
                "files": [{"path": "tokenizer.json", "size": 1, "sha256": tokenizer_sha}]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return ModelInfo(folder.name, folder, manifest)


def test_named_models_must_be_chat_models_with_one_tokenizer(default_models: Settings, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no exported model called 'nope'"):
        named_models(default_models, ("nope",))
    with pytest.raises(ModelNotFoundError, match="is an embedding model"):
        named_models(default_models, (DEFAULT_EMBEDDER,))
    _fake_export(tmp_path / "a-int4", "aaa", {})
    _fake_export(tmp_path / "b-int4", "bbb", {})
    with pytest.raises(UsageError, match="different tokenizers"):
        named_models(default_models, (str(tmp_path / "a-int4"), str(tmp_path / "b-int4")))


def test_llama_cpp_runs_each_gguf_source_once_and_names_exports_without_one(tmp_path: Path) -> None:
    from pgpt.bench.engines import _row

    gguf = {"type": "gguf", "path": str(gguf_path())}
    infos = [_fake_export(tmp_path / "q-int8", "t", gguf), _fake_export(tmp_path / "q-int4", "t", gguf),
             _fake_export(tmp_path / "h-int4", "t", {"type": "hub", "repo_id": "org/model"}),
             _fake_export(tmp_path / "gone-int4", "t", {"type": "gguf", "path": str(tmp_path / "moved.gguf")})]
    job = Job("", [], new_tokens=4, repeats=1, threads=1, provider="cpu")
    plan = plan_named(infos, ("pgpt", "llama.cpp", "optimum"), job, _row, missing=lambda engine: "")
    rows = [row for row, _job in plan]
    assert [(r["engine"], r.get("model")) for r in rows[:4]] == [("pgpt", n) for n in ("q-int8", "q-int4", "h-int4",
                                                                                        "gone-int4")]
    [(llama, llama_job), (missing, no_job)] = plan[4:6]
    assert llama_job is not None and llama_job.gguf == gguf_path() and llama["dtype"] == gguf_quant(gguf_path())
    assert no_job is None and missing["status"].startswith("no GGUF source for h-int4, gone-int4")
    assert all("Optimum runs exports made with --graph optimum" in r["status"] for r in rows[6:])


def test_bandwidth_is_measured_and_weights_per_token_read_from_the_graph(default_models: Settings) -> None:
    measured = measure_bandwidth(threads=2, size_mb=256, repeats=2)
    assert measured["read_gb_s"] > 0.1 and measured["copy_gb_s"] > 0.1 and measured["threads"] == 2
    graph = find_model(default_models, INT8).path / "model.onnx"
    # SmolLM2-135M: 30 layers of 8-bit blocks (+ fp32 scales) and the lm_head, no embedding table
    assert 100e6 < onnx_bytes_per_token(graph) < 200e6


def test_cli_refuses_an_unknown_model_in_one_paragraph(default_models: Settings) -> None:
    result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "bench", "--model", "nope", "--no-export"],
                            capture_output=True, text=True, env=cli_env(default_models), timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: Model not found: There is no exported model called 'nope'" in result.stderr
