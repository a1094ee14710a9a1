"""pgpt-tui's settings as a user sets them: misspelled PGPT_ names are named (never their values),
the working folder's .env is read as pgpt-serve reads it, and a model setting names its source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pgpt.runtime.settings import Settings
from support import cli_env


def tui_cli(settings: Settings, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                            env={**cli_env(settings), **env}, cwd=cwd, timeout=600)
    assert "Traceback" not in result.stderr
    return result


def test_misspelled_names_are_warned_about_once_without_their_values(settings: Settings, tmp_path: Path) -> None:
    """PGPT_MODLE=... pgpt-tui chat answered with the active model, PGPT_THREAD=1 was ignored: not a word."""
    (tmp_path / ".env").write_text("PGPT_THREDS=2\n")
    result = tui_cli(settings, tmp_path, "models", PGPT_MODLE="sk-do-not-show-me", PGPT_THREAD="1",
                     PGPT_UPDATE_SNAPSHOTS="0")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: PGPT_MODLE is not a pgpt setting (did you mean PGPT_MODEL?); it is ignored",
        "warning: PGPT_THREAD is not a pgpt setting (did you mean PGPT_THREADS?); it is ignored",
        f"warning: PGPT_THREDS in {tmp_path / '.env'} is not a pgpt setting (did you mean PGPT_THREADS?); "
        "it is ignored"]
    assert "sk-do-not-show-me" not in result.stdout + result.stderr + settings.log_file.read_text()
    assert "PGPT_MODLE" not in result.stdout  # stdout keeps only what the command prints


def test_pgpt_settings_in_dotenv_are_read_and_their_errors_say_so(settings: Settings, tmp_path: Path) -> None:
    """`.env` with PGPT_MODEL=nosuch-from-dotenv: pgpt-tui chat answered normally (pgpt-serve read it)."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("PGPT_MODEL=nosuch-from-dotenv\n")
    missing = tui_cli(settings, tmp_path, "chat", "hi")
    assert missing.returncode != 0 and missing.stdout == ""
    assert missing.stderr.startswith(f"error: Model not found: PGPT_MODEL (set in {dotenv}) names a model that is "
                                     "not exported. There is no exported model called 'nosuch-from-dotenv'"), \
        missing.stderr
    dotenv.write_text("PGPT_THREADS=abc\n")
    bad = tui_cli(settings, tmp_path, "models")
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"error: Invalid setting: PGPT_THREADS='abc' is not a whole number. (PGPT_THREADS is "
                                 f"set in {dotenv}.)"), bad.stderr
    assert tui_cli(settings, tmp_path, "models", PGPT_THREADS="1").returncode == 0  # the environment wins


def test_an_embedder_that_is_not_exported_names_the_setting(settings: Settings, tmp_path: Path) -> None:
    """PGPT_EMBEDDER=nosuch said "There is no exported model called 'nosuch'" without naming the
    variable, where PGPT_MODEL=nosuch names it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text("The ferry to the island leaves at seven every morning.\n")
    assert tui_cli(settings, tmp_path, "ingest", str(docs)).returncode == 0
    by_variable = tui_cli(settings, tmp_path, "search", "ferry", PGPT_EMBEDDER="nosuch")
    assert by_variable.returncode != 0
    assert by_variable.stderr.startswith("error: Model not found: PGPT_EMBEDDER names a model that is not exported. "
                                         "There is no exported model called 'nosuch'"), by_variable.stderr
    by_option = tui_cli(settings, tmp_path, "search", "ferry", "--embedder", "nosuch")
    assert by_option.stderr.startswith("error: Model not found: --embedder names a model that is not exported. "), \
        by_option.stderr


def test_a_model_named_before_the_command_is_the_apps_model_as_pgpt_model(settings: Settings, tmp_path: Path) -> None:
    """`pgpt-tui --model NAME` (starting the app on another model) was "invalid choice: 'NAME'";
    PGPT_MODEL worked. Named before a command, it is that command's model too."""
    import json

    chosen = tui_cli(settings, tmp_path, "--model", "smollm2-135m-instruct-fp32", "chat", "Hi", "--max-tokens", "2",
                     "--json")
    assert chosen.returncode == 0 and json.loads(chosen.stdout)["model"] == "smollm2-135m-instruct-fp32", chosen.stderr
    missing = tui_cli(settings, tmp_path, "--model", "nosuch", "chat", "Hi")
    assert missing.stderr.startswith("error: Model not found: --model names a model that is not exported. "), \
        missing.stderr
    assert "Leave out --model to use the active chat model" in missing.stderr and "PGPT_MODEL" not in missing.stderr
    by_env = tui_cli(settings, tmp_path, "chat", "Hi", PGPT_MODEL="nosuch")
    assert "Unset PGPT_MODEL to use the active chat model" in by_env.stderr, by_env.stderr  # it said "pgpt_model"


async def test_the_app_shows_the_warning_in_a_notification(tmp_path: Path) -> None:
    """stderr's warning is hidden under the app's screen: the app notifies it too."""
    from pgpt.tui.chat.app import ChatApp

    app = ChatApp(Settings(home=tmp_path / "home", model_cache=tmp_path / "empty"))
    app.setting_warnings = ("PGPT_MODLE is not a pgpt setting (did you mean PGPT_MODEL?); it is ignored",)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        shown = [(n.title, n.message) for n in app._notifications]
        assert ("Setting ignored", app.setting_warnings[0]) in shown, shown


def test_help_says_where_settings_are_read() -> None:
    shown = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "--help"], capture_output=True, text=True,
                           timeout=60).stdout
    assert ".env file of the working folder (the environment wins)" in " ".join(shown.split())
