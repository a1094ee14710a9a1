"""Starting and driving a real pgpt-serve subprocess in tests (after vLLM's RemoteOpenAIServer)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgpt.runtime.settings import Settings
from support import cli_env

START_TIMEOUT_S = 240.0  # loading the model on a busy 2-core machine


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """One pgpt-serve process: its URL, key and output, and ways to talk to it."""

    process: subprocess.Popen[bytes]
    port: int
    settings: Settings
    output: Path
    key: str = ""
    args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def openai(self, **kwargs: Any) -> Any:
        """The official client for this server (no retries: a failure must show)."""
        import openai

        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.key or "unused", max_retries=0, **kwargs)

    def http(self, **kwargs: Any) -> Any:
        """An httpx client with the key."""
        import httpx

        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 300), **kwargs)

    def documents(self) -> list[dict]:
        """The server's documents (GET /v1/ingest/list)."""
        with self.http() as client:
            return list(client.get("/v1/ingest/list").json()["data"])

    def metric(self, name: str, labels: str = "") -> float:
        """The value of one sample of /metrics (``labels`` as written there, e.g. 'cache="answer"');
        without ``labels``, the sum of all its samples (read as the unlabelled sample alone, a
        counter with a model label was 0 whatever happened, and checks of it held vacuously)."""
        with self.http() as client:
            text = client.get("/metrics").text
        if not labels:
            return sum(float(line.split()[-1]) for line in text.splitlines()
                       if line.startswith((f"{name} ", f"{name}{{")))
        for line in text.splitlines():
            if line.startswith(f"{name}{{{labels}}} "):
                return float(line.split()[-1])
        return 0.0

    def log_text(self) -> str:
        """The server's log file and its terminal output."""
        log = self.settings.log_file.read_text(errors="replace") if self.settings.log_file.is_file() else ""
        return log + self.output.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9, as a crash would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful stop), then kill after 30 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def serve_command(*args: str) -> list[str]:
    """``pgpt-serve ARGS`` as run by this interpreter's environment."""
    return [str(Path(sys.executable).parent / "pgpt-serve"), *args]


def start_server(settings: Settings, *args: str, key: str = "", port: int = 0, ready: bool = True,
                 env: dict[str, str] | None = None) -> RunningServer:
    """Start pgpt-serve on a free port and wait for /ready (or only /health with ``ready=False``)."""
    port = port or free_port()
    settings.home.mkdir(parents=True, exist_ok=True)
    output = settings.home / f"serve-{port}-{time.monotonic_ns()}.out"
    full_env = {**cli_env(settings), "PGPT_THREADS": os.environ.get("PGPT_THREADS", "2"), **(env or {})}
    with open(output, "wb") as sink:
        # Ctrl-C as in a terminal: a job started in the background (CI) inherits SIGINT ignored
        process = subprocess.Popen(serve_command("--port", str(port), *args), env=full_env, stdout=sink,
                                   stderr=subprocess.STDOUT, cwd=settings.home,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    server = RunningServer(process, port, settings, output, key, args)
    wait_until_up(server, ready)
    return server


def wait_until_up(server: RunningServer, ready: bool = True) -> None:
    """Poll /health (then /ready) until the server answers; fail with its output if it died."""
    import httpx

    deadline = time.monotonic() + START_TIMEOUT_S
    path = "/ready" if ready else "/health"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"pgpt-serve exited with {server.process.returncode}:\n{server.log_text()[-3000:]}")
        try:
            headers = {"Authorization": f"Bearer {server.key}"} if server.key else {}
            if httpx.get(server.url + path, headers=headers, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"pgpt-serve did not get ready in {START_TIMEOUT_S:.0f} s:\n{server.log_text()[-3000:]}")


def upload(server: RunningServer, path: Path, name: str | None = None) -> tuple[int, dict]:
    """POST /v1/ingest/file of ``path`` (under ``name``): the status and the JSON answer."""
    with server.http() as client, open(path, "rb") as handle:
        response = client.post("/v1/ingest/file", files={"file": (name or path.name, handle)})
    return response.status_code, response.json()
