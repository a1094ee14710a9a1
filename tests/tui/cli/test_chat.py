"""pgpt-tui headless commands on the real default model: chat, cache, models, doctor, tampering."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import cli_env
from pgpt.runtime.llm.chat import ChatEngine
from pgpt.runtime.models import DEFAULT_EMBEDDER, set_active_model
from pgpt.runtime.llm.sampling import SamplingOptions

QUESTION = "What is the capital of France?"


def tui_cli(settings, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                          env=cli_env(settings), timeout=600)


def test_chat_answers_paris_then_serves_it_from_the_cache(settings) -> None:  # type: ignore[no-untyped-def]
    first = tui_cli(settings, "chat", QUESTION, "--json", "--max-tokens", "48")
    assert first.returncode == 0, first.stderr
    answer = json.loads(first.stdout)
    assert "Paris" in answer["answer"] and answer["cached"] is False
    assert answer["provider"] == "cpu" and answer["model"].startswith("smollm2-135m-instruct")
    timings = answer["timings"]
    assert timings["ttft_s"] > 0 and timings["decode_tok_s"] > 0 and timings["new_tokens"] > 0
    second = json.loads(tui_cli(settings, "chat", QUESTION, "--json", "--max-tokens", "48").stdout)
    assert second["cached"] is True and second["answer"] == answer["answer"]


def test_streaming_output_is_plain_text(settings) -> None:  # type: ignore[no-untyped-def]
    result = tui_cli(settings, "chat", QUESTION, "--max-tokens", "24", "--no-cache")
    assert result.returncode == 0 and "Paris" in result.stdout and "{" not in result.stdout


def test_a_cache_hit_does_not_run_the_model(settings) -> None:  # type: ignore[no-untyped-def]
    engine = ChatEngine(settings)
    options = SamplingOptions(max_new_tokens=16)
    first = engine.ask(QUESTION, options)

    def refuse(*args: object) -> None:
        raise AssertionError("the ONNX session ran on a cache hit")

    engine.model.session.run_with_iobinding = refuse
    second = engine.ask(QUESTION, options)
    assert second.cached and second.answer == first.answer
    with pytest.raises(AssertionError, match="session ran"):
        engine.ask(QUESTION, SamplingOptions(max_new_tokens=17))  # other parameters: a miss
    engine.close()


def test_models_lists_dtype_quality_and_source(settings) -> None:  # type: ignore[no-untyped-def]
    result = tui_cli(settings, "models", "--json")
    models = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    llm = models["smollm2-135m-instruct-int8"]
    assert llm["dtype"] == "int8" and llm["quality"]["top1_agreement"] >= 0.9
    assert llm["source"].endswith(".gguf") and llm["size_mb"] > 50
    assert models[DEFAULT_EMBEDDER]["kind"] == "embedding"
    table = tui_cli(settings, "models").stdout
    assert "smollm2-135m-instruct-fp32" in table and "top-1" in table


def test_doctor_reports_runtime_and_folders(settings) -> None:  # type: ignore[no-untyped-def]
    report = json.loads(tui_cli(settings, "doctor", "--json").stdout)
    assert "CPUExecutionProvider" in report["onnxruntime"]["providers"]
    assert report["cpu"]["physical cores"] >= 1 and report["cpu"]["int8 matrix unit"]
    assert "writable" in report["folders"]["model cache (PGPT_MODEL_CACHE)"]


def test_a_tampered_model_is_refused(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = settings.model_cache / "smollm2-135m-instruct-int8"
    copy = tmp_path / "tampered"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns(".verified.json"))
    data = bytearray((copy / "tokenizer.json").read_bytes())
    data[100] = ord("x") if data[100] != ord("x") else ord("y")  # same size, other bytes
    (copy / "tokenizer.json").write_bytes(bytes(data))
    result = tui_cli(settings, "chat", "hi", "--model", str(copy))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: Model files damaged:" in result.stderr and "tokenizer.json" in result.stderr


def test_missing_model_gives_the_next_step(settings) -> None:  # type: ignore[no-untyped-def]
    result = tui_cli(settings, "chat", "hi", "--model", "no-such-model")
    assert result.returncode == 1 and "pgpt-export --default" in result.stderr


def test_active_model_can_be_switched(settings) -> None:  # type: ignore[no-untyped-def]
    set_active_model(settings, "smollm2-135m-instruct-fp32")
    result = json.loads(tui_cli(settings, "chat", "Say hi.", "--json", "--max-tokens", "4").stdout)
    assert result["model"] == "smollm2-135m-instruct-fp32"


def test_bad_provider_setting_exits_2(settings) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(settings) | {"PGPT_PROVIDER": "tpu"}
    result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "models"], capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "PGPT_PROVIDER" in result.stderr


@pytest.mark.parametrize("args, cause", [
    (["chat", "hi", "--max-tokens", "0"], "lowest allowed value is 1"),
    (["chat", "hi", "--top-k", "-1"], "lowest allowed value is 0"),
    (["search", "x", "-k", "0"], "lowest allowed value is 1"),
    (["ask", "x", "-k", "many"], "not a whole number"),
    (["bench", "--repeats", "0"], "lowest allowed value is 1"),
    (["chat", "hi", "--temperature", "nan"], "Temperature must be 0 (greedy) or more (got nan)"),
    (["chat", "hi", "--top-p", "2"], "Top-p must be above 0 and at most 1 (got 2.0)"),
    (["chat", "hi", "--repetition-penalty", "0"], "Repetition penalty must be above 0"),
])
def test_out_of_range_numbers_are_refused_before_any_work(settings, args: list[str], cause: str) -> None:  # type: ignore[no-untyped-def]
    result = tui_cli(settings, *args)
    assert result.returncode == 2 and cause in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
