"""`pgpt-tui` in a real terminal: tmux end to end, escape injection checked on the bytes, TERM and NO_COLOR."""

from __future__ import annotations

import json
import signal
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pgpt.runtime.settings import Settings
from support import cli_env
from terminal_support import (
    ANSWER_TIMEOUT, PGPT_TUI, QUESTION, READY, START_TIMEOUT, Tmux, app_env, assert_no_logging_on, pty_app,
)

pytestmark = pytest.mark.slow

# Hostile document text: an OSC title, an OSC 52 clipboard write, a screen clear, SGR red, a C1 CSI,
# a DCS string, a carriage return and backspaces that would overwrite the line, and Textual markup.
OSC_TITLE = "\x1b]0;PWNED-TITLE\x07"
OSC_CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"  # base64 of "rm -rf ~"
HOSTILE = (
    f"Zanzibarite report.{OSC_TITLE}{OSC_CLIPBOARD}\x1b[2J\x1b[31mREDTEXT \x9b31mCONERED "
    "\x1bP1$qPWNED-DCS\x1b\\ fake\rOVERWRITE\x08\x08 [@click=app.quit]CLICKME[/] [b]BOLD[/b] end.\n"
)
# A model answer as hostile (served from the answer cache: the small model writes no escapes itself).
MODEL_ANSWER = ("Paris.\x1b]0;MODEL-PWNED\x07\x1b]52;c;bW9kZWw=\x07\x1b[5mBLINKED \x9b2J\x1b[?1049l"
                "[@click=app.quit]MODELCLICK[/] [i]ITALIC[/i] done.")
INJECTED = [b"PWNED", b"cm0gLXJmIH4=", b"bW9kZWw=", b"\x1b]0;", b"\x1b]52;", b"\x1b[2J", b"\x1b[31m", b"\x1b[5m",
            b"\xc2\x9b", b"\x1bP", b"\rOVERWRITE", b"\x08"]


# 1. tmux: as a user would run it.


def test_tmux_user_asks_a_question_and_reads_the_answer(settings: Settings) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    folder = Path(tempfile.mkdtemp(prefix="pgpt-tmux-"))  # short: a socket path has at most ~100 bytes
    tmux = Tmux(folder, app_env(settings, TERM="xterm-256color"))
    try:
        tmux.start(f"env TERM=xterm-256color {shlex.quote(str(PGPT_TUI))}")  # tmux sets its own TERM
        seen = [tmux.wait_for(lambda s: READY in s, START_TIMEOUT, "loaded model")]
        # name@version: which export answers (the first 6 hex digits of the version)
        loaded = re.search(r"CPU · smollm2-135m-instruct-int8@[0-9a-f]{6} · loaded in", seen[0])
        assert loaded or "CUDA · " in seen[0]
        tmux("send-keys", "-t", "pgpt", "-l", QUESTION)
        tmux("send-keys", "-t", "pgpt", "Enter")
        # The status line shows TTFT and tok/s once the answer ends; the answer is greedy and short.
        seen.append(tmux.wait_for(lambda s: "tok/s" in s, ANSWER_TIMEOUT, "finished answer"))
        assert QUESTION in seen[-1] and "Paris" in seen[-1]
        # started by `sh -c`, no job control: a stopped app could never be resumed, so Ctrl+Z says why not
        tmux("send-keys", "-t", "pgpt", "C-z")
        tmux.wait_for(lambda s: "Ctrl+Z needs a shell with job" in s, 30, "the note on Ctrl+Z")  # a toast, wrapped
        tmux("send-keys", "-t", "pgpt", "C-q")
        status, left = tmux.wait_exit()
        assert status == 0, left
        seen.append(left)  # the screen after the app left the alternate screen: nothing was printed there
        assert [line for line in left.splitlines() if line.strip()] in ([], [left.strip()])
        assert left.strip() == "" or left.strip().startswith("Pane is dead (status 0")  # tmux's own line
        assert_no_logging_on("\n".join(seen), settings)
    finally:
        tmux.kill_server()
        shutil.rmtree(folder, ignore_errors=True)


def test_ctrl_z_suspends_to_a_job_control_shell_and_fg_paints_the_whole_app(settings: Settings) -> None:
    """Ctrl+Z did nothing, and after a SIGTSTP from outside and `fg` the screen came back blank but for
    the input (t54)."""
    if shutil.which("tmux") is None or shutil.which("bash") is None:
        pytest.skip("tmux and bash are needed")
    folder = Path(tempfile.mkdtemp(prefix="pgpt-tmux-"))
    tmux = Tmux(folder, app_env(settings, TERM="xterm-256color"))
    try:
        tmux("new-session", "-d", "-s", "pgpt", "-x", "80", "-y", "24", "bash --norc --noprofile -i")
        tmux("send-keys", "-t", "pgpt", "-l", f"TERM=xterm-256color {shlex.quote(str(PGPT_TUI))}")
        tmux("send-keys", "-t", "pgpt", "Enter")
        tmux.wait_for(lambda s: READY in s, START_TIMEOUT, "loaded model")
        tmux("send-keys", "-t", "pgpt", "C-z")
        tmux.wait_for(lambda s: "Stopped" in s and s.rstrip().endswith(("$", "#")), 30, "the shell, the app stopped")
        tmux("send-keys", "-t", "pgpt", "-l", "fg")
        tmux("send-keys", "-t", "pgpt", "Enter")
        back = tmux.wait_for(lambda s: READY in s and "f1 Keys" in s, 30, "the app again")
        assert "Enter sends" in back and "Stopped" not in back, back
        tmux("send-keys", "-t", "pgpt", "C-q")
        tmux.wait_for(lambda s: "f1 Keys" not in s and s.rstrip().endswith(("$", "#")), 30, "the shell after quitting")
    finally:
        tmux.kill_server()
        shutil.rmtree(folder, ignore_errors=True)


# 2. Document and model text cannot reach the terminal as escape sequences or markup.


def ingest_hostile_document(settings: Settings, docs: Path) -> None:
    """Index one document with hostile text and a hostile file name (one, so its result fits on 80x24)."""
    docs.mkdir()
    (docs / f"zanzibarite{OSC_TITLE}\x1b[2J-notes.txt").write_text(HOSTILE, encoding="utf-8")
    ingested = subprocess.run([str(PGPT_TUI), "ingest", str(docs)], env=cli_env(settings), capture_output=True,
                              timeout=600)
    assert ingested.returncode == 0, ingested.stderr
    found = subprocess.run([str(PGPT_TUI), "search", "zanzibarite", "--json"], env=cli_env(settings),
                           capture_output=True, text=True, timeout=600)
    assert found.returncode == 0, found.stderr
    [hit] = json.loads(found.stdout)["results"]
    assert OSC_TITLE in hit["source"] and OSC_CLIPBOARD in hit["text"] and "\x9b31m" in hit["text"]  # stored raw


def cache_hostile_answer(settings: Settings, question: str) -> None:
    """Make ``question`` (asked in Chat mode with the app's sampling) answer MODEL_ANSWER from the cache."""
    import diskcache

    from pgpt.runtime.llm.answer_cache import AnswerCache
    from pgpt.tui.chat.app import DEFAULT_MAX_NEW_TOKENS

    chat = subprocess.run([str(PGPT_TUI), "chat", question, "--max-tokens", str(DEFAULT_MAX_NEW_TOKENS)],
                          env=cli_env(settings), capture_output=True, text=True, timeout=600)
    assert chat.returncode == 0, chat.stderr
    with diskcache.Cache(str(settings.answer_cache_dir)) as raw:
        [key] = list(raw)  # keys are plain strings; values are read through AnswerCache only
    cache = AnswerCache(settings.answer_cache_dir)
    record = cache.get(key)
    assert record is not None
    cache.put(key, {**record, "answer": MODEL_ANSWER})
    cache.close()


def test_hostile_document_and_model_text_reach_the_terminal_as_plain_text(settings: Settings,
                                                                          tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    ingest_hostile_document(settings, docs)
    cache_hostile_answer(settings, QUESTION)

    def shown_safely(done: Callable[[str], bool]) -> Callable[[str], bool]:
        def condition(screen: str) -> bool:  # an injected sequence fails the wait at once, by name
            leaked = [payload for payload in INJECTED if payload in app.output]
            assert not leaked, f"injected sequences reached the terminal: {leaked}"
            return done(screen)

        return condition

    with pty_app(app_env(settings, TERM="xterm-256color")) as app:
        app.wait_for(lambda s: READY in s, START_TIMEOUT, "loaded model")
        app.send(b"\x12")  # Ctrl+R: Documents -> Chat
        app.wait_for(lambda s: "Chat with the model" in s, 30, "chat mode")
        app.send(QUESTION.encode() + b"\r")
        # "tok/s": the model answered itself (the app's sampling no longer matches the CLI's, say).
        answered = app.wait_for(shown_safely(lambda s: "done." in s and "cached" in s or "tok/s" in s),
                                ANSWER_TIMEOUT, "answer")
        app.send(b"\x12")  # Chat -> Search
        app.wait_for(lambda s: "Search your documents" in s, 30, "search mode")
        app.send(b"zanzibarite\r")
        found = app.wait_for(shown_safely(lambda s: "BOLD[/b] end." in s), ANSWER_TIMEOUT, "search result")
        app.send(b"\x11")  # Ctrl+Q
        assert app.wait_exit() == 0

    output = bytes(app.output)
    for payload in INJECTED:
        assert payload not in output, payload
    assert "\x9b" not in output.decode("utf-8", "replace") and output.count(b"\x1b[?1049l") == 1  # the app's own
    assert re.search(r"CPU · smollm2-135m-instruct-int8@[0-9a-f]{6} · cached", answered) or "CUDA · " in answered
    # Shown as text: the markup literally, the words around the stripped sequences, the file name
    # (a long path wraps: it is looked for with line breaks, spaces and border blocks taken out).
    for text in ("Paris.", "BLINKED", "[@click=app.quit]MODELCLICK[/]", "[i]ITALIC[/i]"):
        assert text in answered, text
    for text in ("[@click=app.quit]CLICKME[/]", "[b]BOLD[/b]", "Zanzibarite report.", "REDTEXT", "CONERED",
                 "OVERWRITE", "end."):
        assert text in found, text
    assert f"{docs}/zanzibarite-notes.txt" in re.sub(r"[\s\u2580-\u259f]", "", found)
    assert_no_logging_on(answered + found, settings, output)


# 3. TERM and NO_COLOR.

SGR = re.compile(rb"\x1b\[([0-9;:]*)m")
GREY_INDICES = {0, 7, 8, 15, 16, 59, 102, 145, 188, 231, *range(232, 256)}  # r == g == b in xterm's palette


def colors(output: bytes) -> tuple[set[int], set[tuple[int, int, int]], set[int]]:
    """The 256-palette indices, truecolor RGBs and 16-color indices the output's SGR sequences select."""
    palette: set[int] = set()
    truecolor: set[tuple[int, int, int]] = set()
    basic: set[int] = set()
    for params in SGR.findall(output):
        codes = [int(c) if c else 0 for c in re.split(rb"[;:]", params)]
        while codes:
            code = codes.pop(0)
            if code in (38, 48) and codes[:1] == [5]:
                palette.add(codes[1])
                codes = codes[2:]
            elif code in (38, 48) and codes[:1] == [2]:
                truecolor.add((codes[1], codes[2], codes[3]))
                codes = codes[4:]
            elif 30 <= code <= 37 or 40 <= code <= 47:
                basic.add(code % 10)
            elif 90 <= code <= 97 or 100 <= code <= 107:
                basic.add(8 + code % 10)
    return palette, truecolor, basic


@pytest.mark.parametrize("term, no_color", [("xterm", False), ("xterm-256color", False), ("xterm-256color", True)],
                         ids=["xterm", "xterm-256color", "NO_COLOR"])
def test_app_starts_paints_and_quits_under_each_terminal(settings: Settings, term: str, no_color: bool) -> None:
    env = app_env(settings, TERM=term, **({"NO_COLOR": "1"} if no_color else {}))
    with pty_app(env) as app:
        screen = app.wait_for(lambda s: "Enter sends" in s and "Quit" in s and READY in s, START_TIMEOUT,
                              "chat screen")
        app.send(b"\x11")  # Ctrl+Q
        assert app.wait_exit() == 0
    output = bytes(app.output)
    assert "Chat with the model, Enter sends" in screen
    assert_no_logging_on(screen, settings, output)
    # Nothing is printed beside the app: it opens the alternate screen first, and after leaving it
    # only resets terminal modes (no log line, no warning from onnxruntime).
    before, _, after = output.rpartition(b"\x1b[?1049l")
    assert output.startswith(b"\x1b[?1049h") and before
    assert re.fullmatch(rb"(?:\x1b\[[\x30-\x3f]*[\x40-\x7e])*", after), after
    palette, truecolor, basic = colors(output)
    assert not truecolor  # never 24-bit colors unless COLORTERM says the terminal has them
    if term == "xterm":
        assert not palette and basic  # 16 colors only
        # in the terminal's own palette (ansi-dark): the dark theme's keys fell to bright red on bright
        # grey, the same luminance in xterm's palette (t54); now on the terminal's own background
        footer = output[output.rindex(b"^q") - 40:output.rindex(b"Chats")]
        painted = {int(c) for params in SGR.findall(footer) for c in re.split(rb"[;:]", params)
                   if c and (40 <= int(c) <= 47 or 100 <= int(c) <= 107)}
        assert b"Keys" in footer and not painted, footer
    elif not no_color:
        assert palette - GREY_INDICES  # real colors: the check below can tell
    else:
        # Textual's NO_COLOR support turns every color into a grey (textual/filter.py Monochrome); it
        # still writes SGR color sequences, so "no color sequences at all" is not what it does.
        assert palette and palette <= GREY_INDICES and basic <= {0, 7, 8, 15}


def test_a_dumb_terminal_is_told_to_use_the_headless_commands(settings: Settings) -> None:
    """TERM=dumb (Emacs' shell, a serial console) got the full-screen app in 24-bit colour: a screen of
    escape sequences that looked hung (t54)."""
    with pty_app(app_env(settings, TERM="dumb")) as app:
        assert app.wait_exit() == 2
    shown = app.output.decode("utf-8", "replace")
    assert "\x1b" not in shown and "TERM=dumb" in shown and "pgpt-tui ask, chat, search" in shown, shown


def test_inside_gnu_screen_the_app_leaves_the_mouse_off_so_that_esc_arrives(settings: Settings) -> None:
    """GNU screen holds a lone Esc until the next key once mouse tracking is on (it may start a mouse
    report): inside screen one Esc neither stopped an answer nor left a panel (t54)."""
    with pty_app(app_env(settings, TERM="screen", STY="4242.pts-0.host")) as app:
        app.wait_for(lambda s: "Enter sends" in s and READY in s, START_TIMEOUT, "chat screen")
        app.send(b"\x11")  # Ctrl+Q
        assert app.wait_exit() == 0
    assert b"\x1b[?1049h" in app.output and b"\x1b[?1000h" not in app.output and b"\x1b[?1003h" not in app.output


def test_a_locale_that_cannot_write_unicode_is_told_to_use_a_utf8_one(settings: Settings) -> None:
    """In an ISO-8859-1 (or ASCII) locale the app drew its frames as "\\u2594\\u2594…" text (t54)."""
    ascii_locale = {"LANG": "C", "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    with pty_app({**app_env(settings, TERM="xterm-256color"), **ascii_locale}) as app:
        assert app.wait_exit() == 2
    shown = app.output.decode("utf-8", "replace")
    assert "\x1b[?1049h" not in shown and "locale writes ascii text" in shown and "LC_ALL=C.UTF-8" in shown, shown


def test_without_a_terminal_the_app_says_so_instead_of_drawing_escapes(settings: Settings) -> None:
    """`ssh host pgpt-tui` without -t, cron or a pipe: it wrote escape codes until killed, and with a
    piped question it drew a screen whose keys were dead (t54)."""
    done = subprocess.run([str(PGPT_TUI)], input="When does the ferry leave?\n", env=app_env(settings),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == "" and "\x1b" not in done.stderr, done.stderr[:300]
    assert "keyboard (stdin) and screen (stderr) are not one" in done.stderr and "pgpt-tui ask -" in done.stderr


@pytest.mark.parametrize("stop, code", [("SIGTERM", 143), ("SIGINT", 130), ("SIGHUP", -1)])  # -1: ended by SIGHUP
def test_a_signal_from_outside_quits_the_app_and_gives_the_terminal_back(settings: Settings, stop: str,
                                                                         code: int) -> None:
    """`kill -INT` froze the app (its KeyboardInterrupt landed in the event loop's select), and
    `kill -TERM` ended it in full-screen mode with mouse tracking on, until `reset`; `kill -HUP`, the
    terminal still there, the same (t54: it ends at once, the terminal usually gone)."""
    with pty_app(app_env(settings, TERM="xterm-256color")) as app:
        app.wait_for(lambda s: "Enter sends" in s and READY in s, START_TIMEOUT, "chat screen")
        app.process.send_signal(getattr(signal, stop))
        assert app.wait_exit() == code
    output = bytes(app.output)
    before, _, after = output.rpartition(b"\x1b[?1049l")  # the alternate screen left, as Ctrl+Q leaves it
    assert before and b"\x1b[?1000l" in after + before[-400:], after  # mouse tracking off


# 4. Quitting while a first-start export runs.


def test_ctrl_q_during_the_first_start_export_asks_then_quits_at_once(default_models: Settings,
                                                                      tmp_path: Path) -> None:
    """The export runs in a worker thread; quitting must not wait for it, and removes what it was
    writing (its temporary folder stayed, 631 MB for an F3 export, t62). Ctrl+Q asks first and the
    shell is told that the next start prepares the models again: it quit without a word (t53)."""
    import dataclasses

    from pgpt.runtime.models import DEFAULT_EMBEDDER, DEFAULT_LLM

    cache = tmp_path / "models"  # empty: the first start exports the chat model (minutes)
    settings = dataclasses.replace(default_models, home=tmp_path / "home", model_cache=cache)
    with pty_app(app_env(settings, TERM="xterm-256color")) as app:
        app.wait_for(lambda screen: "int8, export" in screen, START_TIMEOUT, "the export stage")
        app.send(b"\x11")  # Ctrl+Q
        app.wait_for(lambda screen: "being prepared (first start" in screen and "Quit anyway?" in screen, 60,
                     "the question whether to quit")
        app.send(b"y")
        quit_at = time.monotonic()
        assert app.wait_exit() == 0
        assert time.monotonic() - quit_at < 5.0  # the export stage alone takes longer than that
    after = app.output.decode("utf-8", "replace").rpartition("\x1b[?1049l")[2]  # after the full screen
    assert "pgpt-tui: the built-in models were being prepared (step " in after
    assert "when the app quit; the next start prepares them again." in after, after
    final = cache / f"{DEFAULT_LLM}-int8"
    assert not final.exists() and not (cache / DEFAULT_EMBEDDER).exists()  # nothing half-written looks usable
    assert not list(cache.glob(f".{final.name}.tmp-*"))  # nor left behind
