"""Reading documents in a worker process, so that no single file can hang, crash or exhaust the ingest.

pypdf, python-docx and html.parser are pure Python: a thread cannot be stopped, and
``signal.alarm`` works only in the main thread (the app ingests in a worker thread). So the
readers run in a child process (``python -m pgpt.runtime.documents.isolation``), started once and
reused for every file. The parent waits for each file's answer at most ``read_timeout_s``; past
that it kills the child, reports the file as failed and starts a new child for the next file.
The child runs under an address-space limit (RLIMIT_AS), so a file that needs more memory ends
in a MemoryError there instead of pushing the machine into swap; a crash of the child (a parser
bug in C, a signal) costs one file too. The two speak JSON lines, never pickle: the child parses
hostile files, so what it sends back is only ever treated as data.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pgpt.runtime.documents.readers import Section, Skipped, read_document
from pgpt.runtime.errors import Cancelled

log = logging.getLogger(__name__)
_POLL_S = 0.1  # how often a wait checks the cancel event
STARTUP_S = 120.0  # for the child's Python and imports, even on a machine under heavy load
READY = {"status": "ready"}
# Variables the child must not inherit: it parses hostile files and needs no credentials.
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "API_KEY")


@dataclass(frozen=True)
class ReadOutcome:
    """One file's result: its sections, or why it was skipped (no text) or failed (not read)."""

    sections: list[Section] | None = None
    skipped: str = ""
    failed: str = ""


class IsolatedReader:
    """``read_document`` in a child process with a time and a memory limit per file.

    Use it as a context manager: the child starts on entry and is stopped at the end.
    """

    def __init__(self, timeout_s: float, memory_mb: int) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._child: subprocess.Popen[bytes] | None = None
        self._last_stop = ""  # why the last child ended, for the file it was reading
        self._ready = False  # the running child said it is ready
        self.started = 0  # children started (tests and the benchmark read it)

    def __enter__(self) -> "IsolatedReader":
        self._running_child()  # it starts (Python, imports) while the caller lists the files
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, path: Path, cancel: threading.Event | None = None, source: str = "") -> ReadOutcome:
        """Read one file in the child (from ``source`` when given: see ``read_document``).

        Raises:
            Cancelled: ``cancel`` was set while the file was read (the child is stopped).
        """
        request = json.dumps({"path": str(path), "source": source}).encode() + b"\n"
        for attempt in range(2):
            child = self._running_child()
            assert child.stdin is not None and child.stdout is not None
            if not self._ready:  # its start (Python, the parsers' imports) is not the file's time
                self._ready = self._answer(child.stdout, cancel, STARTUP_S) == READY
                if not self._ready:
                    self._stop()
                    log.error("the reader process did not start within %s s", STARTUP_S)
                    return ReadOutcome(failed="the reader process did not start (the log file says more)")
            try:
                child.stdin.write(request)
                child.stdin.flush()
                break
            except OSError:  # it died since the last file: start a new one, once
                self._stop()
        else:
            return ReadOutcome(failed=self._stopped_reason())
        answer = self._answer(child.stdout, cancel, self.timeout_s)
        if answer is None:
            return ReadOutcome(failed=self._stopped_reason())
        return _outcome(answer, path)

    def close(self) -> None:
        """Stop the child (it also ends by itself when the parent's pipe closes)."""
        if self._child is not None:
            child, self._child = self._child, None
            try:
                assert child.stdin is not None
                child.stdin.close()
                child.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                child.kill()
                child.wait()
            finally:
                assert child.stdout is not None
                child.stdout.close()

    def _running_child(self) -> subprocess.Popen[bytes]:
        if self._child is None or self._child.poll() is not None:
            self._stop()
            self.started += 1
            env = {k: v for k, v in os.environ.items() if not any(w in k.upper() for w in _SECRET_WORDS)}
            # -P: the working folder (maybe the folder being ingested) is not put on sys.path.
            self._child = subprocess.Popen(
                [sys.executable, "-P", "-m", __name__, str(self.memory_mb)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=os.path.sep)
            self._ready = False
        return self._child

    def _answer(self, stream: IO[bytes], cancel: threading.Event | None, seconds: float) -> dict[str, Any] | None:
        """The child's next JSON line, or None when it took over ``seconds`` or died (it is then stopped)."""
        deadline = time.monotonic() + seconds
        received = bytearray()
        fd = stream.fileno()
        while not received.endswith(b"\n"):
            if cancel is not None and cancel.is_set():
                self._stop(cancelled=True)
                raise Cancelled("Ingestion stopped while a file was being read; run it again to continue.")
            left = deadline - time.monotonic()
            if left <= 0:
                self._stop(timed_out=True)
                return None
            ready, _, _ = select.select([fd], [], [], min(left, _POLL_S))
            if ready:
                block = os.read(fd, 1 << 20)
                if not block:  # the child exited
                    self._stop()
                    return None
                received += block
        try:
            answer = json.loads(received)
        except ValueError:
            self._stop()
            return None
        return answer if isinstance(answer, dict) else None

    def _stop(self, timed_out: bool = False, cancelled: bool = False) -> None:
        """Kill the child and remember why it ended (for the file that was being read)."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.poll() is None:
            child.kill()
        code = child.wait()
        for pipe in (child.stdin, child.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass  # a broken pipe to a dead child has nothing left to flush
        if cancelled:  # pgpt's own kill on a stop: "the reader crashed on it (signal 9)" said otherwise
            self._last_stop = "stopped while it was read"
            log.info("reader process stopped: the ingestion was stopped")
            return
        if timed_out:
            self._last_stop = f"took longer than {self.timeout_s:g} s to read (the limit; PGPT_READ_TIMEOUT_S)"
        elif code < 0:
            self._last_stop = f"the reader crashed on it (signal {-code})"
        else:
            self._last_stop = f"the reader stopped on it (exit code {code})"
        log.warning("reader process ended: %s", self._last_stop)

    def _stopped_reason(self) -> str:
        return self._last_stop or "the reader stopped on it"


def _outcome(answer: dict[str, Any], path: Path) -> ReadOutcome:
    """The child's answer as a ReadOutcome; an internal error is logged with its traceback."""
    status = answer.get("status")
    if status == "ok":
        return ReadOutcome(sections=[Section(str(t), int(p), str(h)) for t, p, h in answer["sections"]])
    if status == "skipped":
        return ReadOutcome(skipped=str(answer.get("reason", "")))
    if status == "failed":
        return ReadOutcome(failed=str(answer.get("reason", "")))
    log.error("reading %s failed inside pgpt:\n%s", path, answer.get("traceback", ""))
    return ReadOutcome(failed=f"internal error: {answer.get('type', '?')}")


def read_one(path: Path, memory_mb: int, source: str = "") -> dict[str, Any]:
    """Read ``path`` (its bytes from ``source`` when given) and describe the result as JSON-ready data
    (runs in the child)."""
    try:
        sections = read_document(path, Path(source) if source else None)
        return {"status": "ok", "sections": [[s.text, s.page, s.heading] for s in sections]}
    except Skipped as exc:
        return {"status": "skipped", "reason": str(exc)}
    except MemoryError:
        return {"status": "failed", "reason": f"needs more than {memory_mb} MB to read (PGPT_READ_MEMORY_MB)"}
    except OSError as exc:
        return {"status": "failed", "reason": f"unreadable ({exc.strerror or type(exc).__name__})"}
    except Exception as exc:  # a bug in pgpt's reader code: the parent logs it and reports it as such
        return {"status": "error", "type": type(exc).__name__, "traceback": traceback.format_exc()}


def _limit_memory(memory_mb: int) -> None:
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _die_with_parent() -> None:
    """Ask Linux to kill this child when the parent dies (kill -9 included): a reader stuck in a
    pathological file would not notice its closed pipe and run on alone."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the closed pipe ends the child at its next file


def main() -> None:
    """The child: one JSON request per line in, one JSON answer per line out, until stdin closes."""
    memory_mb = int(sys.argv[1])
    _die_with_parent()
    _limit_memory(memory_mb)
    logging.disable(logging.CRITICAL)  # pypdf's warnings about damaged files go nowhere
    # Libraries that print must not corrupt the answers: fd 1 becomes stderr (discarded).
    answers = os.fdopen(os.dup(1), "w", encoding="ascii")
    os.dup2(2, 1)
    import charset_normalizer  # noqa: F401  (imported before the first file's clock starts)
    import docx  # noqa: F401
    import pypdf  # noqa: F401

    answers.write(json.dumps(READY) + "\n")
    answers.flush()
    for line in sys.stdin:
        request = json.loads(line)
        answer = read_one(Path(request["path"]), memory_mb, request.get("source", ""))
        answers.write(json.dumps(answer) + "\n")  # ensure_ascii: lone surrogates survive as escapes
        answers.flush()


if __name__ == "__main__":
    main()
