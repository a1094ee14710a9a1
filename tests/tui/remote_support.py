"""What the client tests share: a keyed pgpt-serve with one document, a client's settings and CLI,
and the server's one slot held busy."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgpt.runtime.settings import Settings
from serve_support import RunningServer, start_server
from support import cli_env

KEY = "remote-test-key-5551234"
FERRY = "Ferry timetable. The ferry to Tresco leaves the quay at 9:15 every morning."


@pytest.fixture(scope="module")
def served(default_models: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A keyed server that runs one answer at a time and queues none, with one document."""
    home = tmp_path_factory.mktemp("served-home")
    key_file = home / "key"
    key_file.write_text(KEY)
    key_file.chmod(0o600)
    running = start_server(dataclasses.replace(default_models, home=home), "--api-key-file", str(key_file),
                           "--parallel", "1", "--max-queue", "0", key=KEY)
    with running.http() as client:
        assert client.post("/v1/ingest/text", json={"file_name": "ferry.txt", "text": FERRY}).status_code == 200
    yield running
    running.stop()


def client_settings(server: RunningServer, tmp_path: Path, key: str = KEY, retries: int = 0) -> Settings:
    """A client home and an empty model cache: answers can only come from the server (which, when
    busy, is asked again ``retries`` times: none, for the tests of what a refusal shows)."""
    (tmp_path / "no-models").mkdir(exist_ok=True)
    return Settings(home=tmp_path / "client", model_cache=tmp_path / "no-models", server=server.url, server_key=key,
                    server_retries=retries)


def client_cli(settings: Settings, *args: str, key: str = KEY,
               cwd: Path | None = None, retries: int = 0) -> subprocess.CompletedProcess[str]:
    """The CLI as the server's client (a busy server is asked again ``retries`` times)."""
    env = {**client_env(settings, key), "PGPT_SERVER_RETRIES": str(retries)}
    return subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=600, cwd=cwd)


def client_env(settings: Settings, key: str = KEY) -> dict[str, str]:
    """The environment of a CLI that is the server's client."""
    return {**cli_env(settings), "PGPT_SERVER": settings.server, "PGPT_API_KEY": key}


@contextlib.contextmanager
def occupied(served: RunningServer) -> Iterator[None]:
    """The server's one slot taken by a long answer (it allows nothing to wait) while the block runs."""
    holder = threading.Event()

    def occupy() -> None:
        body = {"messages": [{"role": "user", "content": "Count to 500."}], "max_tokens": 400, "ignore_eos": True,
                "stream": True}
        with served.http() as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
            for _ in response.iter_lines():
                if holder.is_set():
                    return

    thread = threading.Thread(target=occupy)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while served.metric("pgpt:num_requests_running") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield
    finally:
        holder.set()
        thread.join(timeout=60)
