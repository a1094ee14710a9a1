"""The error table: every pgpt error and the foreign ones map to a title, one paragraph, an exit code."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pgpt.runtime import errors as e
from pgpt.runtime.storage_faults import storage_fault


@pytest.mark.parametrize(
    "error, title, words",
    [
        (e.ConfigError("PGPT_THREADS='x' is not a whole number."), "Invalid setting", "README"),
        (e.UnsafeWeightsError("only pickle"), "Pickle weights refused", "safetensors"),
        (e.RemoteCodeError("auto_map"), "Model needs remote code", "--trust-remote-code"),
        (e.OutputExistsError("exists"), "Output folder exists", "-o"),
        (e.DiskSpaceError("needs 3 GB"), "Not enough disk space", "PGPT_MODEL_CACHE"),
        (e.QualityError("agrees 60%"), "Quality check failed", "--accept-quality-loss"),
        (e.ModelNotFoundError("none"), "Model not found", "pgpt-export --default"),
        (e.ModelIntegrityError("sha256"), "Model files damaged", "Export the model again"),
        (e.ContextLengthError("too long"), "Prompt too long", "--max-tokens"),
        (e.TemplateError("unsafe"), "Chat template error", "template"),
        (e.Cancelled("stopped"), "Cancelled", "Nothing was changed"),
        (e.IndexModelMismatchError("built with x"), "Index built with another embedding model", "--reindex"),
        (e.IngestLockedError("pid 12"), "Ingestion already running", "search and chat keep working"),
        (e.ProviderError("no CUDA", hint="Use --provider cpu."), "Execution provider unavailable", "--provider cpu"),
    ],
)
def test_pgpt_errors_map_to_cause_and_next_step(error: Exception, title: str, words: str) -> None:
    message = e.user_message(error)
    assert message.title == title
    assert str(error) in message.text and words in message.text
    assert "\n" not in message.text and "Traceback" not in message.text
    wrong = isinstance(error, (e.ConfigError, e.UsageError, e.ModelNotFoundError))
    assert message.exit_code == (2 if wrong else 130 if isinstance(error, e.Cancelled)  # 130: a Ctrl-C
                                 else 75 if isinstance(error, e.IngestLockedError) else 1)  # 75: try again (t71)
    assert message.code == {"Invalid setting": "config", "Ingestion already running": "ingest_locked",
                            "Index built with another embedding model": "index_model_mismatch"}.get(title, message.code)
    assert message.code and message.code.replace("_", "").isalnum() and message.code.islower()


@pytest.mark.parametrize(
    "error, title",
    [
        (PermissionError(13, "Permission denied", "/data"), "Permission denied"),
        (FileNotFoundError(2, "No such file", "/x"), "File not found"),
        (MemoryError(), "Out of memory"),
        (OSError(28, "No space left on device"), "Disk full"),
        (OSError(30, "Read-only file system", "/ro"), "Read-only folder"),
        (OSError(5, "Input/output error"), "System error"),
        (KeyboardInterrupt(), "Interrupted"),
        (RuntimeError("boom"), "Unexpected error"),
    ],
)
def test_foreign_errors_have_a_title_and_a_next_step(error: BaseException, title: str) -> None:
    message = e.user_message(error)
    assert message.title == title
    assert message.exit_code == (130 if isinstance(error, KeyboardInterrupt) else 1)  # as a shell says Ctrl-C
    assert message.code and message.code.replace("_", "").isalnum() and message.code.islower()  # "interrupted"
    assert message.text.endswith((".", "details."))


def test_long_messages_are_cut_to_one_paragraph() -> None:
    message = e.user_message(RuntimeError("x\n" * 500))
    assert "\n" not in message.text and len(message.text) < 600


def test_errors_subclass_the_builtins_callers_expect() -> None:
    assert issubclass(e.ConfigError, ValueError)
    assert issubclass(e.OutputExistsError, FileExistsError)
    assert issubclass(e.ModelNotFoundError, LookupError)
    assert issubclass(e.DiskSpaceError, OSError)


@pytest.mark.parametrize(
    "error, kind",
    [
        (OSError(28, "No space left on device"), e.DiskFullError),
        (sqlite3.OperationalError("database or disk is full"), e.DiskFullError),
        (RuntimeError("lance error: LanceError(IO): No space left on device (os error 28), writer.rs:191:9"),
         e.DiskFullError),
        (OSError(30, "Read-only file system"), e.ReadOnlyError),
        (sqlite3.OperationalError("attempt to write a readonly database"), e.ReadOnlyError),
        (RuntimeError("LanceError(IO): Read-only file system (os error 30)"), e.ReadOnlyError),
        (PermissionError(13, "Permission denied"), e.FolderPermissionError),
        (sqlite3.OperationalError("disk I/O error"), e.StorageError),
    ],
)
def test_storage_faults_name_the_folder_and_the_next_step(error: BaseException, kind: type) -> None:
    """Probe 4.8 and 4.10: SQLite's and Lance's texts for a full disk or a read-only folder were
    "Unexpected error ... a bug in pgpt"."""
    fault = storage_fault(error, "/home/u/.local/share/pgpt/index", "Writing the document index")
    assert type(fault) is kind
    message = e.user_message(fault)
    assert "/home/u/.local/share/pgpt/index" in message.text and "bug" not in message.text
    assert message.text.startswith("Writing the document index in")
    assert any(word in message.text for word in ("df -h", "chmod", "ls -l", "PGPT_HOME"))


@pytest.mark.parametrize("error", [OSError(27, "File too large"), RuntimeError(
    "lance error: LanceError(IO): File too large (os error 27), lance-file-13.0.0/src/writer/structural.rs:191:9")])
def test_a_file_size_limit_is_said_as_such_not_as_a_damaged_index(error: BaseException) -> None:
    """`ulimit -f` during an ingest read "Index damaged ... move that folder aside and add your documents
    again", while the index was whole (t66)."""
    message = e.user_message(storage_fault(error, "/srv/pgpt/index", "Writing the document index"))
    assert message.title == "Cannot use the data folder" and "largest size allowed here" in message.text
    assert "ulimit -f unlimited" in message.text and "damaged" not in message.text


def test_other_errors_are_not_storage_faults() -> None:
    assert storage_fault(RuntimeError("boom"), "/x") is None
    assert storage_fault(sqlite3.DatabaseError("file is not a database"), "/x") is None


def test_messages_never_carry_terminal_controls() -> None:
    """A file name in an error reaches stderr: probe 3.8's escape name is cleaned there too."""
    message = e.user_message(PermissionError(13, "Permission denied", "/d/m_esc\x1b[2J\x1b]52;c;cHduZWQ=\x07.txt"))
    assert "\x1b" not in message.text and "\x07" not in message.text and "cHduZWQ" not in message.text
    assert e.user_message(e.UsageError("empty")).exit_code == 2


@pytest.mark.parametrize("server_message, title, text, code", [
    ("Usage error: Nothing is indexed yet on this server.", "Usage error", "answered 400: Nothing is indexed yet", 2),
    ("Model not found: no model named 'x'.", "Model not found", "answered 400: no model named 'x'.", 2),
    ("Bad thing: the request had no body", "Server error", "answered 400: Bad thing: the request had no body", 1),
])
def test_a_servers_error_keeps_its_own_title_once(server_message: str, title: str, text: str, code: int) -> None:
    """pgpt-serve's messages start with the error table's title; the client shows that title once
    ("Usage error", not "Server error: ... Usage error: ..."), and another server's text whole; the
    client's own mistakes exit 2, as without a server."""
    import json

    from pgpt.runtime.remote.faults import refused

    body = json.dumps({"error": {"message": server_message}})
    message = e.user_message(refused("http://127.0.0.1:8642", 400, body, None))
    assert (message.title, message.exit_code) == (title, code)
    assert message.text.startswith("The server at http://127.0.0.1:8642 ") and text in message.text
    assert title not in message.text  # the title once, in its place


def test_a_missing_key_file_gets_the_advice_that_fits_who_reads_it(tmp_path: Path) -> None:
    """A client was told to make a random key up: it needs its server's, from the operator."""
    from pgpt.runtime.errors import ConfigError
    from pgpt.runtime.settings import read_key_file

    missing = tmp_path / "server.key"
    with pytest.raises(ConfigError) as client:
        read_key_file(missing, client=True)
    with pytest.raises(ConfigError) as server:
        read_key_file(missing)
    client_text, server_text = e.user_message(client.value).text, e.user_message(server.value).text
    assert "Put the server's key in it (its operator has it)" in client_text and "openssl" not in client_text
    assert f"(umask 077; openssl rand -hex 32 > {missing})" in server_text and "((" not in server_text


@pytest.mark.parametrize(("value", "words"), [("100000", "too large: the highest allowed value is 256"),
                                              ("-2", "too small: the lowest allowed value is 0")])
def test_a_thread_count_no_cpu_has_is_refused(value: str, words: str) -> None:
    """PGPT_THREADS=100000 hung every command without a word; -2 was taken."""
    from pgpt.runtime.settings import Settings

    with pytest.raises(e.ConfigError, match=words):
        Settings.from_env({"PGPT_THREADS": value})


@pytest.mark.parametrize(("name", "value"), [("PGPT_CACHE_SIZE_MB", "-5"), ("PGPT_CACHE_SIZE_MB", "0"),
                                             ("PGPT_KEEP_VERSIONS", "0")])
def test_a_cache_size_or_a_version_count_below_one_is_refused(name: str, value: str) -> None:
    """A negative answer cache size was taken without a word, and 0 versions to keep became 1."""
    from pgpt.runtime.settings import Settings

    with pytest.raises(e.ConfigError, match=f"{name}='{value}' is too small: the lowest allowed value is 1"):
        Settings.from_env({name: value})


def test_a_damaged_version_is_named_as_the_command_that_deletes_it(tmp_path: Path) -> None:
    """A damaged active version was told to run `models --delete NAME@VERSION`, which refuses the
    active version (t63): it gets `--delete NAME` (every version) or `--rollback NAME`."""
    versions = tmp_path / ".versions" / "m"
    for version in ("abc123", "def456"):
        (versions / version).mkdir(parents=True)
    (tmp_path / "m").symlink_to(versions / "abc123")
    active = e.ModelIntegrityError("x", folder=versions / "abc123").hint
    assert "`pgpt-tui models --delete m` deletes every version of m" in active and "--rollback m" in active
    assert "`pgpt-tui models --delete m@def456`" in e.ModelIntegrityError("x", folder=versions / "def456").hint
    assert "`pgpt-tui models --delete plain`" in e.ModelIntegrityError("x", folder=tmp_path / "plain").hint


def test_a_damaged_index_is_said_without_the_rust_source_line_lance_appends() -> None:
    """"Index damaged ... (lance error: ..., /root/.cargo/registry/src/.../reader.rs:12:3.)" named a file of
    the machine that built Lance, not the damaged one (t66)."""
    message = e.user_message(RuntimeError("lance error: Corrupt file /srv/pgpt/index/chunks.lance/data/a.lance: bad "
                                          "footer, /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/"
                                          "lance-file-13.0.0/src/reader.rs:12:3"))
    assert message.title == "Index damaged" and ".rs:" not in message.text and ".cargo" not in message.text
    assert "/srv/pgpt/index/chunks.lance/data/a.lance: bad footer." in message.text
