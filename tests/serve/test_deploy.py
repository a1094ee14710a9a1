"""The systemd unit in deploy/: it parses, systemd accepts it, and its ExecStart runs pgpt-serve."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "pgpt-serve.service"
ENV_FILE = ROOT / "deploy" / "pgpt-serve.env"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def installed(tmp_path: Path) -> Path:
    """The unit as installed on this machine: ExecStart points at this checkout's pgpt-serve."""
    text = UNIT.read_text().replace("/opt/pgpt/.venv/bin/pgpt-serve", str(Path(sys.executable).parent / "pgpt-serve"))
    target = tmp_path / "pgpt-serve.service"
    target.write_text(text)
    return target


def test_the_unit_restarts_on_failure_and_keeps_its_secrets_in_a_root_file() -> None:
    service = unit()["Service"]
    assert service["Restart"] == "on-failure" and service["EnvironmentFile"] == "/etc/pgpt/pgpt-serve.env"
    environment = UNIT.read_text()
    assert "Environment=PGPT_MODEL_CACHE=/var/cache/pgpt/models" in environment
    assert "Environment=PGPT_HOME=/var/lib/pgpt" in environment
    assert service["User"] == "pgpt" and service["NoNewPrivileges"] == "yes"
    assert unit()["Install"]["WantedBy"] == "multi-user.target"
    names = {line.split("=", 1)[0] for line in ENV_FILE.read_text().splitlines() if "=" in line and line[0] != "#"}
    assert {"PGPT_API_KEY", "HF_TOKEN", "PGPT_HOST", "PGPT_PORT"} <= names


def test_a_settings_error_is_exit_2_which_the_unit_does_not_restart(tmp_path: Path) -> None:
    """A public address without a key can never start: systemd restarted it every 5 s forever."""
    assert unit()["Service"]["RestartPreventExitStatus"] == "2"
    env = {"PATH": "/usr/bin:/bin", "PGPT_HOME": str(tmp_path / "home"), "PGPT_MODEL_CACHE": str(tmp_path / "models")}
    result = subprocess.run([str(Path(sys.executable).parent / "pgpt-serve"), "--host", "0.0.0.0"], env=env,
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2 and "without an API key" in result.stderr and "Traceback" not in result.stderr


def test_exec_start_runs_pgpt_serve(tmp_path: Path) -> None:
    command = shlex.split(unit()["Service"]["ExecStart"])
    assert command[0] == "/opt/pgpt/.venv/bin/pgpt-serve"
    result = subprocess.run([str(Path(sys.executable).parent / "pgpt-serve"), *command[1:], "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--api-key-file" in result.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(installed(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "pgpt-serve.service" not in result.stderr, result.stderr  # no warning about the unit itself
    broken = installed(tmp_path)
    broken.write_text(broken.read_text().replace(str(Path(sys.executable).parent / "pgpt-serve"), "/nonexistent/x"))
    refused = subprocess.run(["systemd-analyze", "verify", "--man=no", str(broken)], capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0 and "not executable" in refused.stderr


def test_systemd_rates_the_sandbox_ok(tmp_path: Path) -> None:
    """The README called it a hardened sandbox while `systemd-analyze security` rated it 7.6 EXPOSED (t46)."""
    import re

    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(installed(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for pgpt-serve.service: (\d+\.\d+) (\w+)", result.stdout)
    assert level and float(level.group(1)) <= 4.0 and level.group(2) == "OK", result.stdout[-500:]
    assert "PrivateDevices=no" in UNIT.read_text()  # the CUDA provider's /dev/nvidia* stay reachable


def test_the_environment_file_refuses_the_key_command_pasted_as_text(tmp_path: Path) -> None:
    """systemd's EnvironmentFile runs no shell: `PGPT_API_KEY=$(openssl rand -hex 32)` is that text as the key."""
    env = {"PATH": "/usr/bin:/bin", "PGPT_HOME": str(tmp_path / "home"), "PGPT_MODEL_CACHE": str(tmp_path / "models"),
           "PGPT_HOST": "0.0.0.0", "PGPT_API_KEY": "$(openssl rand -hex 32)"}
    result = subprocess.run([str(Path(sys.executable).parent / "pgpt-serve")], env=env,
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2 and "shell command" in result.stderr and "Traceback" not in result.stderr
    assert "openssl rand -hex 32" in ENV_FILE.read_text()


def test_a_moved_or_copied_server_home_finds_its_uploads_where_they_are_now(default_models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """t70: after `mv` of a server's PGPT_HOME (or a restore to another path) every upload was listed
    under the old home's path as "file gone", and `--prune` would have dropped them all; a copy kept
    reading, and deleting, the first home's files."""
    import dataclasses
    import os

    from pgpt.runtime.documents.ingest import open_store
    from pgpt.runtime.llm.embeddings import default_embedder
    from serve_support import start_server

    first = tmp_path / "srv" / "pgpt"
    note = tmp_path / "boatshed.txt"
    note.write_text("The boat shed combination lock opens with 6-1-9-4.\n")
    server = start_server(dataclasses.replace(default_models, home=first))
    try:
        with server.http() as client, open(note, "rb") as handle:
            assert client.post("/v1/ingest/file", files={"file": ("team/boatshed.txt", handle)}).status_code == 200
    finally:
        server.stop()
    moved = tmp_path / "data" / "pgpt"
    moved.parent.mkdir()
    os.rename(first, moved)  # the admin moves the home; a copy of it is made too
    copied = tmp_path / "copy"
    shutil.copytree(moved, copied, symlinks=True)
    for home in (moved, copied):
        server = start_server(dataclasses.replace(default_models, home=home))
        try:
            with server.http() as client:
                found = client.post("/v1/chunks", json={"text": "boat shed combination"}).json()["data"]
                listed = client.get("/v1/ingest/list").json()["data"]
        finally:
            server.stop()
        settings = dataclasses.replace(default_models, home=home)
        store = open_store(settings, default_embedder(settings))
        upload = home / "uploads" / "default" / "team" / "boatshed.txt"
        assert [d.path for d in store.documents()] == [str(upload)]  # no "file gone" under the old home
        assert found and [d["doc_metadata"]["path"] for d in listed] == ["team/boatshed.txt"]
        assert "indexed under another home's path" in (home / "logs" / "pgpt.log").read_text()
