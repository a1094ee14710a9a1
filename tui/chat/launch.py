"""Running the app as `pgpt-tui` does: logging to the file, and a quit that does not wait for workers."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from typing import Any

from pgpt.runtime.settings import Settings

log = logging.getLogger(__name__)


def _worker_thread_busy() -> bool:
    """Whether a thread of the loop's executor is still running a worker (an idle one waits in
    concurrent.futures' ``_worker`` loop for its next job)."""
    frames = sys._current_frames()
    return any(frames.get(t.ident or 0) is not None and frames[t.ident or 0].f_code.co_name != "_worker"
               for t in threading.enumerate() if t.name.startswith("asyncio_"))


def _end_with_the_terminal() -> None:
    """Restore SIGHUP's default (end the process) when it was inherited as ignored (``nohup``, some
    supervisors and job runners): an interactive app whose terminal is gone kept running, found
    still alive 60 s after an SSH-style hangup. Nothing is lost by ending: see tests/tui/test_hangup.py."""
    import signal

    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _quit_on_signals(loop: asyncio.AbstractEventLoop, app: Any) -> None:
    """SIGTERM and a SIGINT sent from outside (`kill`, `timeout`, a supervisor) quit as Ctrl+Q does,
    the terminal restored, with exit 143 or 130: SIGINT froze the app (its KeyboardInterrupt landed
    in the event loop's select) and SIGTERM left the terminal in full-screen mode with mouse
    tracking on. SIGHUP keeps its default: the terminal is gone (_end_with_the_terminal)."""
    import signal

    for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        loop.add_signal_handler(signum, lambda code=code: app.exit(return_code=code))


def run_app(settings: Settings, setting_warnings: tuple[str, ...] = ()) -> int:
    """Run the chat app until the user quits; logs go to the log file, never the screen.
    ``setting_warnings`` (PGPT_ names no program reads) are logged and shown as notifications."""
    from pgpt.runtime.logs import setup_logging
    from pgpt.tui.chat.app import ChatApp

    setup_logging(settings)
    for warning in setting_warnings:
        log.warning("%s", warning)
    _end_with_the_terminal()
    app = ChatApp(settings)
    app.setting_warnings = setting_warnings
    # Our own loop: asyncio.run() would wait at its end for the worker threads to finish.
    loop = asyncio.new_event_loop()
    _quit_on_signals(loop, app)
    app.run(loop=loop)
    code = app.return_code or 0
    if _worker_thread_busy():
        # A model load or a first-start export is still running in a worker thread, and Python
        # would wait for it at exit. What those threads write survives being cut (exports and
        # downloads are renamed into place when complete, documents are committed one by one),
        # so quit now instead of after it.
        log.info("quitting without waiting for background work")
        logging.shutdown()
        sys.stdout.flush()
        os._exit(code)
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    return code
