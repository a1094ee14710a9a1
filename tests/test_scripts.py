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


FAKE_PYTHON = """#!/usr/bin/env bash
echo "$PYTHONWARNINGS|$*" >> "$FAKE_LOG"
case "$*" in
    --version) echo "Python 3.11.7" ;;
    "-m venv .venv") mkdir -p .venv/bin && cp "$0" .venv/bin/python ;;
    "- "*) cat > /dev/null; exit "$FAKE_MISSING" ;;  # setup's check whether packages are installed
    "-m pip show -q onnxruntime") exit 1 ;;
esac
"""


def fake_setup(tmp_path: Path, missing: bool) -> tuple[list[str], list[str]]:
    """Run scripts/setup in a copy whose python only logs what it is asked: its own lines and the pip commands."""
    (tmp_path / "scripts").mkdir(exist_ok=True)
    (tmp_path / "scripts" / "setup").write_text((ROOT / "scripts" / "setup").read_text())
    (tmp_path / "scripts" / "setup").chmod(0o755)
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    log = tmp_path / f"calls-{missing}"
    env = {**os.environ, "PYTHON": str(python), "FAKE_LOG": str(log), "FAKE_MISSING": str(int(missing))}
    done = subprocess.run([str(tmp_path / "scripts" / "setup")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout, done.stderr
    return done.stderr.splitlines(), [line for line in log.read_text().splitlines() if "-m pip install" in line]


def test_setup_says_each_step_the_first_time_and_only_checks_quietly_after(tmp_path: Path) -> None:
    """A multi-GB first install printed nothing of its own (every pip call had -q) but setuptools'
    boxed warning about the editable install."""
    lines, first = fake_setup(tmp_path, missing=True)
    assert [line.split(" (")[0] for line in lines] == [
        "setup: creating .venv", "setup: installing torch 2.13.0, CPU build", "setup: installing pgpt and its "
        "dependencies", "setup: installing the embedded default models, SmolLM2-135M-Instruct and all-MiniLM-L6-v2",
        "setup: installing PrivateGPT's Python SDK 0.1.2", "setup: done: .venv is ready"], lines
    assert "MB to download" in lines[1] and "MB to download" in lines[2]
    lines, again = fake_setup(tmp_path, missing=False)
    assert [line.split(" (")[0] for line in lines] == ["setup: checking .venv", "setup: done: .venv is ready"], lines
    assert all(" -q " in call for call in again) and not any(" -q " in call for call in first[1:]), first
    # the same packages either way, and setuptools' box is off (its meaning is in the pgpt step's line)
    assert [call.replace(" -q", "") for call in again] == [call.replace(" -q", "") for call in first]
    assert all(call.startswith("ignore:Editable installation|") for call in first + again)
