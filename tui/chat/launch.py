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


def _save_on_hangup(app: Any) -> None:
    """On SIGHUP (the SSH session closed, or tmux killed the pane: the terminal is gone) save the chat,
    an answer being written kept and marked (stopped) as Ctrl+Q keeps it, then end at once as SIGHUP's
    default does. SIGHUP's default ended the app before it saved: a chat's first answer cut by a dropped
    session left no file. Ingestions and downloads need nothing here (tests/tui/test_hangup.py).

    A plain signal handler, not the event loop's: with the terminal gone, Textual's output thread dies
    on its first failed write and the loop soon blocks on its full queue, where a loop handler never
    ran; a Python handler still runs in the main thread (a blocked lock wait is interrupted for it).
    It also replaces an inherited "ignore" (``nohup``, some supervisors and job runners): an app whose
    terminal was gone kept running, found still alive 60 s after a hangup."""
    import signal

    hanging_up = threading.Event()

    def hang_up(signum: int, frame: object) -> None:
        if hanging_up.is_set():  # the kernel's SIGHUP and sshd's own: one is enough
            return
        hanging_up.set()
        try:
            app.keep_stopped_answer()
        except Exception:  # the app may be half shut down (its screens gone): end anyway, as before
            log.exception("the chat could not be saved at the hangup")
        log.info("hangup (SIGHUP): ending now")
        logging.shutdown()
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGHUP)  # ended by SIGHUP, as a shell or supervisor expects
        os._exit(128 + signal.SIGHUP)  # not reached

    signal.signal(signal.SIGHUP, hang_up)


def _quit_on_signals(loop: asyncio.AbstractEventLoop, app: Any) -> None:
    """SIGTERM and a SIGINT sent from outside (`kill`, `timeout`, a supervisor) quit as Ctrl+Q does,
    the terminal restored, with exit 143 or 130: SIGINT froze the app (its KeyboardInterrupt landed
    in the event loop's select) and SIGTERM left the terminal in full-screen mode with mouse
    tracking on. SIGHUP saves the chat and ends at once (_save_on_hangup)."""
    import signal

    for signum, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        loop.add_signal_handler(signum, lambda code=code: app.exit(return_code=code))


def _say_unfinished_add(settings: Settings) -> None:
    """After the app quit (Ctrl+Q, SIGTERM) during an add of documents: how far it got and how to go
    on, on stderr (it ended with exit 0 and not a word). Its marker stays: the next start says it too."""
    from pgpt.runtime.documents.unfinished import unfinished_adds

    for add in unfinished_adds(settings):
        if add.pid == os.getpid():  # this app's add, not finished: it ends with the process, now
            print(f"pgpt-tui: {add.stopped_at()} when the app quit; the files done are in the index. "
                  f"To continue, add it again (F4) or run: {add.command()}", file=sys.stderr, flush=True)


def run_app(settings: Settings, setting_warnings: tuple[str, ...] = ()) -> int:
    """Run the chat app until the user quits; logs go to the log file, never the screen.
    ``setting_warnings`` (PGPT_ names no program reads) are logged and shown as notifications."""
    from pgpt.runtime.logs import setup_logging
    from pgpt.tui.chat.app import ChatApp

    setup_logging(settings)
    for warning in setting_warnings:
        log.warning("%s", warning)
    app = ChatApp(settings)
    app.setting_warnings = setting_warnings
    _save_on_hangup(app)
    # Our own loop: asyncio.run() would wait at its end for the worker threads to finish.
    loop = asyncio.new_event_loop()
    _quit_on_signals(loop, app)
    app.run(loop=loop)
    code = app.return_code or 0
    _say_unfinished_add(settings)
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
