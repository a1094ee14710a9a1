"""Ctrl-C heard at once while the model works (`ask`, `chat`).

Python runs a signal handler only when the main thread is back in the interpreter, and ONNX Runtime
held it for seconds: Ctrl-C while a 1.5B model read its prompt took 8 s to act, with no sign it was
heard, and a second Ctrl-C did nothing (t53). The answer is now read in a worker thread; the main
thread only waits, so it hears Ctrl-C at once, says that it stops, sets the answer's cancel event
(checked between the model's steps) and waits for the worker; a second Ctrl-C quits at once.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from pgpt.tui.cli.text_bar import status_line

WAIT_S = 0.2  # how often the main thread wakes while it waits (a signal also wakes it)
STOPPING = "stopping after the model's current step… (Ctrl-C again quits at once)"


def interruptible(pieces: Iterable[str], cancel: threading.Event, quiet: bool = False) -> Iterator[str]:
    """``pieces``, read in a worker thread; Ctrl-C (or SIGTERM) sets ``cancel``, waits for the
    worker to stop and is raised again; the worker's own error is raised here."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue()

    def read() -> None:
        try:
            for piece in pieces:
                box.put(("piece", piece))
        except BaseException as exc:  # raised again in the main thread, where the CLI reports it
            box.put(("error", exc))
        else:
            box.put(("end", None))

    worker = threading.Thread(target=read, name="pgpt-answer", daemon=True)
    worker.start()
    ended = False
    try:
        while True:
            kind, value = _next(box)
            ended = kind != "piece"
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:  # Ctrl-C here or in the caller's loop, or the caller stopped reading
        if not ended and worker.is_alive():
            cancel.set()
            _stop(worker, quiet)


def _next(box: queue.Queue[tuple[str, Any]]) -> tuple[str, Any]:
    while True:
        try:
            return box.get(timeout=WAIT_S)
        except queue.Empty:
            continue


def _quit_now(*_: Any) -> None:
    os.write(2, b"\n")
    os._exit(130)  # nothing is half-written: the index and the caches commit whole or not at all


def _stop(worker: threading.Thread, quiet: bool) -> None:
    """Wait for the worker after a cancel; a second Ctrl-C ends the process at once (exit 130)."""
    status_line(STOPPING, quiet)
    previous = signal.signal(signal.SIGINT, _quit_now)
    try:
        while worker.is_alive():
            worker.join(WAIT_S)
    finally:
        signal.signal(signal.SIGINT, previous)
        status_line("", quiet)
