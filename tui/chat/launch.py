"""Running the app as `pgpt-tui` does: logging to the file, and a quit that does not wait for workers."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from typing import Any

from pgpt.runtime.sanitize import strip_controls
from pgpt.runtime.settings import Settings

log = logging.getLogger(__name__)
# How long a quit waits for a running add to reach the end of its batch of chunks (128: a second or two
# on 2 cores) and keep the vectors of a file it stopped inside; a longer wait would hold the shell.
QUIT_ADD_WAIT_S = 5.0


def _worker_thread_busy() -> bool:
    """Whether a thread of the loop's executor is still running a worker (an idle one waits in
    concurrent.futures' ``_worker`` loop for its next job)."""
    frames = sys._current_frames()
    return any(frames.get(t.ident or 0) is not None and frames[t.ident or 0].f_code.co_name != "_worker"
               for t in threading.enumerate() if t.name.startswith("asyncio_"))


def remove_own_exports(settings: Settings) -> None:
    """Delete the folders this process's exports are writing (``.NAME.tmp-PID`` in the model cache):
    quitting does not wait for an F3 export's thread, whose own cleanup then never ran (631 MB left
    behind while the app said "nothing of it was kept", t62). Another process's are left alone."""
    import shutil

    for folder in settings.model_cache.glob(f".*.tmp-{os.getpid()}"):
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)


def _say_unfinished_add(settings: Settings, tick: Any = None, stopped_at: float = 0.0) -> None:
    """After the app quit (Ctrl+Q, SIGTERM) during an add of documents: how far it got and how to go
    on, on stderr (it ended with exit 0 and not a word). Its marker stays: the next start says it too.
    ``tick``: the add's latest progress, to name a large file it stopped inside (the CLI said it; t53);
    its vectors are said to be kept only when they were saved after ``stopped_at`` (the quit's stop)."""
    from pgpt.runtime.documents.chunk_vectors import kept_path
    from pgpt.runtime.documents.ingest import starts_over
    from pgpt.runtime.documents.unfinished import unfinished_adds

    inside = ""
    if tick is not None and tick.file_chunks and tick.current:
        try:
            kept = kept_path(settings).stat().st_mtime >= stopped_at
        except OSError:
            kept = False
        inside = " " + starts_over(tick.current, (tick.file_chunks_done, tick.file_chunks), kept)
    for add in unfinished_adds(settings):
        if add.pid == os.getpid():  # this app's add, not finished: it ends with the process, now
            # a file's name is the user's text: no terminal escape of it reaches the shell's screen
            print(strip_controls(f"pgpt-tui: {add.stopped_at()} when the app quit; the files done are in the index."
                                 f"{inside} To continue, add it again (F4) or run: {add.command()}"),
                  file=sys.stderr, flush=True)


def say_quit_notes(app: Any) -> None:
    """On stderr once the app has quit: what it cut short (an export, a download, the first start's
    preparation), and a chat it could not save (a toast was all, and the quit exited 0, t66)."""
    if app.quit_note:
        print(f"pgpt-tui: {app.quit_note}", file=sys.stderr, flush=True)
    if app.not_saved:
        print(strip_controls(f"pgpt-tui: the last chat was not saved. {app.not_saved}"), file=sys.stderr, flush=True)


def wait_for_add_stop(app: Any, wait_s: float = QUIT_ADD_WAIT_S) -> float:
    """Once the app has quit during an add: wait up to ``wait_s`` for the add to reach its batch's end,
    where it keeps the vectors of a large file (the app asked it to stop as it quit); when the stop was
    asked for (0.0: no add ran)."""
    if app.add_stopping is None:
        return 0.0
    ended, asked_at = app.add_stopping
    ended.wait(wait_s)
    return asked_at


def _refuse_without_a_terminal() -> None:
    """The app reads keys from stdin and draws on stderr. Without a terminal there (cron, a pipe,
    `ssh host pgpt-tui` without -t) it wrote escape codes until killed, or drew a screen whose keys
    were dead; TERM=dumb (Emacs' shell, a serial console) got a screen of escape codes (t54). The
    headless commands fit all of these.

    Raises:
        UsageError: naming what is missing and the commands to use instead.
    """
    import sys

    from pgpt.runtime.errors import UsageError

    headless = ("Use the headless commands here: pgpt-tui ask, chat, search, ingest and docs (`echo QUESTION | "
                "pgpt-tui ask -` answers from a pipe; pgpt-tui --help lists them)")
    missing = [name for name, stream in (("keyboard (stdin)", sys.stdin), ("screen (stderr)", sys.stderr))
               if stream is None or not stream.isatty()]
    if missing:
        raise UsageError(f"The app needs a terminal, and its {' and '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not one here (a pipe, a file, cron, or `ssh HOST "
                         "pgpt-tui` without -t).", hint=f"{headless}, or start it with `ssh -t HOST pgpt-tui`.")
    from pgpt.runtime.sanitize import unicode_output

    encoding = getattr(sys.stderr, "encoding", "") or ""
    if not unicode_output(sys.stderr):  # the frames came out as "\u2594\u2594…" text (an ISO-8859-1 locale)
        raise UsageError(f"The app draws with Unicode characters, and this terminal's locale writes {encoding or 'no'} "
                         "text (LANG, LC_ALL).", hint=f"{headless}: they write what the locale cannot as "
                         "\\uXXXX. Or start the app with a UTF-8 locale: LC_ALL=C.UTF-8 pgpt-tui.")
    if os.environ.get("TERM", "").strip().lower() == "dumb":
        raise UsageError("The app needs a full-screen terminal, and TERM=dumb says this one is not (Emacs' shell, a "
                         "serial console or a CI log).", hint=f"{headless}, or run pgpt-tui in a terminal emulator, "
                         "or over SSH, with TERM set to its type (such as xterm-256color).")


def mouse_wanted(env: dict[str, str]) -> bool:
    """Whether the app asks the terminal for mouse events: not inside GNU screen ($STY), which, once
    an application turns mouse tracking on, holds a lone Esc until the next key (it may start a mouse
    report), so Esc neither stopped an answer nor left a panel (t54). The app needs no mouse."""
    return not env.get("STY")


def run_app(settings: Settings, setting_warnings: tuple[str, ...] = ()) -> int:
    """Run the chat app until the user quits; logs go to the log file, never the screen.
    ``setting_warnings`` (PGPT_ names no program reads) are logged and shown as notifications."""
    from pgpt.runtime.logs import setup_logging
    from pgpt.tui.chat.app import ChatApp
    from pgpt.tui.chat.signals import handle_signals

    _refuse_without_a_terminal()
    setup_logging(settings)
    for warning in setting_warnings:
        log.warning("%s", warning)
    app = ChatApp(settings)
    if app.console.color_system == "standard":  # 16 colours (TERM=xterm, linux, vt100): the terminal's own
        app.theme = "ansi-dark"  # palette; the dark theme's orange keys fell to red on grey, contrast 1.0 (t54)
    app.setting_warnings = setting_warnings
    # Our own loop: asyncio.run() would wait at its end for the worker threads to finish.
    loop = asyncio.new_event_loop()
    handle_signals(app, loop)
    app.run(loop=loop, mouse=mouse_wanted(dict(os.environ)))
    code = app.return_code or 0
    _say_unfinished_add(settings, app.last_ingest_tick, wait_for_add_stop(app))
    say_quit_notes(app)
    if _worker_thread_busy():
        # A model load or a first-start export is still running in a worker thread, and Python
        # would wait for it at exit. What those threads write survives being cut (exports and
        # downloads are renamed into place when complete, documents are committed one by one),
        # so quit now instead of after it.
        log.info("quitting without waiting for background work")
        remove_own_exports(settings)
        logging.shutdown()
        sys.stdout.flush()
        os._exit(code)
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    return code
