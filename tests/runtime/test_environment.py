"""The PGPT_ names pgpt reads, the warning for any other, and the .env file's values and errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pgpt.runtime.environment import KNOWN_NAMES, read_environment
from pgpt.runtime.errors import ConfigError
from pgpt.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# PGPT_TUI is a constant of the tests and scripts (the path of the pgpt-tui command), no variable.
NOT_VARIABLES = {"PGPT_TUI"}


def test_the_known_names_are_every_pgpt_name_the_sources_read() -> None:
    """The list is kept by hand where pgpt-tui can import it; a setting added to a program, or a
    test's variable, must join it (or pgpt warns that it is "not a pgpt setting")."""
    found = set()
    for path in [*ROOT.glob("*/**/*.py"), *ROOT.glob("scripts/*")]:
        if path.is_file() and ".venv" not in path.parts:
            text = path.read_text(errors="replace")
            if "is not a pgpt setting" not in text:  # the tests of the warning misspell names on purpose
                found |= set(re.findall(r"\bPGPT_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert found - NOT_VARIABLES == KNOWN_NAMES


def test_a_misspelled_name_is_named_with_the_one_it_probably_means(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PGPT_THREDS=2\nPGPT_PORT=9000\nPGPT_PARALEL=2\nHF_TOKEN=hf_x\n")
    env = read_environment(tmp_path, {"PGPT_MODLE": "sk-secret-value", "PGPT_THREAD": "1", "PGPT_HOME": "/h",
                                       "PGPT_TEST_MODEL_CACHE": "/m", "PGPT_UPDATE_SNAPSHOTS": "1", "PGPT_ZZZ": "1"})
    assert env.warnings() == [
        "PGPT_MODLE is not a pgpt setting (did you mean PGPT_MODEL?); it is ignored",
        "PGPT_THREAD is not a pgpt setting (did you mean PGPT_THREADS?); it is ignored",
        "PGPT_ZZZ is not a pgpt setting; it is ignored",
        f"PGPT_PARALEL in {tmp_path / '.env'} is not a pgpt setting (did you mean PGPT_PARALLEL?); it is ignored",
        f"PGPT_THREDS in {tmp_path / '.env'} is not a pgpt setting (did you mean PGPT_THREADS?); it is ignored",
    ]
    assert "HF_TOKEN" not in env.values and env.values["PGPT_PORT"] == "9000"


def test_the_environment_wins_over_dotenv_and_a_bad_dotenv_value_says_where_it_is(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PGPT_THREADS=abc\nPGPT_MODEL=from-dotenv\nPGPT_CACHE_SIZE_MB=lots\n")
    env = read_environment(tmp_path, {"PGPT_CACHE_SIZE_MB": "64", "PGPT_HOME": str(tmp_path / "home")})
    assert env.values["PGPT_CACHE_SIZE_MB"] == "64" and env.from_dotenv == {"PGPT_THREADS", "PGPT_MODEL"}
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env.values)
    explained = env.explain(raised.value)
    assert str(explained) == f"PGPT_THREADS='abc' is not a whole number. (PGPT_THREADS is set in {tmp_path / '.env'}.)"
    assert env.explain(ConfigError("PGPT_HOME is a file.")).args == ("PGPT_HOME is a file.",)  # from the environment
    named = Settings(home=tmp_path, model_cache=tmp_path, sources=env.sources()).named("PGPT_MODEL")
    assert named == f"PGPT_MODEL (set in {tmp_path / '.env'})"


def test_dotenv_values_lose_their_comments_quotes_and_a_byte_order_mark(tmp_path: Path) -> None:
    """"HF_TOKEN=hf_... # my token" sent the comment with the token, which the Hub then refused as
    invalid; a file saved by Notepad (byte-order mark) had its first line unread (t48)."""
    from pgpt.runtime.settings import read_dotenv

    path = tmp_path / ".env"
    path.write_bytes("\ufeffHF_TOKEN=hf_abc123 # my token\r\nPGPT_MODEL='a b' # quoted\nPGPT_HOME=\"/x#y\"\n"
                     "PGPT_PORT=9000#no space: part of the value\n".encode())
    assert read_dotenv(path) == {"HF_TOKEN": "hf_abc123", "PGPT_MODEL": "a b", "PGPT_HOME": "/x#y",
                                 "PGPT_PORT": "9000#no space: part of the value"}


def test_hub_settings_in_dotenv_are_said_to_be_unread(tmp_path: Path) -> None:
    """The token was taken from .env and the mirror beside it silently not; the user was then told to
    "set HF_ENDPOINT to a mirror" (t48)."""
    (tmp_path / ".env").write_text("HF_TOKEN=hf_x\nHF_ENDPOINT=http://mirror.example\nHF_HUB_OFFLINE=1\n")
    warnings = read_environment(tmp_path, {"HF_HUB_OFFLINE": "1"}).warnings()
    assert warnings == [f"HF_ENDPOINT in {tmp_path / '.env'} is not read from there (the Hugging Face client reads it "
                        "from the environment only): export it in the shell, or put it in the service's environment "
                        "file"]  # HF_HUB_OFFLINE is set in the environment too: nothing to say
