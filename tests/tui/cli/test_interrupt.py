"""Ctrl-C is heard at once while the model works (the answer is read in a worker thread)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from pgpt.tui.cli.interrupt import interruptible


def _slow_pieces(cancel: threading.Event, stopped: threading.Event) -> Iterator[str]:
    """A model step that takes 1 s and checks the cancel only between steps, as ONNX Runtime's calls
    (30 steps at most: a test whose signal never came must fail, not hang)."""
    yield "first"
    try:
        for _ in range(30):
            time.sleep(1.0)  # a step the main thread cannot interrupt
            if cancel.is_set():
                return
            yield "more"
    finally:
        stopped.set()


def test_ctrl_c_sets_the_cancel_and_waits_for_the_current_step() -> None:
    # Ctrl-C as a terminal sends it: a job started in the background (CI) has SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cancel, stopped = threading.Event(), threading.Event()
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        seen = []
        with pytest.raises(KeyboardInterrupt):
            for piece in interruptible(_slow_pieces(cancel, stopped), cancel):
                seen.append(piece)
        heard = time.monotonic() - started
        assert seen == ["first"] and cancel.is_set() and stopped.is_set()  # the worker ended before it returned
        assert heard < 2.5  # the step in course, not the whole answer
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # a second Ctrl-C's handler is gone
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_workers_error_is_raised_in_the_caller() -> None:
    def failing() -> Iterator[str]:
        yield "a"
        raise ValueError("the model's files are damaged")

    with pytest.raises(ValueError, match="damaged"):
        list(interruptible(failing(), threading.Event()))
    assert list(interruptible(iter(["x", "y"]), threading.Event())) == ["x", "y"]
