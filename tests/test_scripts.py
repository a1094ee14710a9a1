"""The commands in scripts/ and the benchmarks' own: --help says each one's usage under its own name,
with a description of every option, and starts no work (cuda-check took --help for its OUT folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(path.name for path in (ROOT / "scripts").iterdir() if os.access(path, os.X_OK))


def undescribed(text: str) -> list[str]:
    """The options and arguments listed in a help text without a description beside or below them."""
    lines = text.splitlines()
    return [line.strip() for number, line in enumerate(lines)
            if line.startswith("  ") and not line.startswith("   ") and "  " not in line.strip()
            and not (number + 1 < len(lines) and lines[number + 1].startswith(" " * 6))]


def test_every_command_of_the_readme_is_a_script_here() -> None:
    assert {"setup", "start", "test", "cuda-check", "get-qwen-1.5b", "bench-first-start"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_is_the_scripts_own_usage_and_does_nothing(script: str, tmp_path: Path) -> None:
    for flag in ("--help", "-h"):  # from an empty folder: cuda-check links $PWD's folders when it runs
        done = subprocess.run([str(ROOT / "scripts" / script), flag], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and done.stdout.startswith(f"usage: scripts/{script}"), done.stdout + done.stderr
        assert len(done.stdout.splitlines()) > 2 and not undescribed(done.stdout), done.stdout
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("script", "arguments"), [("cuda-check", []), ("cuda-check", ["--out", "x"]),
                                                   ("setup", ["x"]), ("cuda-check-wheels", ["x"])])
def test_a_missing_or_unknown_argument_is_a_one_line_usage_error(script: str, arguments: list[str],
                                                                  tmp_path: Path) -> None:
    done = subprocess.run([str(ROOT / "scripts" / script), *arguments], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and done.stderr.startswith(f"usage: scripts/{script}"), done.stderr
    assert len(done.stderr.splitlines()) == 1 and not done.stdout and not list(tmp_path.iterdir())


@pytest.mark.parametrize("module", ["pgpt.bench.parity", "pgpt.bench.real_models", "pgpt.bench.cuda"])
def test_the_benchmarks_describe_every_option(module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith(f"usage: python -m {module}"), done.stdout + done.stderr
    assert not undescribed(done.stdout), done.stdout
