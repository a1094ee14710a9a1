"""ONNX Runtime's telemetry stays off: no device id, no queued usage events under the user's home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pgpt.runtime.settings import Settings
from support import cli_env


def _home_env(settings: Settings, home: Path) -> dict[str, str]:
    env = {**cli_env(settings), "HOME": str(home)}
    env.pop("ORT_DISABLE_TELEMETRY", None)  # as a user's shell has it: unset
    return env


def test_commands_and_library_use_leave_no_telemetry_in_the_home(settings: Settings, tmp_path: Path) -> None:
    """onnxruntime 1.31 wrote ~/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid and queued
    ProcessInfo events (interpreter path, machine hash, network type) from every pgpt command (t50)."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "note.txt").write_text("The ferry leaves at noon.\n")
    done = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "ingest", str(tmp_path / "docs")],
                          capture_output=True, text=True, env=_home_env(settings, home), timeout=300)
    assert done.returncode == 0, done.stderr
    library = ("from pgpt.runtime.settings import Settings; from pgpt.runtime.llm.embeddings import default_embedder; "
               "print(len(default_embedder(Settings.from_env()).embed(['ferry'])[0]))")
    used = subprocess.run([sys.executable, "-c", library], capture_output=True, text=True,
                          env=_home_env(settings, home), timeout=300)
    assert used.returncode == 0 and used.stdout.strip() == "384", used.stderr
    assert not (home / ".cache" / "Microsoft").exists(), sorted(os.listdir(home / ".cache" / "Microsoft"))
