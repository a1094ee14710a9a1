"""`pgpt-tui bench`: the table and ratios, the rows that explain why an engine did not run, a real run."""

from __future__ import annotations

import importlib.util

from pgpt.bench.engines import (
    GENAI_NO_MODEL,
    GENAI_NOT_INSTALLED,
    NOT_INSTALLED,
    BenchOptions,
    add_speedups,
    format_table,
    missing_exports,
    not_measured,
    run_bench,
)
from pgpt.runtime.settings import Settings


def _row(engine: str, dtype: str, decode: float | None, status: str = "ok") -> dict[str, object]:
    graph = "fused" if engine == "pgpt" else "optimum" if engine == "optimum" else "-"
    return {"engine": engine, "dtype": dtype, "graph": graph, "decode_tok_s": decode, "ttft_s": 0.25 if decode else None,
            "peak_rss_mb": 300.0 if decode else None, "load_s": 1.5 if decode else None,
            "quality": 0.977 if engine in ("pgpt", "optimum") else None, "status": status,
            "prompt_tokens": 1000, "new_tokens": 128}


def test_speedup_only_on_pgpt_rows_with_an_ok_optimum_row_of_the_same_dtype() -> None:
    rows = add_speedups([
        _row("pgpt", "int8", 60.0), _row("optimum", "int8", 40.0),
        _row("pgpt", "fp32", 50.0), _row("optimum", "fp32", None, status="failed: OSError: no config.json"),
        _row("pgpt", "int4", 70.0), _row("torch", "fp32", 20.0),
    ])
    assert rows[0]["speedup_vs_optimum"] == 1.5
    assert rows[0]["ttft_vs_optimum"] == 1.0  # both rows have a TTFT of 0.25 s
    assert [r for r in rows if "speedup_vs_optimum" in r] == [rows[0]]


def test_format_table_is_markdown_with_ratio_lines() -> None:
    rows = add_speedups([_row("pgpt", "int8", 60.0), _row("optimum", "int8", 40.0),
                         _row("llama.cpp", "-", None, status=NOT_INSTALLED)])
    lines = format_table(rows).splitlines()
    assert lines[0] == ("| engine | dtype | graph | decode tok/s | TTFT s | peak RSS MB | load s | "
                        "top-1 agreement | status |")
    assert lines[1].startswith("|---|")
    assert lines[2] == "| pgpt | int8 | fused | 60.0 | 0.250 | 300 | 1.50 | 97.7% | ok |"
    assert lines[4] == f"| llama.cpp | - | - | - | - | - | - | - | {NOT_INSTALLED} |"
    assert "Prompt 1000 tokens, 128 new tokens (greedy, EOS ignored)." in lines
    assert lines[-1] == "- pgpt int8 (fused graph): 1.50x Optimum's decode tok/s on its graph, TTFT 1.00x shorter"


def test_rows_say_why_an_engine_or_dtype_did_not_run(default_models: Settings) -> None:
    options = BenchOptions(dtypes=("int4",), engines=("pgpt", "llama.cpp", "vllm"), repeats=1, export_missing=False)
    rows = {r["engine"]: r for r in run_bench(default_models, options)}
    assert rows["pgpt"]["status"] == "not exported (run pgpt-export --default --dtype int4)"
    assert rows["vllm"]["status"].startswith("unknown engine (one of pgpt, optimum, torch")
    if importlib.util.find_spec("llama_cpp") is None:
        assert rows["llama.cpp"]["status"] == NOT_INSTALLED
    assert all(r["decode_tok_s"] is None for r in rows.values() if r["engine"] != "llama.cpp")


def test_real_pgpt_run_measures_speed_latency_and_memory(default_models: Settings) -> None:
    messages: list[str] = []
    options = BenchOptions(dtypes=("int8",), engines=("pgpt",), prompt_tokens=64, new_tokens=8, repeats=1)
    [row] = run_bench(default_models, options, progress=messages.append)
    assert row["status"] == "ok", row
    assert row["engine"] == "pgpt" and row["dtype"] == "int8" and row["graph"] == "fused + int8 prefill"
    assert row["decode_tok_s"] > 0 and row["ttft_s"] > 0 and row["peak_rss_mb"] > 0 and row["load_s"] > 0
    assert 0.9 < row["quality"] <= 1.0  # top-1 agreement from the manifest (the lower of the two graphs)
    assert abs(row["prompt_tokens"] - 64) <= 4  # the licence text cut to the asked length
    assert any("pgpt int8" in m for m in messages)


def test_every_timed_pgpt_run_reads_the_whole_prompt(default_models: Settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from pgpt.bench.loaders import Job, _load_pgpt
    from pgpt.runtime.llm.generation import LanguageModel
    from pgpt.runtime.models import find_model

    reused: list[int] = []
    generate = LanguageModel.generate

    def watched(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        yield from generate(self, *args, **kwargs)
        reused.append(self.last_reused_tokens)

    monkeypatch.setattr(LanguageModel, "generate", watched)
    job = Job("pgpt", list(range(100, 164)), new_tokens=4, repeats=2, threads=0, provider="cpu",
               model=find_model(default_models, "smollm2-135m-instruct-int8"))
    _, timed_run = _load_pgpt(job)
    for _ in range(3):
        timed_run(4)
    assert reused == [0, 0, 0]  # the same prompt again: without release_kv, 63 tokens would be reused


def test_optimum_needs_its_own_graph_and_says_how_to_export_it(default_models: Settings) -> None:
    # The session's exports are fused graphs, which Optimum's ORTModelForCausalLM cannot run.
    options = BenchOptions(dtypes=("int8",), engines=("optimum",), repeats=1, export_missing=False)
    [row] = run_bench(default_models, options)
    if importlib.util.find_spec("optimum") is not None:
        assert row["status"] == "not exported (run pgpt-export --default --dtype int8 --graph optimum)"
    assert row["decode_tok_s"] is None


def test_the_default_engines_are_those_that_can_run_and_the_rest_are_named() -> None:
    options = BenchOptions()
    skipped = not_measured(options)
    assert "onnxruntime-genai" not in options.chosen_engines()
    assert skipped["onnxruntime-genai"] in (GENAI_NO_MODEL, GENAI_NOT_INSTALLED)
    assert {"pgpt", "optimum", "torch"} <= set(options.chosen_engines())  # the export extra is installed
    if importlib.util.find_spec("llama_cpp") is None:
        assert skipped["llama.cpp"] == NOT_INSTALLED and "llama.cpp" not in options.chosen_engines()
    assert set(skipped).isdisjoint(options.chosen_engines())
    assert not_measured(BenchOptions(engines=("pgpt", "llama.cpp"))) == {}  # named engines get rows instead


def test_missing_exports_are_the_ones_the_rows_compare(default_models: Settings) -> None:
    # The session cache holds the fused fp32 and int8 exports, no int4 and no Optimum graph.
    needs = missing_exports(default_models, BenchOptions(dtypes=("fp32", "int8", "int4")))
    assert [n.folder for n in needs] == [
        "smollm2-135m-instruct-fp32-optimum", "smollm2-135m-instruct-int8-optimum",
        "smollm2-135m-instruct-int4", "smollm2-135m-instruct-int4-optimum"]
    assert missing_exports(default_models, BenchOptions(dtypes=("int8",), engines=("pgpt",))) == []


def test_a_fresh_model_cache_is_exported_with_progress_then_measured(default_models: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    fresh = dataclasses.replace(default_models, model_cache=tmp_path / "models", home=tmp_path / "home")
    messages: list[str] = []
    options = BenchOptions(dtypes=("fp32",), engines=("pgpt",), prompt_tokens=48, new_tokens=4, repeats=1)
    [row] = run_bench(fresh, options, progress=messages.append)
    assert row["status"] == "ok" and row["decode_tok_s"] > 0, row
    assert (fresh.model_cache / "smollm2-135m-instruct-fp32" / "manifest.json").is_file()
    assert messages[0] == "bench: exporting smollm2-135m-instruct-fp32 (1/1)"
    assert any(m.startswith("bench:   smollm2-135m-instruct-fp32: validate: ") for m in messages)  # the export's stages
    assert missing_exports(fresh, options) == []


def test_every_bench_option_is_described_in_help() -> None:
    from pgpt.tui.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("bench", "bench-chat", "bench-docs"):
        for action in sub.choices[name]._actions:
            assert action.help, (name, action.option_strings)
