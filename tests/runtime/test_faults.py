"""Faults named, with a way out: a full disk, read-only folders (by mode and by mount), unreadable
files and damaged caches (probe rows 4.7, 4.8, 4.9, 4.10, 4.14).

Real faults: a small tmpfs filled up, a read-only bind mount, and modes that root obeys once
the CLI runs without CAP_DAC_OVERRIDE (capsh). Each needs root and is skipped without it.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgpt.runtime.settings import Settings, ensure_private_dir
from support import cli_env

pytestmark = pytest.mark.slow
NO_DAC = ("capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c")


def cli(settings: Settings, *args: str, stdin: str = "", drop_dac: bool = False,
        timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run `pgpt-tui ARGS` against ``settings`` (as root that obeys file modes with ``drop_dac``)."""
    command = [sys.executable, "-m", "pgpt.tui.cli.main", *args]
    if drop_dac:
        command = [*NO_DAC, shlex.join(command)]
    return subprocess.run(command, env=cli_env(settings), input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def assert_clean_failure(done: subprocess.CompletedProcess[str], title: str, folder: Path) -> None:
    """One paragraph naming the fault and the folder, no traceback, exit 1."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"error: {title}:" in done.stderr and str(folder) in done.stderr, done.stderr
    for noise in ("Traceback", "Logging error", "bug in pgpt"):
        assert noise not in done.stderr, done.stderr


def _can(command: list[str]) -> bool:
    return shutil.which(command[0]) is not None and subprocess.run(command, capture_output=True).returncode == 0


@pytest.fixture()
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs (the first ingest and chat use about 6 MB of it), unmounted afterwards."""
    point = tmp_path / "disk"
    point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(point)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=True)


def _corpus(folder: Path, files: int, word: str) -> Path:
    folder.mkdir(parents=True)
    for i in range(files):
        (folder / f"{word}{i}.txt").write_text(f"Note {i}: the {word} codeword is {word.upper()}{i}X. " * 20)
    return folder


def _fill(disk: Path) -> None:
    """Write until the disk is full (ENOSPC)."""
    try:
        with open(disk / "filler", "wb") as handle:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC


def test_a_full_disk_is_named_and_leaves_nothing_behind(settings: Settings, tmpfs: Path, tmp_path: Path) -> None:
    """Probe 4.10: tracebacks ("--- Logging error ---"), "disk I/O error ... a bug in pgpt", an ingest
    with nothing new failing, and a 0-byte config.<pid>.tmp left behind."""
    import dataclasses

    home = dataclasses.replace(settings, home=tmpfs / "home")
    first = _corpus(tmp_path / "first", 3, "alpha")
    assert cli(home, "ingest", str(first)).returncode == 0
    assert cli(home, "chat", "Say hello.", "--max-tokens", "4").returncode == 0
    _fill(tmpfs)
    answered = cli(home, "chat", "Say goodbye now.", "--max-tokens", "4")
    assert answered.returncode == 0 and answered.stdout.strip()  # the cache only saves time
    assert "Traceback" not in answered.stderr and "Logging error" not in answered.stderr
    more = _corpus(tmp_path / "more", 30, "beta")
    assert_clean_failure(cli(home, "ingest", str(more)), "Disk full", home.home / "index")
    unchanged = cli(home, "ingest", str(first))  # nothing to write: no compaction on a full disk
    assert unchanged.returncode == 0 and "3 unchanged" in unchanged.stdout, unchanged.stderr
    assert_clean_failure(cli(home, "models", "--use", "smollm2-135m-instruct-int8"), "Disk full", home.home)
    assert_clean_failure(cli(home, "token", "set", "--stdin", stdin="hf_" + "x" * 34 + "\n"), "Disk full", home.home)
    assert not [p.name for p in home.home.rglob("*") if ".tmp" in p.name]  # no temporary left behind
    (tmpfs / "filler").unlink()
    resumed = cli(home, "ingest", str(more))
    assert resumed.returncode == 0 and "30 added" in resumed.stdout


def _tree_modes(root: Path) -> dict[str, int]:
    return {str(p): stat.S_IMODE(p.lstat().st_mode) for p in [root, *root.rglob("*")]}


def test_a_read_only_home_by_mode_is_never_chmodded_and_writers_name_it(settings: Settings, tmp_path: Path) -> None:
    """Probe 4.8: pgpt chmodded a read-only PGPT_HOME back to 0700 and wrote into it; chat and ask
    failed with "attempt to write a readonly database ... a bug in pgpt"."""
    if not _can([*NO_DAC, "true"]):
        pytest.skip("needs capsh and root to make root obey file modes")
    corpus = _corpus(tmp_path / "corpus", 3, "gamma")
    assert cli(settings, "ingest", str(corpus)).returncode == 0
    assert cli(settings, "chat", "Say hello.", "--max-tokens", "4").returncode == 0
    subprocess.run(["chmod", "-R", "a-w", str(settings.home)], check=True)
    modes = _tree_modes(settings.home)
    try:
        chat = cli(settings, "chat", "Say hello again.", "--max-tokens", "4", drop_dac=True)
        assert chat.returncode == 0 and chat.stdout.strip(), chat.stderr
        assert "warning: Read-only folder:" in chat.stderr and str(settings.answer_cache_dir) in chat.stderr
        asked = cli(settings, "ask", "What is the gamma codeword of note 1?", "--max-tokens", "8", drop_dac=True)
        assert asked.returncode == 0 and "Read-only folder" in asked.stderr, asked.stderr
        for command in (["search", "GAMMA1X"], ["docs"]):
            assert cli(settings, *command, drop_dac=True).returncode == 0
        writer = cli(settings, "ingest", str(_corpus(tmp_path / "more", 2, "delta")), drop_dac=True)
        assert_clean_failure(writer, "Permission denied", settings.home / "index")
        token = cli(settings, "token", "set", "--stdin", stdin="hf_" + "y" * 34 + "\n", drop_dac=True)
        assert_clean_failure(token, "Permission denied", settings.home)
        assert_clean_failure(cli(settings, "models", "--use", "smollm2-135m-instruct-int8", drop_dac=True),
                             "Permission denied", settings.home)
        assert _tree_modes(settings.home) == modes  # not one mode changed
        assert not (settings.home / "hf_token").exists()
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(settings.home)], check=True)


def test_pgpt_serve_with_a_read_only_home_says_why_before_it_listens(settings: Settings) -> None:
    """It printed "listening on ..." and exited 3 a second later without a word: the reason went to
    a log in that home, which could not be written either (under systemd: a restart every 5 s)."""
    if not _can([*NO_DAC, "true"]):
        pytest.skip("needs capsh and root to make root obey file modes")
    settings.home.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chmod", "-R", "a-w", str(settings.home)], check=True)
    try:
        command = [sys.executable, "-m", "pgpt.serve.cli", "--port", "18899"]  # refused before it is bound
        done = subprocess.run([*NO_DAC, shlex.join(command)], env=cli_env(settings), capture_output=True, text=True,
                              timeout=120)
        assert_clean_failure(done, "Permission denied", settings.home)
        assert "listening" not in done.stderr and "PGPT_HOME" in done.stderr
        # a home that can be written, with an answer cache that cannot: the start fails later, and says why
        subprocess.run(["chmod", "u+w", str(settings.home)], check=True)
        settings.answer_cache_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["chmod", "a-w", str(settings.answer_cache_dir)], check=True)
        done = subprocess.run([*NO_DAC, shlex.join(command)], env=cli_env(settings), capture_output=True, text=True,
                              timeout=120)
        assert_clean_failure(done, "Permission denied", settings.answer_cache_dir)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(settings.home)], check=True)


def test_a_read_only_mount_lets_readers_work_and_names_the_folder_to_writers(settings: Settings,
                                                                           tmp_path: Path) -> None:
    """Probe 4.9: a read-only bind mount as PGPT_HOME; readers (search, docs, chat) now work too."""
    corpus = _corpus(tmp_path / "corpus", 3, "epsilon")
    assert cli(settings, "ingest", str(corpus)).returncode == 0
    home = str(settings.home)
    if os.geteuid() != 0 or subprocess.run(["mount", "--bind", home, home], capture_output=True).returncode != 0:
        pytest.skip("a bind mount needs root")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", home], check=True)
        for command in (["search", "EPSILON1X"], ["docs"], ["chat", "Hi.", "--max-tokens", "3"]):
            done = cli(settings, *command)
            assert done.returncode == 0 and "Traceback" not in done.stderr, (command, done.stderr)
        assert_clean_failure(cli(settings, "ingest", str(corpus)), "Read-only folder", settings.home / "index")
    finally:
        subprocess.run(["umount", home], check=True)


def test_a_damaged_answer_cache_is_moved_aside_and_rebuilt(settings: Settings) -> None:
    """Probe 4.14: random bytes over cache.db stopped chat and ask ("file is not a database ... a bug
    in pgpt") and doctor did not flag it."""
    assert cli(settings, "chat", "Say hello.", "--max-tokens", "4").returncode == 0
    database = settings.answer_cache_dir / "cache.db"
    database.write_bytes(os.urandom(4096))
    for extra in ("cache.db-wal", "cache.db-shm"):
        (settings.answer_cache_dir / extra).unlink(missing_ok=True)
    doctor = cli(settings, "doctor", "--offline")
    assert "answer cache" in doctor.stdout and "DAMAGED" in doctor.stdout, doctor.stdout
    first = cli(settings, "chat", "Say hello.", "--max-tokens", "4", "--json")
    assert first.returncode == 0 and '"cached": false' in first.stdout, first.stderr
    assert "warning:" in first.stderr and "was damaged" in first.stderr and "moved to" in first.stderr
    moved = [p for p in settings.answer_cache_dir.parent.iterdir() if p.name.startswith("answers.damaged-")]
    assert len(moved) == 1 and (moved[0] / "cache.db").read_bytes()[:16] != b"SQLite format 3\0"
    second = cli(settings, "chat", "Say hello.", "--max-tokens", "4", "--json")
    assert '"cached": true' in second.stdout and "warning" not in second.stderr  # rebuilt, and working
    assert "ok, 1 answers" in cli(settings, "doctor", "--offline").stdout


def test_doctor_flags_a_damaged_index(settings: Settings, tmp_path: Path) -> None:
    """A torn write (a zero-byte newest manifest, as a power cut leaves it) is named by doctor."""
    corpus = _corpus(tmp_path / "corpus", 2, "zeta")
    assert cli(settings, "ingest", str(corpus)).returncode == 0
    healthy = cli(settings, "doctor", "--offline")
    assert "document index" in healthy.stdout and "ok, 2 documents" in healthy.stdout, healthy.stdout
    assert healthy.returncode == 0 and "problem" not in healthy.stderr, healthy.stderr
    # onnxruntime-gpu on a machine without a GPU: "build GPU" alone read as a GPU found (t77)
    build = next(line for line in healthy.stdout.splitlines() if line.split()[:1] == ["build"])
    usable = "cuda usable            yes" in healthy.stdout
    assert "GPU" not in build or usable or "runs on the CPU here: no usable GPU" in build, build
    manifests = sorted((settings.home / "index" / "chunks.lance" / "_versions").glob("*.manifest"),
                       key=lambda p: p.stat().st_mtime_ns)
    manifests[-1].write_bytes(b"")
    damaged = cli(settings, "doctor", "--offline")
    # not --reindex: on an unreadable index it starts a new table without the other folders' documents
    assert "DAMAGED" in damaged.stdout and ".damaged) and add your documents again" in damaged.stdout, damaged.stdout
    assert damaged.returncode == 1 and "data: document index: " in damaged.stderr, damaged.stderr


def test_reindex_of_a_damaged_index_moves_it_aside_and_says_what_was_lost(settings: Settings, tmp_path: Path) -> None:
    """A tester's `ingest --reindex PATH` on an unreadable index dropped the old table, which held
    other folders and collections, and said "0 removed"."""
    first, second = _corpus(tmp_path / "first", 2, "zeta"), _corpus(tmp_path / "second", 1, "eta")
    assert cli(settings, "ingest", str(first), "--collection", "other").returncode == 0
    assert cli(settings, "ingest", str(second)).returncode == 0
    manifests = sorted((settings.home / "index" / "chunks.lance" / "_versions").glob("*.manifest"),
                       key=lambda p: p.stat().st_mtime_ns)
    manifests[-1].write_bytes(b"")
    done = cli(settings, "ingest", "--reindex", str(second))
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("Re-indexing: every document of the index is read again")  # not only PATH (t53)
    assert "could not be read (damaged), so none of its documents came along" in done.stdout, done.stdout
    aside = list(settings.home.glob("index.damaged-*"))
    assert len(aside) == 1 and str(aside[0]) in done.stdout
    assert len(list((aside[0] / "chunks.lance" / "_versions").glob("*.manifest"))) == len(manifests)  # kept whole
    docs = cli(settings, "docs")
    assert docs.returncode == 0 and "second" in docs.stdout and "first" not in docs.stdout, docs.stdout
    assert "ok, 1 documents" in cli(settings, "doctor", "--offline").stdout


def test_an_unreadable_file_fails_the_ingest_with_the_way_to_fix_it(settings: Settings, tmp_path: Path) -> None:
    """A tester's mode-000 file was "skipped: unreadable (permission denied)", exit 0, no next step."""
    if not _can([*NO_DAC, "true"]):
        pytest.skip("needs capsh and root to make root obey file modes")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.txt").write_text("The ferry leaves at noon.")
    secret = docs / "secret.txt"
    secret.write_text("The launch code is 7341.")
    secret.chmod(0)
    done = cli(settings, "ingest", str(docs), drop_dac=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert (f"failed: {secret}: unreadable (permission denied); check its owner and mode: ls -ld {secret}"
            in done.stdout), done.stdout
    assert "1 added, 0 updated, 0 renamed, 0 unchanged, 0 removed, 0 skipped, 1 failed" in done.stdout


def test_an_unreadable_stored_token_is_reported_not_hidden(settings: Settings) -> None:
    """Probe 4.7: with PGPT_HOME unreadable, `token status` said "(none) from none", exit 0."""
    if not _can([*NO_DAC, "true"]):
        pytest.skip("needs capsh and root to make root obey file modes")
    assert cli(settings, "token", "set", "--stdin", stdin="hf_CANARYtokenCANARYtoken0123456789\n").returncode == 0
    settings.home.chmod(0)
    try:
        status = cli(settings, "token", "status", drop_dac=True)
    finally:
        settings.home.chmod(0o700)
    assert status.returncode == 1
    assert "cannot be read (Permission denied)" in status.stderr and str(settings.home / "hf_token") in status.stderr
    assert "CANARY" not in status.stdout + status.stderr


def test_pgpt_never_changes_the_mode_of_a_folder_it_did_not_create(tmp_path: Path) -> None:
    """Probe 4.8's cause: ensure_private_dir made every existing folder 0700."""
    mine = tmp_path / "given"
    mine.mkdir()
    mine.chmod(0o755)
    ensure_private_dir(mine / "a" / "b")
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755
    assert stat.S_IMODE((mine / "a").stat().st_mode) == stat.S_IMODE((mine / "a" / "b").stat().st_mode) == 0o700
    (mine / "a").chmod(0o500)
    ensure_private_dir(mine / "a")
    assert stat.S_IMODE((mine / "a").stat().st_mode) == 0o500


def test_the_log_handler_stays_quiet_when_the_log_cannot_be_written(capsys: pytest.CaptureFixture[str]) -> None:
    """Probe 4.10: a full disk printed "--- Logging error ---" and a traceback for each log call."""
    import io
    import logging

    from pgpt.runtime.logs import QuietFileHandler, SafeFormatter

    class FullDisk(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    handler = QuietFileHandler(FullDisk())
    handler.setFormatter(SafeFormatter("%(message)s"))
    logger = logging.getLogger("pgpt.test.quiet")
    logger.addHandler(handler)
    try:
        logger.error("command failed with hf_abcdefghijklmnop and \x1b[2J", exc_info=RuntimeError("x"))
    finally:
        logger.removeHandler(handler)
    assert capsys.readouterr().err == "" and handler.failed
    record = logging.LogRecord("pgpt", logging.INFO, __file__, 1, "token hf_abcdefghijklmnop \x1b]52;c;eA==\x07", (),
                               None)
    assert SafeFormatter("%(message)s").format(record) == "token hf_*** "


def test_an_export_into_a_read_only_model_cache_is_refused_before_any_work(tmp_path: Path) -> None:
    """A tester's read-only PGPT_MODEL_CACHE failed only after the download, naming a temp folder."""
    if not _can([*NO_DAC, "true"]):
        pytest.skip("needs capsh and root to make root obey file modes")
    from support import gguf_path

    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "models")
    settings.model_cache.mkdir()
    settings.model_cache.chmod(0o555)
    try:
        command = [str(Path(sys.executable).parent / "pgpt-export"), str(gguf_path()), "--dtype", "int8"]
        done = subprocess.run([*NO_DAC, shlex.join(command)], env=cli_env(settings), capture_output=True,
                              text=True, timeout=120)
        assert_clean_failure(done, "Permission denied", settings.model_cache)
        assert "the model cache (PGPT_MODEL_CACHE)" in done.stderr and "resolv" not in done.stdout + done.stderr
        assert list(settings.model_cache.iterdir()) == []
    finally:
        settings.model_cache.chmod(0o755)


def test_a_data_folder_made_for_a_write_check_is_private(tmp_path: Path) -> None:
    """pgpt-serve's start check made a new PGPT_HOME with mode 0755 (pgpt-tui's 0700): on a shared
    server it was listable by every user (t49). A path under a file is named as such (t51)."""
    from pgpt.runtime.errors import StorageError
    from pgpt.runtime.storage_faults import require_writable

    require_writable(tmp_path / "new" / "home", "PGPT_HOME")
    assert {oct((tmp_path / p).stat().st_mode & 0o777) for p in ("new", "new/home")} == {"0o700"}
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StorageError, match=r"The output folder's parent \(-o\), .*/afile/out, cannot be made: "
                                           r".*/afile is a file, not a folder"):
        require_writable(tmp_path / "afile" / "out", "the output folder's parent (-o)")  # "[Errno 17] File exists"


def test_a_home_where_no_folder_can_be_made_is_named(tmp_path: Path) -> None:
    """A cron job with HOME=/proc/1: "File not found: ... '/proc/1/.local'. Check the path", about a path
    the user never gave (t50). The folder and the settings that place it are named."""
    from pgpt.runtime.errors import StorageError
    from pgpt.runtime.settings import ensure_private_dir

    with pytest.raises(StorageError, match=r"The folder /proc/1/\.pgpt-test cannot be created") as refused:
        ensure_private_dir(Path("/proc/1/.pgpt-test/share"))
    assert "PGPT_HOME" in str(refused.value.hint) and "HOME" in str(refused.value.hint)


def test_an_index_this_user_may_not_read_is_named_not_called_empty_or_damaged(settings: Settings,
                                                                               tmp_path: Path) -> None:
    """t70: a home restored with another user's owner read as "Nothing is indexed yet" in search and
    ask, and doctor called the index damaged and advised moving it aside and adding everything again."""
    if not _can([*NO_DAC, "true"]):
        pytest.skip("needs capsh and root to make root obey file modes")
    corpus = _corpus(tmp_path / "corpus", 2, "delta")
    assert cli(settings, "ingest", str(corpus)).returncode == 0
    index = settings.home / "index"
    index.chmod(0o000)  # as a folder of another user's, mode 0700, reads to this one
    try:
        for command in (["search", "DELTA1X"], ["ask", "What is the delta codeword of note 1?"]):
            done = cli(settings, *command, drop_dac=True)
            assert done.returncode == 1 and "Nothing is indexed" not in done.stderr, done.stderr
            assert "Permission denied" in done.stderr and str(index) in done.stderr, done.stderr
            assert "Traceback" not in done.stderr
        cache = settings.answer_cache_dir
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "cache.db").write_bytes(b"")
        cache.chmod(0o000)  # doctor stopped at such a file, and said nothing of the rest
        doctor = cli(settings, "doctor", "--offline", drop_dac=True)
        said = doctor.stdout + doctor.stderr
        assert "cannot be read by this user (permission denied" in said and "chown -R" in said, said
        assert "DAMAGED" not in said and "answer cache" in said and "log file" in said, said
        assert doctor.returncode == 1 and "Traceback" not in said
    finally:
        index.chmod(0o700)
        settings.answer_cache_dir.chmod(0o700)


def test_a_hub_that_does_not_answer_is_no_problem_for_a_client_of_a_server() -> None:
    """An air-gapped client of a healthy pgpt-serve: doctor exited 1 every run over the Hub, which the
    client never uses (its server holds the models), so a health cron alerted every time (t73)."""
    from pgpt.runtime.doctor import notes, problems

    report = {"onnxruntime": {"package conflict": "none"}, "gpu": {"provider setting": "cpu", "cuda usable": "no"},
              "folders": {"damaged models": "none"},
              "network": {"hub answers": "no: ConnectionError", "offline (HF_HUB_OFFLINE)": "no",
                          "token": "hf_...xxxx from HF_TOKEN", "mirror": False}}
    assert problems(report) == ["network: hub answers: no: ConnectionError"] and notes(report) == []
    client = {**report, "server": {"answers": "yes: chat model smollm2@466db8"}}
    assert problems(client) == [] and notes(client) == []
    # nor for a machine that never uses the Hub (no token, no mirror): a note, not a failed health check (t77)
    unused = {**report, "network": {**report["network"], "token": "none set"}}
    assert problems(unused) == [] and notes(unused)[0].startswith("network: hub answers: no: ConnectionError (models")
