"""Bad input and damaged models on the command line (probe rows 3.7, 4.1, 4.6, 4.11, 4.12, 4.13, 6.6)."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hostile_files import ESCAPES
from pgpt.runtime.settings import Settings
from support import cli_env

RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def tui_cli(settings: Settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                          env=cli_env(settings), input=stdin, timeout=600)


@pytest.mark.parametrize("args, stdin", [
    (["chat", ""], None), (["chat", "   "], None), (["ask", ""], None), (["search", ""], None),
    (["chat", "-"], ""), (["ask", "-"], " \n\t\n"), (["search", "-"], ""),
], ids=["chat", "chat-blank", "ask", "search", "chat-stdin", "ask-stdin", "search-stdin"])
def test_an_empty_prompt_is_a_usage_error(settings: Settings, args: list[str], stdin: str | None) -> None:
    """Probe 4.1: `chat ""` invented an answer with exit 0; `search ""` asked "Is anything indexed?"."""
    done = tui_cli(settings, *args, stdin=stdin)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("Usage error: Nothing to do:") and "empty" in done.stderr
    if stdin is None:
        assert "`-` to read it from standard input" in done.stderr
    else:  # `-` was used: the pipe was empty (it advised `-` to someone who had used it)
        assert "standard input was empty" in done.stderr and "Pipe the" in done.stderr



def test_a_mistyped_command_is_named_with_the_closest_one(capsys: pytest.CaptureFixture[str]) -> None:
    """`pgpt-tui injest docs` listed all 15 commands and guessed none (t84)."""
    from pgpt.tui.cli.main import main

    assert main(["injest", "docs"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("Usage error: pgpt-tui: no command named 'injest'; did you mean ingest? (commands: ")
    assert len(error.strip().splitlines()) == 1 and "invalid choice" not in error
    assert main(["zzz"]) == 2
    error = capsys.readouterr().err
    assert "no command named 'zzz' (commands: chat, " in error and "did you mean" not in error

def test_a_prompt_on_standard_input_needs_no_argument(settings: Settings, tmp_path: Path) -> None:
    """Probe 4.6: a 1 MB question could not be passed at all (Linux refuses an argument over 128 KiB)."""
    answer = tui_cli(settings, "chat", "-", "--json", "--max-tokens", "24", stdin="What is the capital of France?\n")
    assert answer.returncode == 0 and "Paris" in json.loads(answer.stdout)["answer"]
    huge = tui_cli(settings, "chat", "-", "--no-cache", stdin="Tell me about the weather in Paris. " * 30_000)
    assert huge.returncode == 1 and "error: Prompt too long:" in huge.stderr, huge.stderr  # 1.1 MB reached pgpt
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "zephyr.txt").write_text("The launch code of project Zephyr is 7341.\n")
    assert tui_cli(settings, "ingest", str(tmp_path / "docs")).returncode == 0
    asked = tui_cli(settings, "ask", "-", "--json", "--max-tokens", "16",
                    stdin="What is the launch code of project Zephyr?\n")
    assert asked.returncode == 0 and json.loads(asked.stdout)["sources"][0]["source"].endswith("zephyr.txt")


def test_model_text_reaches_the_terminal_clean_and_json_escaped(settings: Settings) -> None:
    """Probe 3.7: model text with escape sequences and C1 controls (served here from the answer
    cache, the way a cached answer is shown) is stripped on the terminal and escaped in JSON."""
    from pgpt.runtime.llm.answer_cache import cache_key
    from pgpt.runtime.llm.chat import ChatEngine
    from pgpt.runtime.llm.sampling import SamplingOptions

    engine = ChatEngine(settings)
    options = SamplingOptions(max_new_tokens=32)  # what the CLI builds for --max-tokens 32
    prompt = engine.model.render_prompt([{"role": "user", "content": "Show the escapes."}])
    engine.cache.put(cache_key(model=engine.model.model_id, prompt=prompt, params=options.as_key()),  # type: ignore[union-attr]
                     {"answer": ESCAPES, "prompt_tokens": 9})
    engine.close()
    plain = tui_cli(settings, "chat", "Show the escapes.", "--max-tokens", "32")
    assert plain.returncode == 0 and "Clear  screen." in plain.stdout
    assert not RAW.search(plain.stdout.replace("\n", "")) and "cHduZWQ" not in plain.stdout
    as_json = tui_cli(settings, "chat", "Show the escapes.", "--max-tokens", "32", "--json")
    assert not RAW.search(as_json.stdout.replace("\n", ""))
    assert json.loads(as_json.stdout)["answer"] == ESCAPES  # the text itself is kept


def _cache_copy(settings: Settings, tmp_path: Path, *names: str) -> Settings:
    import dataclasses

    cache = tmp_path / "models"
    for name in names:  # copies, not links: verify_folder refuses hard links
        shutil.copytree(settings.model_cache / name, cache / name, ignore=shutil.ignore_patterns(".verified.json"))
    return dataclasses.replace(settings, model_cache=cache)


@pytest.mark.slow
def test_a_damaged_manifest_is_named_listed_and_deletable(settings: Settings, tmp_path: Path) -> None:
    """Probe 4.12: a broken manifest.json made a loop: chat said "export", export said "already
    exported", `models` hid the folder and `models --delete` refused it."""
    copy = _cache_copy(settings, tmp_path, "smollm2-135m-instruct-int8", "all-minilm-l6-v2-int8")
    folder = copy.model_cache / "smollm2-135m-instruct-int8"
    (folder / "manifest.json").write_text('{"format_version": 1, "files": [')
    chat = tui_cli(copy, "chat", "Say hi", "--max-tokens", "4")
    assert chat.returncode == 1 and "error: Model files damaged: No usable chat model:" in chat.stderr
    assert "pgpt-tui models --delete smollm2-135m-instruct-int8" in chat.stderr
    listing = tui_cli(copy, "models")
    assert "damaged: smollm2-135m-instruct-int8" in listing.stdout and "--delete" in listing.stdout
    assert json.loads(tui_cli(copy, "models", "--json").stdout)["damaged"][0]["name"] == "smollm2-135m-instruct-int8"
    deleted = tui_cli(copy, "models", "--delete", "smollm2-135m-instruct-int8")
    assert deleted.returncode == 0 and not folder.exists(), deleted.stderr
    doctor = json.loads(tui_cli(copy, "doctor", "--offline", "--json").stdout)
    assert doctor["folders"]["damaged models"] == "none"


def test_doctor_and_models_name_a_model_whose_file_was_edited(settings: Settings, tmp_path: Path) -> None:
    """An edited generation_config.json: chat failed ("has 8 bytes, the manifest says 132") while
    `doctor` said "damaged models: none" and exited 0 (t63). Sizes are checked without hashing."""
    copy = _cache_copy(settings, tmp_path, "smollm2-135m-instruct-int8", "all-minilm-l6-v2-int8")
    edited = copy.model_cache / "smollm2-135m-instruct-int8" / "generation_config.json"
    edited.write_text('{"x":1}\n')
    doctor = tui_cli(copy, "doctor", "--offline", "--json")
    damaged = json.loads(doctor.stdout)["folders"]["damaged models"]
    assert doctor.returncode == 1 and damaged.startswith("smollm2-135m-instruct-int8 (generation_config.json in ")
    assert "has 8 bytes, the manifest says" in damaged and "pgpt-tui models --delete smollm2-135m-instruct-int8" in damaged
    [listed] = json.loads(tui_cli(copy, "models", "--json").stdout)["damaged"]
    assert listed["name"] == "smollm2-135m-instruct-int8"


@pytest.mark.slow
def test_export_default_replaces_a_tampered_default_model(settings: Settings, tmp_path: Path) -> None:
    """Probe 4.11: after a flipped byte in model.onnx, `pgpt-export --default` said "already
    exported" and chat kept failing; an explicit export said "Output folder exists"."""
    from pgpt.runtime.manifest import folder_problem

    copy = _cache_copy(settings, tmp_path, "smollm2-135m-instruct-int8", "all-minilm-l6-v2-int8")
    folder = copy.model_cache / "all-minilm-l6-v2-int8"
    with open(folder / "model.onnx", "r+b") as handle:
        handle.seek(2000)
        byte = handle.read(1)
        handle.seek(2000)
        handle.write(bytes([byte[0] ^ 1]))
    search = tui_cli(copy, "search", "anything")
    assert search.returncode == 1 and "does not match the sha256" in search.stderr
    assert "pgpt-tui models --delete all-minilm-l6-v2-int8" in search.stderr
    export = subprocess.run([sys.executable, "-m", "pgpt.export.cli", "--default"], capture_output=True, text=True,
                            env=cli_env(copy), timeout=900)
    assert export.returncode == 0, export.stderr
    assert "ready: " + str(copy.model_cache / "smollm2-135m-instruct-int8") + " (already exported)" in export.stdout
    assert f"{folder} is damaged" in export.stderr and "replaces it" in export.stderr
    assert folder_problem(folder) == "" and not list(copy.model_cache.glob(".*tmp*"))
    repaired = tui_cli(copy, "search", "anything")  # the embedder loads; nothing is indexed in this home
    assert repaired.returncode == 2 and "Nothing is indexed yet" in repaired.stderr, repaired.stderr


def test_export_default_refuses_an_output_folder(settings: Settings, tmp_path: Path) -> None:
    """Probe 4.13: `pgpt-export --default -o DIR` ignored -o and said "already exported"."""
    done = subprocess.run([sys.executable, "-m", "pgpt.export.cli", "--default", "--dtype", "int4", "-o",
                           str(tmp_path / "x")], capture_output=True, text=True, env=cli_env(settings), timeout=120)
    assert done.returncode == 2 and "-o cannot be used with --default" in done.stderr
    assert "PGPT_MODEL_CACHE" in done.stderr and not (tmp_path / "x").exists()


def test_the_progress_line_shows_names_clean_and_overwrites_a_longer_one() -> None:
    """Probe 3.8: the progress line wrote a file name with ESC[2J and OSC 52 raw (in tmux it cleared
    the screen and set the clipboard); 3.10: a newline in a name split the line."""
    import io

    from hostile_files import ESCAPE_NAME
    from pgpt.tui.cli.text_bar import TextBar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    bar = TextBar(terminal)
    bar.draw(1, 3, "1/3 files", 2.0, ESCAPE_NAME)
    bar.draw(2, 3, "2/3 files", 1.0, "z.txt")
    bar.draw(3, 3, "3/3 files", 0.0, "new\nline.txt")
    bar.close()
    shown = terminal.getvalue()
    assert not RAW.search(shown.replace("\r", "").replace("\n", "")) and "cHduZWQ" not in shown
    lines = shown.strip("\n").split("\r")[1:]
    assert "m_escname.txt" in lines[0] and len(lines[1]) == len(lines[0])  # padded over the longer name
    assert lines[2].endswith("new line.txt") and shown.count("\n") == 1


def test_the_bar_is_cut_to_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """A line longer than the terminal wrapped, and \r redrew only its second row: ".md" of a longer
    file name stayed at the end of a tester's 100-column tmux line."""
    import io
    import os

    from pgpt.tui.cli.text_bar import TextBar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

        def fileno(self) -> int:
            return 99

    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((60, 20)))
    terminal = Terminal()
    bar = TextBar(terminal)
    bar.draw(1, 3, "1450/2674 files 924 chunks", 549.0, "very-long-folder-name/quarterly-report-with-a-long-name.md")
    bar.draw(2, 3, "1451/2674 files 925 chunks", 548.0, "metrics-006.csv")
    lines = terminal.getvalue().split("\r")[1:]
    assert all(len(line) <= 59 for line in lines), lines
    assert lines[1].rstrip().endswith("1451/2674 files 925 chunks ETA  548s")  # the file name gave way first
    # the bar narrows before the name goes, and a long name keeps its end: the count inside the file
    # was dropped for a 27-minute file on a 100-column terminal (t53)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((100, 30)))
    bar.draw(0, 1, "0/1 files 2048 chunks", 1594.0, "documents/archive/2026/big20-export.txt (2048/42867 chunks of it)")
    last = terminal.getvalue().split("\r")[-1].rstrip()
    assert len(last) <= 99 and last.endswith("big20-export.txt (2048/42867 chunks of it)") and "…" in last, last
    # counted in cells: each CJK character takes two, and such a line wrapped and stayed on screen (t54)
    from rich.cells import cell_len

    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((80, 24)))
    bar.draw(0, 4, "0/4 files 0 chunks", None, "Café Ærøskøbing – notes é 日本の営業時間と店長の名前について.md")
    bar.draw(1, 4, "1/4 files 3 chunks", 9.0, "b.md")
    cjk, after = terminal.getvalue().split("\r")[-2:]
    assert cell_len(cjk) <= 79 and cjk.rstrip().endswith("について.md"), cjk
    assert cell_len(after) >= cell_len(cjk.rstrip()), after  # padded over it


def test_a_log_gets_a_progress_line_while_one_large_file_holds_the_bar_still(monkeypatch: pytest.MonkeyPatch) -> None:
    """Piped to a log, the bar wrote a line only when it moved a step: 2.5 minutes of silence on a 4 MB file."""
    import io
    import time

    from pgpt.tui.cli import text_bar

    monkeypatch.setattr(text_bar, "LOG_EVERY_S", 0.05)
    log = io.StringIO()
    bar = text_bar.TextBar(log)
    bar.draw(51, 66, "51/66 files", 90.0, "big.txt (1024/8728 chunks of it)")
    bar.draw(51, 66, "51/66 files", 80.0, "big.txt (1536/8728 chunks of it)")  # the same step: no line
    time.sleep(0.06)
    bar.draw(51, 66, "51/66 files", 70.0, "big.txt (2048/8728 chunks of it)")  # but time has passed
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith("(1024/8728 chunks of it)")
    assert lines[1].endswith("(2048/8728 chunks of it)")


def test_the_ingest_eta_counts_bytes_not_files(tmp_path: Path) -> None:
    """By files, a 4 MB file after 51 small ones read "ETA 10s" with 90 s to go."""
    import time

    from pgpt.runtime.documents.progress import WorkShares, tick

    paths = []
    for name, size in (("a.txt", 100), ("b.txt", 100), ("big.txt", 9800)):
        (tmp_path / name).write_bytes(b"x" * size)
        paths.append(tmp_path / name)
    shares = WorkShares(paths)
    assert shares(2) == pytest.approx(0.02) and shares(2, 0.5) == pytest.approx(0.51)
    first = tick(2, 3, "big.txt", 0, time.perf_counter() - 2.0, share=shares(2))
    assert first.eta_s == pytest.approx(98.0, rel=0.05)  # 2 s for 2 % of the bytes
    # 0.01% of the bytes after 3 s (the reader starting, a first batch of a large file) read ETA 30,000 s
    assert tick(0, 3, "big.txt", 0, time.perf_counter() - 3.0, share=0.0001).eta_s is None


@pytest.mark.parametrize("typed, cause", [
    ("hf_Zq81", "That token is too short: 7 characters, where a Hugging Face token has 37"),
    ("\n", "No token was given: the input was empty."),
    ("hf_Zq81k Pasted" + "x" * 30, "That does not look like a Hugging Face token (letters, digits, _ and -, no "
                                   "spaces)."),
    ("hf_Zq81k" + "x" * 300, "That is too long for a Hugging Face token: 308 characters"),
], ids=["short", "empty", "space", "long"])
def test_token_set_says_what_is_wrong_with_the_text_and_never_shows_it(settings: Settings, typed: str,
                                                                       cause: str) -> None:
    """A token that lost its end was told "letters, digits, _ and -", which it had."""
    done = tui_cli(settings, "token", "set", "--stdin", stdin=typed)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: Invalid setting: {cause}")
    assert "huggingface.co/settings/tokens" in done.stderr
    assert "hf_Zq81" not in done.stderr and not (settings.home / "hf_token").exists()


def test_bytes_that_are_no_utf8_an_empty_path_and_a_path_as_name(settings: Settings, tmp_path: Path) -> None:
    """A Latin-1 prompt piped in or given as an argument was "Unexpected error ... a bug in pgpt";
    `ingest ''` indexed the current folder and `forget ''` forgot it; `pgpt-export --name
    ../../evil` wrote /evil-int8 outside the model cache."""
    env = cli_env(settings)
    latin = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "chat", "-", "--max-tokens", "2", "--no-cache"],
                           capture_output=True, input="caf\xe9 au lait".encode("latin-1"), env=env, timeout=600)
    assert latin.returncode == 0 and b"Traceback" not in latin.stderr and b"Unexpected" not in latin.stderr
    # not silently: "café" became "caf�" and the question "not found" without a word (t54)
    assert "standard input is not UTF-8: 1 character could not be read and was replaced" in latin.stderr.decode()
    argument = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "chat", b"caf\xe9", "--max-tokens", "2",
                               "--no-cache"], capture_output=True, env=env, timeout=600)
    assert argument.returncode == 0 and b"Unexpected" not in argument.stderr, argument.stderr
    for command in ("ingest", "forget"):
        empty = tui_cli(settings, command, "")
        assert empty.returncode == 2 and "an empty path is refused" in empty.stderr, empty.stderr
    outside = tmp_path / "evil"
    for name in (f"../../{outside.name}", str(outside), "bad\x1b[31mname"):
        refused = subprocess.run([sys.executable, "-m", "pgpt.export.cli", "model.gguf", "--name", name],
                                 capture_output=True, text=True, env=env, timeout=600)
        assert refused.returncode == 2 and "is not a model name" in refused.stderr and "\x1b" not in refused.stderr
    assert not list(tmp_path.parent.glob("evil*")) and not list(tmp_path.glob("evil*"))


def test_a_damaged_index_is_named_and_the_way_out_loses_nothing(settings: Settings, tmp_path: Path) -> None:
    """A table manifest cut short (a crash, a full disk) gave "Unexpected error: RuntimeError: lance
    error ... a bug in pgpt" on every command, and doctor advised --reindex, which drops the
    documents of other folders from the new table."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text("The ferry to the island leaves at noon every Tuesday.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    manifests = sorted((settings.home / "index").rglob("_versions/*.manifest"), key=lambda p: p.stat().st_mtime)
    with manifests[-1].open("r+b") as newest:
        newest.truncate(100)
    damaged = tui_cli(settings, "search", "ferry")
    assert damaged.returncode == 1 and damaged.stderr.startswith("error: Index damaged: The document index cannot"), \
        damaged.stderr
    assert "mv FOLDER FOLDER.damaged" in damaged.stderr and "bug" not in damaged.stderr
    doctor = tui_cli(settings, "doctor", "--offline")
    assert doctor.returncode == 1 and ".damaged) and add your documents again" in doctor.stdout + doctor.stderr


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_a_terminal_that_cannot_show_the_text_gets_escapes_not_a_crash(settings: Settings, tmp_path: Path,
                                                                       encoding: str) -> None:
    """A latin-1 locale (or PYTHONIOENCODING=ascii in a cron job): a Chinese passage failed as "a bug in
    pgpt", and `--json` printed an error instead of its results (t50)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "city.txt").write_text("上海 is the harbour city where the ferry company has its head office.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    env = {**cli_env(settings), "PYTHONIOENCODING": encoding}
    run = functools.partial(subprocess.run, capture_output=True, env=env, timeout=300)
    shown = run([sys.executable, "-m", "pgpt.tui.cli.main", "search", "-k", "1", "harbour city head office"])
    assert shown.returncode == 0, shown.stderr
    assert b"\\u4e0a\\u6d77 is the harbour city" in shown.stdout  # the characters it cannot write, as escapes
    data = run([sys.executable, "-m", "pgpt.tui.cli.main", "search", "-k", "1", "--json", "harbour city head office"])
    assert data.returncode == 0, data.stderr
    data.stdout.decode("ascii")  # JSON escapes everything that is not ASCII: valid in any encoding
    assert json.loads(data.stdout)["results"][0]["text"].startswith("上海 is the harbour city")


def test_closed_or_full_standard_streams_are_named_not_a_bug(settings: Settings, tmp_path: Path) -> None:
    """Cron and daemons start commands with stdin or stdout closed, or write a log on a full disk:
    "AttributeError: 'NoneType' object has no attribute 'buffer'" was "a bug in pgpt", and /dev/full
    a "Disk full" about PGPT_HOME (t50)."""
    import shlex

    command = shlex.join([sys.executable, "-m", "pgpt.tui.cli.main", "search", "-k", "1"])
    for redirect, code, words in (("- <&-", 2, "standard input was empty"), ("ferry >&-", 2, "standard output is closed (>&-)"),
                                  ("ferry --json > /dev/full", 2, "Nothing is indexed")):
        done = subprocess.run(["bash", "-c", f"{command} {redirect}"], capture_output=True, text=True,
                              env=cli_env(settings), timeout=300)
        assert done.returncode == code and words in done.stderr and "bug in pgpt" not in done.stderr, done.stderr
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text("The ferry leaves at noon.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    full = subprocess.run(["bash", "-c", f"{command} ferry > /dev/full"], capture_output=True, text=True,
                          env=cli_env(settings), timeout=300)
    assert full.returncode == 1 and full.stderr.startswith("error: Cannot write the output: "), full.stderr
    assert "PGPT_HOME" not in full.stderr and "Traceback" not in full.stderr
