"""The layering of pgpt's folders, checked with import-linter's contracts from pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("runtime", "runtime/llm", "runtime/documents", "runtime/hub", "export", "bench", "tui", "serve")


def lint(cwd: Path, env_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = None
    if env_path is not None:  # the throwaway tree must shadow the installed pgpt
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(env_path), "PYTHONNOUSERSITE": "1"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_the_contracts_hold() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_are_the_promised_ones() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["id"]: c for c in config["contracts"]}
    assert {"textual", "pgpt.tui", "pgpt.export", "pgpt.bench", "torch"} <= set(
        contracts["runtime-is-headless"]["forbidden_modules"])
    assert contracts["documents-and-hub-apart"]["modules"] == ["pgpt.runtime.documents", "pgpt.runtime.hub"]
    assert contracts["nothing-imports-the-ui"]["forbidden_modules"] == ["pgpt.tui"]
    assert "pgpt.serve" in contracts["nothing-imports-the-ui"]["source_modules"]
    assert {"fastapi", "starlette", "uvicorn", "pgpt.serve"} <= set(contracts["runtime-is-headless"]["forbidden_modules"])
    assert {"textual", "pgpt.tui", "pgpt.export", "torch"} <= set(contracts["serve-is-thin"]["forbidden_modules"])


def _fake_tree(tmp_path: Path, offending: dict[str, str]) -> Path:
    """A copy of pgpt's package layout with empty modules, plus ``offending`` {path: source}."""
    tree = tmp_path / "tree"
    for folder in PACKAGES:
        (tree / "pgpt" / folder).mkdir(parents=True, exist_ok=True)
        (tree / "pgpt" / folder / "__init__.py").write_text('"""stub"""\n')
    for name in ("textual", "torch", "transformers", "optimum", "fastapi", "starlette", "uvicorn"):  # externals named
        (tree / name).mkdir(exist_ok=True)
        (tree / name / "__init__.py").write_text("")
    for path, source in offending.items():
        (tree / "pgpt" / path).write_text(source)
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_each_contract_catches_its_violation(tmp_path: Path) -> None:
    violations = {
        "runtime-is-headless": {"runtime/llm/bad.py": "import textual\n"},
        "documents-and-hub-apart": {"runtime/hub/bad.py": "import pgpt.runtime.documents\n"},
        "engine-below-documents": {"runtime/llm/bad.py": "from pgpt.runtime import documents\n"},
        "nothing-imports-the-ui": {"export/bad.py": "import pgpt.tui\n"},
        "serve-is-thin": {"serve/bad.py": "import pgpt.export\n"},
    }
    for index, (contract, offending) in enumerate(violations.items()):
        tree = _fake_tree(tmp_path / str(index), offending)
        result = lint(tree, env_path=tree)
        assert result.returncode != 0, (contract, result.stdout + result.stderr)
        assert "BROKEN" in result.stdout, result.stdout + result.stderr
