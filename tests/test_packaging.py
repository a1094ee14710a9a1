"""Packaging: one pgpt namespace, no bare top-level packages, a runtime free of heavy/UI imports."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120)


def test_every_source_package_is_mapped_into_the_namespace() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    assert mapping == {"pgpt.tui": "tui", "pgpt.runtime": "runtime", "pgpt.export": "export", "pgpt.bench": "bench",
                       "pgpt.serve": "serve"}
    for folder in mapping.values():
        assert (ROOT / folder / "__init__.py").is_file()
    assert config["project"]["name"] != "pgpt"
    # every folder with Python code under a mapped folder is a listed package (else the wheel lacks it)
    listed = set(config["tool"]["setuptools"]["packages"])
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            assert ".".join((package, *relative)) in listed, init
    # data files ship from listed packages only: setuptools >= 77 warns that it will ignore data
    # folders it was not told are packages (the quality text, the benchmark corpora)
    for package, patterns in config["tool"]["setuptools"]["package-data"].items():
        assert package in listed and all("/" not in pattern for pattern in patterns), package
    assert (ROOT / "export" / "data" / "quality_text.txt").is_file()


def test_bare_top_level_imports_fail() -> None:
    for name in ("runtime", "export", "tui", "bench", "serve"):
        result = run_python(f"import {name}")
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr


def test_runtime_imports_no_torch_transformers_optimum_or_textual() -> None:
    code = (
        "import sys, pgpt.runtime.llm.chat, pgpt.runtime.llm.embeddings, pgpt.runtime.doctor, pgpt.runtime.llm.answer_cache\n"
        "import pgpt.runtime.documents.answers, pgpt.runtime.documents.ingest, pgpt.runtime.hub.download\n"
        "import pgpt.runtime.remote.client, pgpt.runtime.remote.progress, pgpt.serve.app, pgpt.serve.routes\n"
        "bad = [m for m in ('torch', 'transformers', 'optimum', 'textual', 'pgpt.tui') if m in sys.modules]\n"
        "print(bad)"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom pgpt.tui.cli.main import build_parser\nfrom pgpt.export.cli import build_parser as b2\n"
        "from pgpt.serve.cli import build_parser as b3\nbuild_parser(); b2(); b3()\n"
        "print([m for m in ('onnxruntime', 'torch', 'textual', 'lancedb', 'fastapi', 'uvicorn') if m in sys.modules])"
    )
    result = run_python(code)
    assert result.stdout.strip() == "[]", result.stderr


def test_console_scripts_are_declared() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"pgpt-tui": "pgpt.tui.cli.main:run", "pgpt-export": "pgpt.export.cli:main",
                       "pgpt-serve": "pgpt.serve.cli:main"}
