"""A harness for `pgpt-tui` in a real terminal: a pseudo-terminal with a small screen emulator, and a
private tmux server; used by test_terminal.py and test_hangup.py."""

from __future__ import annotations

import fcntl
import os
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pgpt.runtime.settings import Settings
from support import cli_env

PGPT_TUI = Path(sys.executable).parent / "pgpt-tui"
ROWS, COLUMNS = 24, 80
QUESTION = "What is the capital of France?"
READY = "loaded in"  # the status line once the model is loaded: "CPU · smollm2-… · loaded in 1.2 s"
# Generous: a slow 2-core CI machine loads the model in seconds and may take a while to answer.
START_TIMEOUT = 180.0
ANSWER_TIMEOUT = 180.0
EXIT_TIMEOUT = 60.0


def app_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The CLI environment as a user's terminal would have it, without settings that change the output."""
    env = {k: v for k, v in cli_env(settings).items()
           if k not in {"NO_COLOR", "COLORTERM", "TMUX", "TMUX_PANE"} and not k.startswith("TEXTUAL")}
    # PYTHONFAULTHANDLER: a hung app is sent SIGABRT and prints its threads' stacks for the failure report.
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", PYTHONFAULTHANDLER="1", **extra)
    return env


def assert_no_logging_on(screen: str, settings: Settings, output: bytes = b"") -> None:
    """The log file got the records; neither the screen nor the bytes written to the terminal show
    any of them (nor onnxruntime's own stderr lines)."""
    log = settings.log_file.read_text(encoding="utf-8")
    assert "chat model smollm2-135m-instruct" in log and "Traceback" not in log
    written = screen + output.decode("utf-8", "replace")
    assert not re.search(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b|pgpt\.(tui|runtime)|\[[WE]:onnxruntime", written)
    for record in log.splitlines():  # "time LEVEL logger: message"
        message = record.partition(": ")[2]
        assert len(message) < 12 or message not in written, record
    assert "Traceback" not in written


# A terminal emulator just big enough for Textual's output: cursor moves (CUP), text, CR/LF.


_SEQUENCE = re.compile(
    r"\x1b\[([\x30-\x3f]*)[\x20-\x2f]*([\x40-\x7e])"  # CSI: parameters, final byte
    r"|\x1b[\]P^_X][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC, DCS, PM, APC, SOS strings
    r"|\x1b[^\[\]P^_X]"  # any other ESC + one char
    r"|(\x1b)"  # an unfinished sequence (the end of the output)
    r"|([^\x1b]+)", re.S)


def render(output: bytes, rows: int = ROWS, columns: int = COLUMNS) -> str:
    """The screen that ``output`` leaves behind, as ``rows`` lines of text."""
    grid = [[" "] * columns for _ in range(rows)]
    row = col = 0
    for match in _SEQUENCE.finditer(output.decode("utf-8", "replace")):
        params, final, unfinished, text = match.groups()
        if final in ("H", "f"):
            numbers = [int(n) if n.isdigit() else 1 for n in params.split(";")] + [1, 1]
            row, col = min(max(numbers[0], 1), rows) - 1, min(max(numbers[1], 1), columns) - 1
        elif final == "J" and params == "2":
            grid = [[" "] * columns for _ in range(rows)]
        elif unfinished:
            break
        for char in text or "":
            if char == "\r":
                col = 0
            elif char == "\n":
                row = min(row + 1, rows - 1)
            elif char >= " " and col < columns:  # autowrap is off in Textual (CSI ?7l)
                grid[row][col] = char
                col += 1
    return "\n".join("".join(line).rstrip() for line in grid)


class PtyApp:
    """`pgpt-tui` running on a pseudo-terminal; ``output`` holds every byte it wrote."""

    def __init__(self, process: subprocess.Popen[bytes], master: int) -> None:
        self.process = process
        self.master = master
        self.output = bytearray()
        self.closed = False

    def screen(self) -> str:
        return render(bytes(self.output))

    def read(self, timeout: float) -> None:
        """Read what the app writes for up to ``timeout`` seconds (less when it closes the terminal)."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every slave descriptor is closed, the app is gone
            data = b""
        self.output += data
        self.closed = not data

    def wait_for(self, condition: Callable[[str], bool], timeout: float, what: str) -> str:
        """Read until ``condition(screen)`` holds; return that screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            assert not self.closed and time.monotonic() < deadline, f"no {what} on the screen:\n{screen}"
            self.read(0.2)

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        """Read the rest of the output until the app exits; its exit code."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None or not self.closed:
            if time.monotonic() > deadline:
                hung_at = len(self.output)
                os.kill(self.process.pid, signal.SIGABRT)
                for _ in range(25):
                    self.read(0.2)
                stacks = re.sub(r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]", "",
                                self.output[hung_at:].decode("utf-8", "replace"))
                pytest.fail(f"pgpt-tui did not exit; its threads:\n{stacks}")
            self.read(0.2)
        return self.process.wait()


@contextmanager
def pty_app(env: dict[str, str]) -> Iterator[PtyApp]:
    """Start `pgpt-tui` on a new 80x24 pseudo-terminal in its own session; kill it if it outlives the test."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    try:
        process = subprocess.Popen([str(PGPT_TUI)], stdin=slave, stdout=slave, stderr=slave, env=env,
                                   start_new_session=True)
    finally:
        os.close(slave)
    try:
        yield PtyApp(process, master)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        os.close(master)


class Tmux:
    """`pgpt-tui` in a session of a private tmux server (its own socket, no config file), so a user's
    tmux is never touched. A shell around the app writes its exit status to a file: tmux 3.3a's
    ``#{pane_dead_status}`` sometimes stays empty after the pane died."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.base = [shutil.which("tmux") or "tmux", "-S", str(folder / "socket"), "-f", "/dev/null"]
        self.env = env  # a new server, and so the pane, gets the environment of the client that starts it
        self.exit_file = folder / "exit-status"
        self.app_pid = 0

    def __call__(self, *args: str) -> str:
        done = subprocess.run([*self.base, *args], env=self.env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self, command: str) -> None:
        """Run ``command`` in session ``pgpt``; remain-on-exit keeps the screen it leaves."""
        script = f"{command}; echo $? > {shlex.quote(str(self.exit_file))}"
        self("new-session", "-d", "-s", "pgpt", "-x", str(COLUMNS), "-y", str(ROWS),
             f"exec sh -c {shlex.quote(script)}", ";", "set-option", "-t", "pgpt", "remain-on-exit", "on")
        shell = int(self("display-message", "-p", "-t", "pgpt", "#{pane_pid}"))
        deadline = time.monotonic() + 30
        while not (children := Path(f"/proc/{shell}/task/{shell}/children").read_text().split()):
            assert time.monotonic() < deadline, "the shell in tmux started no app"
            time.sleep(0.05)
        self.app_pid = int(children[0])

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "pgpt")

    def wait_for(self, condition: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while not condition(screen := self.screen()):
            assert time.monotonic() < deadline, f"no {what} on the screen:\n{screen}"
            time.sleep(0.25)
        return screen

    def wait_exit(self) -> tuple[int, str]:
        """Wait until the app exits: its exit status and the screen it left."""
        deadline = time.monotonic() + EXIT_TIMEOUT
        while not re.fullmatch(r"\d+\n", status := self.exit_file.read_text() if self.exit_file.exists() else ""):
            if time.monotonic() > deadline:
                os.kill(self.app_pid, signal.SIGABRT)  # PYTHONFAULTHANDLER: its threads' stacks go to the pane
                time.sleep(3)
                pytest.fail(f"pgpt-tui did not exit:\n{self('capture-pane', '-p', '-S', '-', '-t', 'pgpt')}")
            time.sleep(0.25)
        self.app_pid = 0  # gone: its process id may belong to another process by now
        return int(status), self.screen()

    def kill_server(self) -> None:
        """Stop the server; its SIGHUP ends the app, which is killed if it is still there 10 s later."""
        subprocess.run([*self.base, "kill-server"], env=self.env, capture_output=True, timeout=30)
        deadline = time.monotonic() + 10
        cmdline = Path(f"/proc/{self.app_pid}/cmdline")
        while self.app_pid and cmdline.exists() and b"pgpt-tui" in cmdline.read_bytes():
            if time.monotonic() > deadline:
                os.kill(self.app_pid, signal.SIGKILL)
                break
            time.sleep(0.1)
