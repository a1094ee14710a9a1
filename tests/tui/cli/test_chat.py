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
    # A cached answer said 0 completion tokens; it has as many as when it was written.
    assert second["timings"]["new_tokens"] == timings["new_tokens"]
    assert second["timings"]["prompt_tokens"] == timings["prompt_tokens"] and set(second["timings"]) == set(timings)


def test_streaming_output_is_plain_text(settings) -> None:  # type: ignore[no-untyped-def]
    result = tui_cli(settings, "chat", QUESTION, "--max-tokens", "24", "--no-cache")
    assert result.returncode == 0 and "Paris" in result.stdout and "{" not in result.stdout
    assert "cut" not in result.stderr  # a finished answer has no note


def test_an_answer_cut_at_the_token_limit_says_so(settings) -> None:  # type: ignore[no-untyped-def]
    cut = tui_cli(settings, "chat", "Describe Paris in detail.", "--max-tokens", "5", "--no-cache")
    assert cut.returncode == 0 and "cut" not in cut.stdout  # stdout keeps only the answer
    assert "(cut at the 5-token limit; --max-tokens allows a longer answer)" in cut.stderr, cut.stderr
    as_json = json.loads(tui_cli(settings, "chat", "Describe Paris in detail.", "--max-tokens", "5", "--json").stdout)
    assert as_json["finish_reason"] == "length" and as_json["repeated"] is False


def test_the_cut_note_starts_its_own_line_in_a_merged_output(settings) -> None:  # type: ignore[no-untyped-def]
    """A terminal (or `2>&1 | less`) shows stdout and stderr in one: the note came before stdout's last "\n"."""
    both = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "chat", "Describe Paris in detail.",
                           "--max-tokens", "5", "--no-cache"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env={**cli_env(settings), "PYTHONUNBUFFERED": ""}, timeout=600)
    assert both.returncode == 0 and "\n(cut at the 5-token limit;" in both.stdout, both.stdout


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


def test_an_answer_cached_without_its_token_count_counts_its_text(settings) -> None:  # type: ignore[no-untyped-def]
    """Entries written before the count was stored still report the answer's completion tokens."""
    engine = ChatEngine(settings)
    options = SamplingOptions(max_new_tokens=16)
    first = engine.stream([{"role": "user", "content": QUESTION}], options)
    answer = "".join(first)
    assert engine.cache is not None and engine.cache.get(first._key)["new_tokens"] == first.result.timings["new_tokens"]
    engine.cache.put(first._key, {"answer": answer, "prompt_tokens": first.result.timings["prompt_tokens"],
                                  "finish_reason": "stop"})  # the old entry's fields
    again = engine.ask(QUESTION, options)
    engine.close()
    assert again.cached and again.answer == answer
    assert again.timings["new_tokens"] == len(engine.model.tokenize(answer)) == first.result.timings["new_tokens"]


def test_models_lists_dtype_quality_and_source(settings) -> None:  # type: ignore[no-untyped-def]
    result = tui_cli(settings, "models", "--json")
    models = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    llm = models["smollm2-135m-instruct-int8"]
    assert llm["dtype"] == "int8" and llm["quality"]["top1_agreement"] >= 0.9
    assert llm["source"].endswith(".gguf") and llm["size_mb"] > 50
    assert models[DEFAULT_EMBEDDER]["kind"] == "embedding"
    assert llm["active"] and not models["smollm2-135m-instruct-fp32"]["active"]
    table = tui_cli(settings, "models").stdout
    assert "smollm2-135m-instruct-fp32" in table and "top-1" in table
    assert "* smollm2-135m-instruct-int8 " in table and "* the active chat model" in table


def test_doctor_reports_runtime_and_folders(settings) -> None:  # type: ignore[no-untyped-def]
    report = json.loads(tui_cli(settings, "doctor", "--json").stdout)
    assert "CPUExecutionProvider" in report["onnxruntime"]["providers"]
    assert report["onnxruntime"]["telemetry"] == "off (ORT_DISABLE_TELEMETRY=1)"  # its usage events (t50)
    assert report["cpu"]["physical cores"] >= 1 and report["cpu"]["int8 matrix unit"]
    assert "writable" in report["folders"]["model cache (PGPT_MODEL_CACHE)"]


def test_doctor_flags_a_hub_cache_under_a_file(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """HF_HOME=notes.txt/hf was "writable", exit 0: no folder can be made under a file."""
    from pgpt.runtime.doctor import folder_state

    (tmp_path / "notes.txt").write_text("not a folder")
    env = cli_env(settings) | {"HF_HOME": str(tmp_path / "notes.txt" / "hf")}
    result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "doctor", "--offline"], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"NOT writable ({tmp_path / 'notes.txt'} is a file, not a folder" in result.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ": writable," in folder_state(empty / "hub") and list(empty.iterdir()) == []  # the probe left nothing


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
    """A wrong name is a usage error (exit 2); the models there are are named with their kind, and
    the next step is to check the name, not to export the defaults that exist already."""
    result = tui_cli(settings, "chat", "hi", "--model", "no-such-model")
    assert result.returncode == 2 and "pgpt-tui models" in result.stderr and "--default" not in result.stderr
    assert f"{DEFAULT_EMBEDDER} (embedding)" in result.stderr and "(chat)" in result.stderr
    long_answer = tui_cli(settings, "chat", "hi", "--max-tokens", "100000")
    assert long_answer.returncode == 2 and "error: Answer length too large:" in long_answer.stderr  # a bad --max-tokens
    assert "Ask for at most" in long_answer.stderr and "Prompt too long" not in long_answer.stderr


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
    (["search", "x", "-k", "0"], "a search gives 1 to 100 results"),
    (["ask", "x", "-k", "many"], "not a whole number"),
    (["ask", "x", "-k", "1000"], "1000 is refused: an answer reads 1 to 20 passages"),
    (["bench", "--repeats", "0"], "lowest allowed value is 1"),
    (["chat", "hi", "--temperature", "nan"], "Temperature must be 0 (greedy) or more (got nan)"),
    (["chat", "hi", "--top-p", "2"], "Top-p must be above 0 and at most 1 (got 2.0)"),
    (["chat", "hi", "--repetition-penalty", "0"], "Repetition penalty must be above 0"),
])
def test_out_of_range_numbers_are_refused_before_any_work(settings, args: list[str], cause: str) -> None:  # type: ignore[no-untyped-def]
    result = tui_cli(settings, *args)
    assert result.returncode == 2 and cause in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one line, no usage block (t81)


def test_any_whole_number_is_a_seed(settings) -> None:  # type: ignore[no-untyped-def]
    """A negative seed crashed ("expected non-negative integer ... a bug in pgpt", exit 1); any whole
    number is a seed, kept modulo 2**64, so -1 and 2**64 - 1 give the same answer."""
    from pgpt.runtime.errors import ConfigError

    runs = [tui_cli(settings, "chat", "Tell me a story.", "--json", "--no-cache", "--max-tokens", "8",
                    "--temperature", "1", "--seed", seed) for seed in ("-1", str(2**64 - 1), str(10**30))]
    assert [run.returncode for run in runs] == [0, 0, 0], runs[0].stderr
    answers = [json.loads(run.stdout)["answer"] for run in runs]
    assert answers[0] and answers[0] == answers[1]
    assert SamplingOptions(seed=-1).seed == 2**64 - 1
    with pytest.raises(ConfigError, match="Seed must be a whole number"):
        SamplingOptions(seed=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("args, cause, step", [
    (["chat", "hi", "--model", DEFAULT_EMBEDDER], f"{DEFAULT_EMBEDDER} is an embedding model, not a chat model.",
     "Pick a chat model with --model NAME"),
    (["models", "--use", DEFAULT_EMBEDDER], f"{DEFAULT_EMBEDDER} is an embedding model, not a chat model.",
     "Choose a chat model"),
    (["search", "x", "--embedder", "smollm2-135m-instruct-int8"],
     "smollm2-135m-instruct-int8 is a chat model, not an embedding model.", "Pick an embedding model with --embedder"),
    (["--embedder", "smollm2-135m-instruct-int8", "ingest", "HOME"],
     "smollm2-135m-instruct-int8 is a chat model, not an embedding model.", "Pick an embedding model with --embedder"),
], ids=["chat-model", "models-use", "search-embedder", "ingest-embedder"])
def test_a_model_of_the_wrong_kind_is_a_usage_error(settings, args: list[str], cause: str, step: str) -> None:  # type: ignore[no-untyped-def]
    """It said "Model files damaged ... The folder was changed after export. Export the model again": false."""
    settings.home.mkdir(parents=True, exist_ok=True)
    result = tui_cli(settings, *[str(settings.home) if arg == "HOME" else arg for arg in args])
    assert result.returncode == 2 and f"Usage error: {cause}" in result.stderr, result.stderr
    assert step in result.stderr and "damaged" not in result.stderr and "Traceback" not in result.stderr


def test_every_option_of_chat_models_and_check_has_help() -> None:
    import argparse

    from pgpt.tui.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command in ("chat", "models", "check", "ask", "doctor"):
        assert [a.dest for a in sub.choices[command]._actions if not a.help] == [], command


def test_a_mistyped_option_names_the_command_and_the_nearest_option(capsys: pytest.CaptureFixture[str]) -> None:
    """`ingest docs --colection x` printed the top level's usage and "unrecognized arguments"."""
    from pgpt.tui.cli.main import main

    assert main(["ingest", "docs", "--colection", "x"]) == 2
    shown = capsys.readouterr().err.splitlines()
    assert shown[0].startswith("usage: pgpt-tui ingest ") and shown[-1] == (
        "Usage error: pgpt-tui ingest does not take --colection x. Did you mean --collection? "
        "See `pgpt-tui ingest --help`.")


@pytest.mark.parametrize("argv, said", [
    (["ask", "What", "is", "the", "MPL"], 'pgpt-tui ask takes its question as one argument: put it in quotes, '
                                         'pgpt-tui ask "What is the MPL" (or - to read it from standard input).'),
    (["search", "ASGI", "specification"], 'pgpt-tui search takes its query as one argument: put it in quotes, '
                                          'pgpt-tui search "ASGI specification".'),
    (["check", "not", "a", "repo"], "pgpt-tui check takes one Hugging Face repo id, such as "
                                    "HuggingFaceTB/SmolLM2-135M-Instruct, not the words 'not a repo'."),
    (["forget", "sp", "dir/my", "notes.txt"], 'pgpt-tui forget takes its path as one argument: put it in quotes, '
                                              'pgpt-tui forget "sp dir/my notes.txt".'),
])
def test_an_unquoted_question_is_told_to_be_quoted(argv: list[str], said: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`ask What is the MPL` said "ask does not take is the MPL", and `check not a repo` "check does not take a repo"."""
    from pgpt.tui.cli.main import main

    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"Usage error: {said}"


@pytest.mark.parametrize("text, cause", [
    ('{"active_model": 42}', '"active_model" must be a model name in quotes, not 42'),
    ('{"active_model": "smollm2-13', "it is not valid JSON"),
    ("[1]", "it holds no JSON object"),
], ids=["wrong-type", "truncated", "not-an-object"])
def test_a_damaged_config_file_is_named_and_models_use_repairs_it(settings, text: str, cause: str) -> None:  # type: ignore[no-untyped-def]
    """{"active_model": 42} crashed (AttributeError, "a bug in pgpt"); a truncated file was ignored
    without a word, and the user's model choice with it."""
    settings.home.mkdir(parents=True)
    settings.config_file.write_text(text)
    chat = tui_cli(settings, "chat", "hi", "--max-tokens", "2")
    assert chat.returncode == 2 and "Traceback" not in chat.stderr
    assert f"error: Invalid setting: The settings file {settings.config_file} is damaged: {cause}" in chat.stderr
    assert "pgpt-tui models --use NAME" in chat.stderr and "delete it" in chat.stderr
    assert settings.config_file.read_text() == text  # nothing rewrote it behind the user's back
    listed = tui_cli(settings, "models")  # it listed the models without a word and marked none
    assert listed.returncode == 0 and "smollm2-135m-instruct-fp32" in listed.stdout
    assert f"warning: Invalid setting: The settings file {settings.config_file} is damaged: {cause}" in listed.stderr
    used = tui_cli(settings, "models", "--use", "smollm2-135m-instruct-fp32", "--wait", "0")
    assert used.returncode == 0, used.stderr
    assert json.loads(settings.config_file.read_text())["active_model"] == "smollm2-135m-instruct-fp32"


def test_a_config_naming_a_missing_or_embedding_model_names_the_file(settings) -> None:  # type: ignore[no-untyped-def]
    settings.home.mkdir(parents=True)
    settings.config_file.write_text('{"active_model": "nosuch"}')
    missing = tui_cli(settings, "chat", "hi")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"{settings.config_file} names 'nosuch' as the active chat model, but there is no exported model" \
        in missing.stderr and "pgpt-tui models --use NAME" in missing.stderr
    settings.config_file.write_text(json.dumps({"active_model": DEFAULT_EMBEDDER}))
    wrong = tui_cli(settings, "chat", "hi")
    assert wrong.returncode == 2 and f"{settings.config_file} names '{DEFAULT_EMBEDDER}'" in wrong.stderr
    assert "is an embedding model, not a chat model" in wrong.stderr


@pytest.mark.parametrize("variable", ["PGPT_HOME", "PGPT_MODEL_CACHE"])
def test_a_file_where_a_data_folder_belongs_is_a_setting_error(settings, tmp_path: Path, variable: str) -> None:  # type: ignore[no-untyped-def]
    """PGPT_HOME pointing at a file said "System error: [Errno 17] File exists ... Check free disk space"."""
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    for path, what in ((file, "is a file, not a folder"), (file / "sub", f"is inside {file}, which is a file")):
        env = cli_env(settings) | {variable: str(path)}
        result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "chat", "hi"], capture_output=True,
                                text=True, env=env, timeout=120)
        assert result.returncode == 2 and f"error: Invalid setting: {variable} ({path}) {what}" in result.stderr
        assert f"Point {variable} at a folder" in result.stderr
        assert "Traceback" not in result.stderr and "Errno" not in result.stderr


def test_chat_on_a_terminal_says_what_it_does_before_the_first_word(settings) -> None:  # type: ignore[no-untyped-def]
    """`chat` showed nothing while the model loaded and read the prompt (14 s of a blank screen with
    a 1.5B model looked hung over SSH, t53); `ask` said so."""
    from support import stderr_on_a_terminal

    code, out, shown = stderr_on_a_terminal(["chat", "Say hi", "--max-tokens", "4", "--no-cache"],
                                            {**cli_env(settings), "COLUMNS": "60"})
    assert code == 0 and out.strip()
    assert shown.index("loading the model…") < shown.index("reading the prompt…"), shown
    assert ("\r" + " " * 59 + "\r(cut at the 4-token limit") in shown, repr(shown[-80:])  # cleared before it
