"""An SSH disconnect (SIGHUP, and the terminal is gone) in `pgpt-tui` loses nothing: an answer being
written is saved with its chat, marked (stopped); an ingestion or a download is cut where the runtime's
guarantees keep it whole (documents committed one by one, downloads renamed into place when complete)."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_hub import COMMIT, FakeHub
from pgpt.runtime.documents.unfinished import unfinished_adds
from pgpt.runtime.hub.download import find_ready, ready_marker
from pgpt.runtime.settings import Settings
from support import cli_env
from terminal_support import COLUMNS, PGPT_TUI, READY, ROWS, START_TIMEOUT, PtyApp, app_env

pytestmark = pytest.mark.slow

FILES = 60
PARAGRAPHS = 8
# Six letters each: every file has the same size and structure, and a paragraph (~100 word
# pieces) is one chunk on its own, so every file gives PARAGRAPHS chunks.
WORDS = ("copper", "meadow", "harbor", "pebble", "velvet", "marble", "canyon", "falcon", "garden", "silver")
HANGUP_EXIT_TIMEOUT = 60.0  # SIGHUP ends the app at once; generous for a loaded 2-core machine
CLI_TIMEOUT = 600.0
SLOW_REPO = "pgpt-test/slow"  # its weights trickle in (tests/fake_hub.py), so a download is in flight
KEPT_BEFORE_HANGUP = 5_000_000  # bytes of the weights on disk before the hangup


def _controlling_terminal() -> None:
    """In the child, after setsid: make its stdin (the pseudo-terminal) the session's controlling
    terminal, as sshd and tmux do, so that closing the master side hangs it up as a dropped SSH
    session does (the kernel sends SIGHUP, reads fail with EIO, writes fail)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@contextlib.contextmanager
def app_on_pty(env: dict[str, str], cwd: Path, sighup: Any = signal.SIG_DFL) -> Iterator[PtyApp]:
    """`pgpt-tui` on an 80x24 pseudo-terminal, its controlling terminal, in its own session, run from
    ``cwd``, with ``sighup`` as the SIGHUP disposition it inherits; its process group is killed when the
    test ends, and the terminal closed unless ``hang_up`` closed it."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    inherited = signal.signal(signal.SIGHUP, sighup)  # a child keeps an ignored signal across exec
    try:
        process = subprocess.Popen([str(PGPT_TUI)], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                   start_new_session=True, preexec_fn=_controlling_terminal)
    finally:
        signal.signal(signal.SIGHUP, inherited)
        os.close(slave)
    app = PtyApp(process, master)
    try:
        yield app
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the app and anything it may have started
        process.wait(timeout=30)
        if app.master >= 0:
            os.close(app.master)


def hang_up(app: PtyApp) -> int:
    """What an SSH disconnect (or `tmux kill-session`) does to the app: its terminal is gone (the
    kernel sends SIGHUP to the terminal's foreground process group), and SIGHUP is sent as sshd and
    tmux also do. Its exit code."""
    os.close(app.master)
    app.master = -1
    with contextlib.suppress(ProcessLookupError):
        os.kill(app.process.pid, signal.SIGHUP)
    try:
        code = app.process.wait(timeout=HANGUP_EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pgpt-tui was still running {HANGUP_EXIT_TIMEOUT:.0f} s after SIGHUP and the terminal closed")
    deadline = time.monotonic() + 10  # nothing it started outlives it (a child could hold the writer lock)
    while group_alive(app.process.pid):
        assert time.monotonic() < deadline, "processes of pgpt-tui's group outlived it"
        time.sleep(0.1)
    return code


def group_alive(group: int) -> bool:
    """Whether any process of the process group ``group`` is still there."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def pgpt(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A headless `pgpt-tui` command in a subprocess."""
    done = subprocess.run([str(PGPT_TUI), *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def indexed(env: dict[str, str]) -> dict[str, int]:
    """The indexed documents, path -> chunks, as `pgpt-tui docs --json` lists them."""
    listed = pgpt(env, "docs", "--json")
    assert listed.returncode == 0, listed.stderr
    return {d["path"]: d["chunks"] for d in json.loads(listed.stdout)["documents"]}


def write_corpus(folder: Path, files: int) -> list[Path]:
    """``files`` text files of the same size and structure (PARAGRAPHS paragraphs each)."""
    folder.mkdir()
    paths = []
    for i in range(files):
        paragraphs = [f"Report {i:03d} section {j} notes "
                      + " ".join(WORDS[(i + j + k) % len(WORDS)] for k in range(90)) + "." for j in range(PARAGRAPHS)]
        path = folder / f"report{i:03d}.txt"
        path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
        paths.append(path.resolve())
    assert len({p.stat().st_size for p in paths}) == 1
    return paths


def assert_lock_free(settings: Settings) -> None:
    """Nobody holds the index's writer lock (a dead holder's flock went with its process)."""
    with open(settings.home / "index" / ".writer.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if it were still held
        fcntl.flock(handle, fcntl.LOCK_UN)


def add_some(app: PtyApp, docs: Path) -> int:
    """Once the model is loaded, add ``docs`` on the Docs screen (F4) and wait until at least 5 of its
    FILES files are done; how many the screen shows done."""
    app.wait_for(lambda s: READY in s, START_TIMEOUT, "loaded model")
    app.send(b"\x1bOS")  # F4 as xterm sends it
    app.wait_for(lambda s: "Documents · Enter adds the path" in s, 60, "Docs screen")
    app.send(str(docs).encode() + b"\r")
    progress = re.compile(rf"(\d+)/{FILES} files")

    def some_files_done(screen: str) -> bool:
        found = progress.search(screen)
        assert not (found and int(found[1]) == FILES), f"ingestion ended before it was cut:\n{screen}"
        return bool(found) and int(found[1]) >= 5

    screen = app.wait_for(some_files_done, 300, f"progress of at least 5/{FILES} files")
    return int(progress.search(screen)[1])  # type: ignore[index]


def test_sighup_during_ingestion_keeps_whole_documents_and_the_next_ingest_adds_the_rest(
        settings: Settings, tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    docs = tmp_path / "docs"
    paths = write_corpus(docs, FILES)
    # What one of these files gives when ingested on its own (a copy in a separate home).
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "report000.txt").write_bytes(paths[0].read_bytes())
    reference_env = cli_env(dataclasses.replace(settings, home=tmp_path / "reference-home"))
    reference = pgpt(reference_env, "ingest", str(alone), "--json")
    assert reference.returncode == 0, reference.stderr
    [whole] = indexed(reference_env).values()
    assert whole == PARAGRAPHS  # each paragraph is one chunk: a partial document would have fewer

    with app_on_pty(app_env(settings, TERM="xterm-256color"), tmp_path) as app:
        seen_done = add_some(app, docs)
        code = hang_up(app)
    before = indexed(cli_env(settings))  # reading works without the lock
    record_property("exit_code_after_sighup", code)
    print(f"pgpt-tui exit code after SIGHUP: {code}; {seen_done}/{FILES} files shown done, {len(before)} indexed")
    assert set(before) <= set(map(str, paths))
    assert seen_done <= len(before) < FILES, before
    partial = {path: chunks for path, chunks in before.items() if chunks != whole}
    assert not partial, f"documents with fewer or more than {whole} chunks: {partial}"
    assert_lock_free(settings)
    [unfinished] = unfinished_adds(settings)  # what the next start of the app says (test_unfinished_adds.py)
    assert unfinished.ended() and unfinished.paths == [str(docs.resolve())]
    assert unfinished.total == FILES and seen_done <= unfinished.done <= len(before), unfinished

    resumed = pgpt(cli_env(settings), "ingest", str(docs), "--json")
    assert resumed.returncode == 0 and "Another ingestion" not in resumed.stderr, resumed.stderr
    report = json.loads(resumed.stdout)
    assert sorted(report["unchanged"]) == sorted(before)
    assert sorted(report["added"]) == sorted(set(map(str, paths)) - set(before))
    assert len(report["added"]) == FILES - len(before)
    assert report["failed"] == [] and report["updated"] == [] and report["renamed"] == []
    assert report["chunks"] == whole * (FILES - len(before))
    after = indexed(cli_env(settings))
    assert after == {str(path): whole for path in paths}
    found = pgpt(cli_env(settings), "search", "Report 059 section 7", "--json")  # the full-text index too
    assert found.returncode == 0 and json.loads(found.stdout)["results"], found.stderr
    assert unfinished_adds(settings) == []  # the CLI's add of the same folder finished it


def test_quitting_during_ingestion_says_on_stderr_how_far_it_got_and_how_to_go_on(
        settings: Settings, tmp_path: Path) -> None:
    """Ctrl+Q, then y (quit anyway) during an add exited 0 without a word on the shell."""
    docs = tmp_path / "docs"
    write_corpus(docs, FILES)
    with app_on_pty(app_env(settings, TERM="xterm-256color"), tmp_path) as app:
        seen_done = add_some(app, docs)
        app.send(b"\x11")  # Ctrl+Q
        app.wait_for(lambda s: "Quit anyway?" in s, 60, "the question whether to quit")
        app.send(b"y")
        assert app.wait_exit() == 0
    after = app.output.decode("utf-8", "replace").rpartition("\x1b[?1049l")[2]  # after the full screen
    said = re.search(rf"pgpt-tui: Adding {re.escape(str(docs))} stopped after (\d+) of {FILES} files when the app "
                     rf"quit; the files done are in the index\. To continue, add it again \(F4\) or run: "
                     rf"pgpt-tui ingest {re.escape(str(docs))}\r\n", after)
    assert said and seen_done <= int(said[1]) < FILES, after
    [unfinished] = unfinished_adds(settings)  # the next start says it too
    assert unfinished.done >= int(said[1]) and unfinished.ended()  # the add went on until the process ended


def test_sighup_during_a_download_marks_nothing_ready_and_the_next_download_resumes(
        settings: Settings, hub: FakeHub, tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    env = app_env(settings, TERM="xterm-256color", HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0",
                  HF_HOME=str(tmp_path / "hf"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN"):
        env.pop(name, None)
    blobs = tmp_path / "hf" / "hub" / f"models--{SLOW_REPO.replace('/', '--')}" / "blobs"
    weights = hub.repos[SLOW_REPO].files["model.safetensors"]

    def kept_bytes() -> int:
        return sum(p.stat().st_size for p in blobs.glob("*.incomplete")) if blobs.is_dir() else 0

    with app_on_pty(env, tmp_path) as app:
        app.wait_for(lambda s: READY in s, START_TIMEOUT, "loaded model")
        app.send(b"\x1bOR")  # F3 as xterm sends it
        app.wait_for(lambda s: "Models · a Hub repo id" in s, 60, "Models screen")
        app.send(SLOW_REPO.encode() + b"\x07")  # Ctrl+G: get (download) the repo typed
        shown = re.compile(r"file model\.safetensors: (\d+\.\d)/")

        def weights_arriving(screen: str) -> bool:
            found = shown.search(screen)
            return bool(found) and float(found[1]) > 0 and kept_bytes() > KEPT_BEFORE_HANGUP

        app.wait_for(weights_arriving, 300, "download progress of the weights")
        code = hang_up(app)
    record_property("exit_code_after_sighup", code)
    print(f"pgpt-tui exit code after SIGHUP: {code}")

    assert find_ready(settings, SLOW_REPO) is None
    assert not list((settings.home / "downloads").glob(f"{SLOW_REPO.replace('/', '--')}@*"))
    [partial] = list(blobs.glob("*.incomplete"))
    kept = partial.stat().st_size
    assert KEPT_BEFORE_HANGUP < kept < len(weights)

    asked_before = len(hub.requests)
    done = pgpt(env, "download", SLOW_REPO)
    assert done.returncode == 0, done.stderr
    fetched = [r for r in hub.requests[asked_before:]
               if r["method"] == "GET" and r["path"] == f"/{SLOW_REPO}/resolve/{COMMIT}/model.safetensors"]
    assert [r["range"] for r in fetched] == [f"bytes={kept}-"]  # only the rest, once
    folder = find_ready(settings, SLOW_REPO)
    assert folder is not None and not list(blobs.glob("*.incomplete"))
    # The files the download fetched (those an export needs) hold the Hub's bytes, the weights among them.
    listed = [entry["path"] for entry in json.loads(ready_marker(settings, SLOW_REPO, COMMIT).read_text())["files"]]
    assert "model.safetensors" in listed
    for name in listed:
        assert hashlib.sha256((folder / name).read_bytes()).digest() == \
            hashlib.sha256(hub.repos[SLOW_REPO].files[name]).digest(), name


def test_sighup_ends_the_app_even_when_it_was_started_with_sighup_ignored(settings: Settings, tmp_path: Path) -> None:
    """Started under ``nohup`` (or a runner that ignores SIGHUP), the app outlived its terminal: found
    when the whole suite ran under nohup and both tests above failed."""
    with app_on_pty(app_env(settings, TERM="xterm-256color"), tmp_path, sighup=signal.SIG_IGN) as app:
        app.wait_for(lambda s: READY in s, START_TIMEOUT, "loaded model")
        assert hang_up(app) != 0


STORY = "Tell me a long story about a lighthouse keeper named Ola."


def test_sighup_while_an_answer_is_written_saves_the_chat_with_the_answer_marked_stopped(
        settings: Settings, tmp_path: Path) -> None:
    """The tester's case: a new chat's first answer streams, then `tmux kill-session`; the chat was
    not saved at all (SIGHUP's default ended the app before it saved, which it does after an answer)."""
    with app_on_pty(app_env(settings, TERM="xterm-256color"), tmp_path) as app:
        app.wait_for(lambda s: READY in s, START_TIMEOUT, "loaded model")
        app.send(b"\x0e")  # Ctrl+N, a new chat, as the tester did
        app.send(STORY.encode() + b"\r")

        def answer_words(screen: str) -> int:
            """Words between the question and the status line ("CPU · smollm2-135m-instruct-int8 · answering…")."""
            written, status, _ = screen.partition(STORY)[2].partition("answering")
            return len(re.findall(r"\w+", written)) - 5 if status else 0

        app.wait_for(lambda s: answer_words(s) >= 10, 120, "the answer being written")
        assert hang_up(app) != 0
    [saved] = list((settings.home / "conversations").glob("*.json"))
    chat = json.loads(saved.read_text(encoding="utf-8"))
    question, answer = chat["turns"]
    assert question == {"kind": "user", "text": STORY}
    assert answer["kind"] == "assistant" and answer["mark"] == "(stopped)" and len(answer["text"].split()) > 3, answer
    assert chat["context"] == [{"role": "user", "content": STORY}, {"role": "assistant", "content": answer["text"]}]
