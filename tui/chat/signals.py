"""The app's signals: SIGHUP saves the chat and ends the app, SIGTERM and SIGINT quit as Ctrl+Q does;
and a thread of their own that makes sure they are acted on.

The handlers run in the main thread, and only when it runs Python. So every signal is also written to
a pipe (``signal.set_wakeup_fd``: the C handler does it, in whichever thread received the signal) that
this module's thread reads: it quits the app through the event loop, and after a hangup it gives the
main thread HANGUP_GRACE_S to save the chat and end, then ends the process itself, with every thread's
stack in the log. A hangup once left the app running 60 s later, nothing saved or logged (a CI run):
two SIGHUPs, the second one's handler run inside the first one's and waiting on a lock the first
held; and with the terminal gone, the main thread can wait where no handler runs (Textual's output
queue full once its writer thread died, the signal handed to another thread)."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import signal
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

HANGUP_GRACE_S = 5.0  # the most a save at a hangup may take before the app ends without it
HANGUP_EXIT = 128 + signal.SIGHUP  # the status a shell shows for a process ended by SIGHUP
QUIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}


def handle_signals(app: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Install the handlers and start the thread; from the main thread, before the app runs.

    SIGTERM and SIGINT sent from outside (`kill`, `timeout`, a supervisor) quit as Ctrl+Q does, the
    terminal restored, with exit 143 or 130: SIGINT froze the app (its KeyboardInterrupt landed in the
    event loop's select) and SIGTERM left the terminal in full-screen mode with mouse tracking on.
    SIGHUP saves the chat (``_save_and_end``); its handler also replaces an inherited "ignore" (``nohup``,
    some supervisors and job runners): an app whose terminal was gone kept running."""
    signal.signal(signal.SIGHUP, _save_and_end(app))
    for signum in QUIT_CODES:  # acted on by the thread; a Python handler is what makes the C one run
        signal.signal(signum, _noted)
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # set_wakeup_fd requires it: a signal handler must never block
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(read_fd, app, loop), name="pgpt-signals", daemon=True).start()


def _noted(signum: int, frame: object) -> None:
    """SIGTERM's and SIGINT's handler in the main thread: nothing, the signal thread quits the app."""


def _save_and_end(app: Any) -> Any:
    """SIGHUP's handler (the SSH session closed, or tmux killed the pane: the terminal is gone): save
    the chat, an answer being written kept and marked (stopped) as Ctrl+Q keeps it, then end at once as
    SIGHUP's default does. The default ended the app before it saved: a chat's first answer cut by a
    dropped session left no file. Ingestions and downloads need nothing here (tests/tui/test_hangup.py)."""
    # The kernel's SIGHUP and sshd's own arrive together: the second one runs its handler inside the
    # first one. One C call both tests and marks (a threading.Event's set() takes a lock, and the
    # handler run inside it waited on that lock forever: the app hung at a hangup, found by CI).
    calls = itertools.count()

    def hang_up(signum: int, frame: object) -> None:
        if next(calls):  # not the first: the first one saves and ends
            return
        try:
            app.keep_stopped_answer()
            log.info("hangup (SIGHUP): ending now")
            logging.shutdown()
        except Exception:  # the app may be half shut down (its screens gone), a log write cut: end anyway
            log.exception("the chat could not be saved at the hangup")
        finally:  # always: an exception let out of a signal handler lands where the main thread was
            _give_terminal_back()
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGHUP)  # ended by SIGHUP, as a shell or supervisor expects
            os._exit(HANGUP_EXIT)  # not reached

    return hang_up


# What Textual's driver writes when the app ends (stop_application_mode): a SIGHUP sent by `kill` or a
# supervisor, the terminal still there, left it in the alternate screen with mouse tracking on (t54)
RESTORE = (b"\x1b[<u\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?2004l\x1b[?2048l\x1b[?1004l"
           b"\x1b[?1049l\x1b[?25h")


def _give_terminal_back() -> None:
    """Leave the app's terminal modes on a terminal that is still there; a hung-up one refuses the
    write at once. The terminal is opened anew, non-blocking, so the write never holds the exit and
    the shell's own open file keeps its flags: /dev/tty, or the one Textual draws on (stderr) when
    there is no controlling terminal."""
    for name in ("/dev/tty", 2, 1):
        try:
            path = name if isinstance(name, str) else os.ttyname(name)
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError:
            continue
        try:
            os.write(fd, RESTORE)
        except OSError:
            pass
        finally:
            os.close(fd)
        return


def _watch(read_fd: int, app: Any, loop: asyncio.AbstractEventLoop) -> None:
    """The signal thread: the signals' numbers, one byte each, as the C handler writes them."""
    while True:
        for signum in os.read(read_fd, 64):
            if signum == signal.SIGHUP:
                _end_after_grace(app.settings.log_file)
            elif signum in QUIT_CODES:
                try:
                    loop.call_soon_threadsafe(functools.partial(app.exit, return_code=QUIT_CODES[signum]))
                except RuntimeError:  # the loop is closed: the app is already on its way out
                    pass


def _end_after_grace(log_file: Any) -> None:
    """The main thread had HANGUP_GRACE_S to save the chat and end the process and it did not: end it
    from here, the stacks of all threads written to the log first (where it was stuck, for a bug
    report). Not logging's own calls: the stuck thread may hold their lock."""
    import faulthandler

    time.sleep(HANGUP_GRACE_S)
    try:
        with open(log_file, "a", encoding="utf-8") as stream:
            stream.write(f"hangup (SIGHUP): the chat was not saved within {HANGUP_GRACE_S:.0f} s; "
                         "ending now. Where each thread was:\n")
            stream.flush()
            faulthandler.dump_traceback(file=stream, all_threads=True)
    except (OSError, ValueError):  # no log file: end without the stacks
        pass
    os._exit(HANGUP_EXIT)
