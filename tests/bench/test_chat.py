"""`pgpt-tui bench-chat` on the real default model: both modes read the same prompts, and only
the kept mode reuses the previous turns."""

from __future__ import annotations

import json
import subprocess
import sys

from support import cli_env
from pgpt.bench.chat import format_results, run_chat_bench


def test_both_modes_time_the_same_conversation(settings) -> None:  # type: ignore[no-untyped-def]
    results = run_chat_bench(settings, "smollm2-135m-instruct-int8", turns=3, repeats=2, new_tokens=12)
    first, *later = results["turns"]
    assert first["reused_prompt_tokens"] == 0 and len(later) == 2
    previous = first["prompt_tokens"]
    for row in later:
        # the kept buffer holds the whole conversation before the new message
        assert previous < row["reused_prompt_tokens"] < row["prompt_tokens"]
        assert row["ttft_s"]["kept"] > 0 and row["ttft_s"]["full"] > 0
        previous = row["prompt_tokens"]
    assert results["summary"]["ttft_speedup"] > 0
    assert "turns 2+" in format_results(results)


def test_the_command_prints_json(settings) -> None:  # type: ignore[no-untyped-def]
    done = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "bench-chat", "--json", "--turns", "2",
                           "--repeats", "1", "--new-tokens", "4", "--model", "smollm2-135m-instruct-int8"],
                          capture_output=True, text=True, env=cli_env(settings), timeout=600)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [row["turn"] for row in out["turns"]] == [1, 2] and out["repeats"] == 1
    assert out["model"] == "smollm2-135m-instruct-int8" and "KV buffer kept" in done.stderr


def test_an_unknown_model_is_one_clear_line(settings) -> None:  # type: ignore[no-untyped-def]
    done = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "bench-chat", "--model", "no-such-model"],
                          capture_output=True, text=True, env=cli_env(settings), timeout=600)
    assert done.returncode != 0 and "no-such-model" in done.stderr and "Traceback" not in done.stderr


def test_more_turns_than_questions_is_refused_before_any_work(settings) -> None:  # type: ignore[no-untyped-def]
    """--turns 7 ran 6 turns without a word."""
    done = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "bench-chat", "--turns", "7"],
                          capture_output=True, text=True, env=cli_env(settings), timeout=60)
    assert done.returncode == 2 and "7 is refused: the chat benchmark has 6 questions" in done.stderr
