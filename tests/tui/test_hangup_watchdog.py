"""A hangup ends the app even when its chat cannot be saved: the main thread is given HANGUP_GRACE_S,
then the signal thread ends the process with every thread's stack in the log (a CI run found the app
still running 60 s after SIGHUP, nothing saved or logged). The real handlers of tui/chat/signals.py in
a real process sent a real SIGHUP; only the app is a stand-in, whose save waits forever or fails, or
whose main thread waits on a lock while the signal reaches another thread, as a stuck app's would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pgpt.tui.chat.signals import HANGUP_EXIT, HANGUP_GRACE_S

CHILD = textwrap.dedent("""
    import asyncio, logging, os, signal, sys, threading, time, types
    from pathlib import Path
    from pgpt.tui.chat.signals import handle_signals

    def save():
        if sys.argv[2] == "second hangup":  # sshd's SIGHUP after the kernel's, during the save
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.2)  # Python code runs: the second handler is run here
            return
        if sys.argv[2] == "save waits":
            threading.Event().wait()  # a lock nobody will release
        raise RuntimeError("reentrant call inside <_io.BufferedWriter>")

    app = types.SimpleNamespace(settings=types.SimpleNamespace(log_file=Path(sys.argv[1])),
                                keep_stopped_answer=save, exit=lambda return_code: None)
    logging.basicConfig(filename=sys.argv[1], level=logging.INFO)  # as the app logs to its file
    handle_signals(app, asyncio.new_event_loop())  # the signal thread starts with SIGHUP unblocked
    if sys.argv[2] == "main thread waits":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})  # so the kernel hands it to another thread
        stuck = threading.Lock()
        stuck.acquire()
        waiting = False

        def announce():
            # "ready" once the main thread waits: while it still runs Python, it runs the handler itself
            # (the C handler in another thread trips the flag it checks), which two CI runs caught
            while not waiting:
                time.sleep(0.01)
            time.sleep(0.3)
            print("ready", flush=True)

        threading.Thread(target=announce, daemon=True).start()
        waiting = True
        stuck.acquire()  # as the event loop on Textual's full output queue
    print("ready", flush=True)
    while True:
        time.sleep(0.05)  # the main thread runs Python, so the handler runs
""")


def hang_up_child(tmp_path: Path, case: str) -> tuple[int, float, str]:
    """Start the stand-in, send it SIGHUP; its exit status, seconds to end, and its log."""
    log_file = tmp_path / "pgpt.log"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(log_file), case], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        start = time.monotonic()
        os.kill(child.pid, signal.SIGHUP)
        code = child.wait(timeout=HANGUP_GRACE_S + 30)
        return code, time.monotonic() - start, log_file.read_text(encoding="utf-8") if log_file.exists() else ""
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("case, stuck_in", [("save waits", "in save"), ("main thread waits", "in <module>")])
def test_a_hangup_the_main_thread_cannot_act_on_ends_after_the_grace_with_the_stacks_in_the_log(
        tmp_path: Path, case: str, stuck_in: str) -> None:
    code, took, log = hang_up_child(tmp_path, case)
    assert code == HANGUP_EXIT
    assert HANGUP_GRACE_S - 0.5 <= took < HANGUP_GRACE_S + 15
    assert "the chat was not saved within" in log and stuck_in in log, log  # where it was stuck


def test_a_save_that_fails_still_ends_by_sighup_at_once(tmp_path: Path) -> None:
    code, took, log = hang_up_child(tmp_path, "save fails")
    assert code == -signal.SIGHUP  # killed by the signal, as a shell or supervisor expects
    assert took < HANGUP_GRACE_S
    assert "the chat could not be saved at the hangup" in log and "not saved within" not in log


def test_a_second_hangup_during_the_save_leaves_the_first_to_end_it(tmp_path: Path) -> None:
    code, took, log = hang_up_child(tmp_path, "second hangup")
    assert code == -signal.SIGHUP and took < HANGUP_GRACE_S
    assert log.count("hangup (SIGHUP): ending now") == 1 and "not saved" not in log, log
