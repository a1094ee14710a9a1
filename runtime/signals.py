"""SIGTERM as an interrupt: `kill`, `timeout`, a cancelled CI job or `systemctl stop` end a command
the way Ctrl-C does (its clean-up runs, it says what stays and what to run next), with exit 143.

By default SIGTERM killed a command without a word: an export left a 150-300 MB temporary folder
in the model cache, and `ingest` or `chat` stopped mid-line with nothing said. SIGHUP keeps its
default (the terminal is gone: nobody reads a message; the runtime's guarantees keep the data).
"""

from __future__ import annotations

import signal
import threading


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM; a KeyboardInterrupt, so every Ctrl-C path handles it."""

    def __init__(self) -> None:
        super().__init__("SIGTERM")


def terminate_as_interrupt() -> None:
    """Make SIGTERM raise Terminated in the main thread (nothing happens elsewhere: only the main
    thread may set a handler)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


def terminated(error: BaseException) -> bool:
    """Whether ``error`` came from SIGTERM: it is Terminated, or was raised while handling it (a
    command turns the interrupt into its own "stopped after N files" error)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, Terminated):
            return True
        seen.add(id(error))
        error = error.__context__  # type: ignore[assignment]
    return False
