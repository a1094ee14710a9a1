"""One bad file never stops the rest: probe rows 3.2, 3.3, 3.6, 3.8, 3.9 and 3.12, in the core and the CLI.

A folder holds good files and one damaged file of each kind the probe found (malformed-XML
docx, entity bomb, corrupted deflate, lying zip bomb, damaged PDF xref and trailer, a name that
is not UTF-8, a symlink loop): everything good is indexed, each bad file is listed with its
reason, and the run goes on. The reader's time limit, memory limit and crash handling are
exercised with real files and a real child process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hostile_files import C1_NAME, ESCAPE_NAME, GOOD_WORDS, hostile_folder
from pgpt.runtime.documents.ingest import ingest, open_store
from pgpt.runtime.documents.isolation import IsolatedReader
from pgpt.runtime.documents.retrieval import search
from pgpt.runtime.settings import Settings
from support import cli_env

RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def embedder(default_models: Settings):  # type: ignore[no-untyped-def]
    from pgpt.runtime.llm.embeddings import default_embedder

    return default_embedder(default_models)


def _by_name(entries: list[tuple[str, str]]) -> dict[str, str]:
    return {Path(path).name: reason for path, reason in entries}


def test_one_damaged_file_of_each_kind_is_listed_and_the_rest_is_indexed(settings: Settings, embedder,  # type: ignore[no-untyped-def]
                                                                        tmp_path: Path) -> None:
    """Probe 3.2/3.3/3.6/3.9/3.12: each of these stopped the whole ingest ("a bug in pgpt")."""
    reasons = hostile_folder(tmp_path / "mixed")
    report = ingest(settings, [tmp_path / "mixed"], embedder)
    listed = _by_name(report.skipped + report.failed)
    assert set(listed) == set(reasons)
    for name, word in reasons.items():
        assert word in listed[name], (name, listed[name])
    assert not [r for r in listed.values() if "internal error" in r]
    assert sorted(Path(p).name for p in report.added) == ["a_good.txt", "m_good.docx", "m_good.html",
                                                           "m_good.pdf", "z_good.md"]
    store = open_store(settings, embedder)
    for word in GOOD_WORDS:  # the files after the bad ones are in too, and findable
        assert word in search(store, embedder, word, k=1)[0].text
    again = ingest(settings, [tmp_path / "mixed"], embedder)  # a re-run does not stop there either
    assert len(again.unchanged) == 5 and set(_by_name(again.skipped + again.failed)) == set(reasons)


@pytest.mark.slow
def test_the_cli_lists_every_bad_file_and_prints_its_report_in_json(settings: Settings, tmp_path: Path) -> None:
    """Probe 3.2/3.3/3.6/3.9/3.12 in the CLI, plain and --json (which printed nothing then): a report
    with every reason, exit 0 (skipped files are not failures)."""
    reasons = hostile_folder(tmp_path / "mixed")
    plain = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "ingest", str(tmp_path / "mixed")],
                           env=cli_env(settings), capture_output=True, timeout=300)
    assert plain.returncode == 0, plain.stderr
    out = plain.stdout.decode()
    assert "5 added" in out and "9 skipped" in out and "Unexpected error" not in plain.stderr.decode()
    for name in reasons:
        assert any(line.startswith("skipped: ") and name.encode("utf-8", "replace").decode().replace("?", "\ufffd")
                   in line for line in out.splitlines()) or os.fsencode(name) in plain.stdout, name
    reindexed = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "ingest", "--json", "--reindex",
                                str(tmp_path / "mixed")], env=cli_env(settings), capture_output=True, timeout=300)
    assert reindexed.returncode == 0, reindexed.stderr
    data = json.loads(reindexed.stdout)
    assert len(data["added"]) == 5
    # a name's bytes that are not UTF-8 as \\xff in JSON (t71)
    assert {Path(entry["path"]).name: entry["reason"] for entry in data["skipped"]}.keys() == {
        name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for name in reasons}
    assert not RAW.search(reindexed.stdout.decode())


@pytest.mark.slow
def test_names_with_escape_sequences_reach_no_output_raw(settings: Settings, tmp_path: Path) -> None:
    """Probe 3.8: `ingest` printed a name holding ESC[2J and OSC 52 raw (it cleared a tmux screen and
    wrote its clipboard); `--json` printed a C1 CSI raw. Probe 3.7: `search --json` and `ask --json`
    printed raw C1 controls from a document's text."""
    folder = tmp_path / "names"
    folder.mkdir()
    for name in (ESCAPE_NAME, C1_NAME, "m_new\nline.txt"):
        (folder / name).write_text(f"A file called {name} about escapes.")
    (folder / "m_evil.txt").write_text("Body with \x1b]52;c;cHduZWQ=\x07 and \x9b2J inside.")
    env = cli_env(settings)
    outputs = []
    for command in (["ingest", str(folder)], ["ingest", str(folder), "--json", "--reindex"], ["docs", "--json"],
                    ["search", "escapes"], ["search", "escapes", "--json"],
                    ["ask", "What does the body with escapes say?", "--json", "--max-tokens", "8"]):
        done = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *command], env=env, capture_output=True,
                              timeout=300)
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout.decode() + done.stderr.decode())
    for text in outputs:
        assert not RAW.search(text.replace("\n", "").replace("\t", "")), text
        assert "cHduZWQ" not in text.replace("\\u001b]52;c;cHduZWQ=", "")  # JSON keeps it only escaped
    assert "m_escname.txt" in outputs[0] and "4 added" in outputs[0]


def _slow_html(path: Path, megabytes: int) -> None:
    path.write_text("<html><body>" + "<p>slow <b>markup</b> to parse</p>\n" * (megabytes * 30_000) + "</body></html>")


def test_a_reader_over_its_time_limit_fails_that_file_and_the_next_file_is_read(settings: Settings, embedder,  # type: ignore[no-untyped-def]
                                                                                tmp_path: Path) -> None:
    """The per-file time limit: html.parser takes seconds on a big file; with a 1 s limit that file
    is reported as failed, the reader process is replaced, and the files after it are indexed."""
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "a_first.txt").write_text("The first file mentions ALPHAWORD.")
    _slow_html(folder / "m_slow.html", 40)
    (folder / "z_last.txt").write_text("The last file mentions OMEGAWORD.")
    started = time.perf_counter()
    report = ingest(dataclasses.replace(settings, read_timeout_s=1), [folder], embedder)
    assert time.perf_counter() - started < 60
    assert _by_name(report.failed) == {"m_slow.html": "took longer than 1 s to read (the limit; PGPT_READ_TIMEOUT_S)"}
    assert sorted(Path(p).name for p in report.added) == ["a_first.txt", "z_last.txt"]


def test_a_file_over_the_memory_limit_fails_alone(tmp_path: Path) -> None:
    """RLIMIT_AS in the reader process: a file that needs more memory is a MemoryError there, reported
    as failed, and the reader goes on with the next file."""
    import codecs

    big = tmp_path / "big.txt"  # 84 MB of UTF-16: text of 42 M characters, and its copies on the way
    big.write_bytes(codecs.BOM_UTF16_LE + ("caf\xe9 \u4e2d " * 6_000_000).encode("utf-16-le"))
    small = tmp_path / "small.txt"
    small.write_text("still read afterwards")
    with IsolatedReader(timeout_s=120, memory_mb=300) as reader:
        outcome = reader.read(big)
        assert outcome.sections is None and "needs more than 300 MB" in outcome.failed
        assert reader.read(small).sections is not None


def test_a_reader_that_dies_costs_one_file_and_a_cancel_stops_at_once(tmp_path: Path) -> None:
    """A crash of the reader process (here: killed) fails the file it was reading; the next file gets
    a new process. A cancel during a slow file stops the reader without waiting for the limit."""
    from pgpt.runtime.errors import Cancelled

    _slow_html(tmp_path / "slow.html", 40)
    (tmp_path / "ok.txt").write_text("fine")
    with IsolatedReader(timeout_s=60, memory_mb=4096) as reader:
        assert reader.read(tmp_path / "ok.txt").sections is not None
        child = reader._child
        assert child is not None
        threading.Timer(0.5, os.kill, (child.pid, signal.SIGKILL)).start()
        assert reader.read(tmp_path / "slow.html").failed == "the reader crashed on it (signal 9)"
        assert reader.read(tmp_path / "ok.txt").sections is not None and reader.started == 2
        cancel = threading.Event()
        threading.Timer(0.5, cancel.set).start()
        started = time.perf_counter()
        with pytest.raises(Cancelled):
            reader.read(tmp_path / "slow.html", cancel)
        assert time.perf_counter() - started < 5


def test_a_bug_in_pgpts_reader_code_is_an_internal_error_not_a_damaged_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """An exception that starts in pgpt's own code (here: the HTML reader's callback calls a pgpt
    function wrongly) is not blamed on the file: the reader process answers "error" with the
    traceback, which the ingest logs and reports as "internal error: TYPE"."""
    from pgpt.runtime.documents import html_reader, isolation, readers

    def broken_callback(self, data: str) -> None:  # type: ignore[no-untyped-def]
        readers.decode_text(None)  # type: ignore[arg-type]

    monkeypatch.setattr(html_reader._HtmlText, "handle_data", broken_callback)
    page = tmp_path / "page.html"
    page.write_text("<p>text</p>")
    answer = isolation.read_one(page, 4096)  # what the reader process runs for each file
    assert answer["status"] == "error" and answer["type"] == "AttributeError"
    assert "decode_text" in answer["traceback"]
    outcome = isolation._outcome(json.loads(json.dumps(answer)), page)
    assert outcome.failed == "internal error: AttributeError"
    assert "decode_text" in caplog.text  # the traceback went to the log
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF")
    assert isolation.read_one(damaged, 4096)["status"] == "skipped"  # pypdf's own failure: the file's
