"""What a script or a cron job relies on (t71): errors that say where pgpt looked, listings that need no
model, a closed standard output named, a version to record, and JSON on stdout whatever went wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pgpt.runtime.settings import Settings
from support import tui_cli


def cron(home: Path, fake_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``pgpt-tui ARGS`` as cron runs it: a bare environment with PGPT_HOME only (PGPT_MODEL_CACHE forgotten)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(fake_home), "PGPT_HOME": str(home),
           "HF_HUB_OFFLINE": "1"}
    env.update({name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ})  # a checkout run so
    result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                            env=env, stdin=subprocess.DEVNULL, timeout=600)
    assert "Traceback" not in result.stderr
    return result


def test_a_cron_job_without_the_model_cache_is_told_where_pgpt_looked_and_docs_still_lists(
        settings: Settings, tmp_path: Path) -> None:
    """t71: "not exported ... run `pgpt-export --default`" named no folder: following it exported the
    models a second time into root's ~/.cache; `docs`, a listing, refused to run at all."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ups.txt").write_text("The UPS in the server room holds for 41 minutes.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    fake_home = tmp_path / "cron-home"
    fake_home.mkdir()
    listed = cron(settings.home, fake_home, "docs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [d["path"] for d in json.loads(listed.stdout)["documents"]] == [str(docs / "ups.txt")]
    for args in (("search", "UPS"), ("chat", "hi", "--max-tokens", "2")):
        refused = cron(settings.home, fake_home, *args)
        shown = " ".join(refused.stderr.split())
        assert refused.returncode == 2, shown
        assert f"{fake_home}/.cache/pgpt/models (the default folder: PGPT_MODEL_CACHE is not set)" in shown, shown
        assert "set PGPT_MODEL_CACHE to it" in shown, shown


def test_a_closed_standard_output_is_refused_before_any_work(settings: Settings, tmp_path: Path) -> None:
    """t71: `search ... >&-` (a daemon wrapper, `exec >&-`) exited 0 with its output dropped, no word."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The ferry leaves at noon.\n")
    command = " ".join([sys.executable, "-m", "pgpt.tui.cli.main", "ingest", str(docs)])
    done = subprocess.run(["bash", "-c", f"{command} >&-"], capture_output=True, text=True,
                          env={**os.environ, "PGPT_HOME": str(settings.home),
                               "PGPT_MODEL_CACHE": str(settings.model_cache)}, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "standard output is closed (>&-), so what `pgpt-tui ingest` prints would be lost; nothing was done" in \
        " ".join(done.stderr.split())
    assert not (settings.home / "index").exists()  # nothing was done


def test_version_of_each_program() -> None:
    """t71: no `--version`: a CI job or a bug report could not record which pgpt ran."""
    from importlib import metadata

    for module, name in (("pgpt.tui.cli.main", "pgpt-tui"), ("pgpt.serve.cli", "pgpt-serve"),
                         ("pgpt.export.cli", "pgpt-export")):
        done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith(f"{name} {metadata.version('pgpt-terminal')}"), done


def test_arguments_the_parser_refuses_give_the_json_error_too(settings: Settings) -> None:
    """t71: `search wifi -k 0 --json` (and a missing argument, an unknown option) printed nothing on
    stdout: a wrapper's json.loads(stdout) raised."""
    for args, words in ((("search", "wifi", "-k", "0", "--json"), "a search gives 1 to 100 results"),
                        (("ask", "--json"), "the following arguments are required: question"),
                        (("search", "wifi", "--bogus", "--json"), "does not take --bogus")):
        done = tui_cli(settings, *args)
        assert done.returncode == 2 and words in done.stderr, done.stderr
        error = json.loads(done.stdout)["error"]
        assert error["title"] == "Usage error" and error["exit_code"] == 2 and words in error["message"], error
    plain = tui_cli(settings, "search", "wifi", "-k", "0")
    assert plain.returncode == 2 and plain.stdout == ""


def test_an_ingest_through_a_server_stopped_gives_a_local_stops_json_keys(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """t71: `timeout 10 pgpt-tui --server URL ingest DIR --json` printed only the paragraph's error, without
    the `stopped`, `files_done` and `files_total` keys a local stop gives (`ingest --json` has one shape).
    The server is a stand-in here whose third upload is cut by Ctrl-C; the CLI's code is the real one."""
    import argparse

    import pytest

    from pgpt.runtime.documents.ingest import stopped
    from pgpt.runtime.errors import Cancelled
    from pgpt.runtime.remote import client
    from pgpt.tui.cli.remote_documents import ingest_on_server

    class Server:
        sent = 0

        def upload(self, path: Path, collection: str, name: str = "", on_progress=None) -> dict:  # type: ignore[no-untyped-def]
            Server.sent += 1
            if Server.sent == 3:
                raise KeyboardInterrupt
            return {"doc_metadata": {"status": "added", "chunks": 1, "content_hash": str(Server.sent)}}

        def documents(self) -> list:
            return []

        def close(self) -> None:
            pass

    monkeypatch.setattr(client, "connect", lambda settings: Server())
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(5):
        (docs / f"note{n}.txt").write_text(f"Note {n} says the ferry leaves at {n} o'clock.\n")
    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "models", server="http://127.0.0.1:9")
    args = argparse.Namespace(paths=[docs], collection="default", prune=False, reindex=False, json=True)
    with pytest.raises(Cancelled) as caught:
        ingest_on_server(settings, args)
    details = caught.value.details
    assert details.keys() == stopped(2, 5, False).details.keys(), details
    assert (details["stopped"], details["files_done"], details["files_total"]) == (True, 2, 5), details


def test_forget_in_json_and_a_second_forget_with_missing_ok(settings: Settings, tmp_path: Path) -> None:
    """t71: `forget` had no --json, and a clean-up script's second `forget X` (or one after --prune) failed,
    exit 2, unless it matched the English message."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The ferry leaves at noon.\n")
    (docs / "b.txt").write_text("The bakery opens at seven.\n")
    assert tui_cli(settings, "ingest", str(docs)).returncode == 0
    forgot = tui_cli(settings, "forget", str(docs), "--json")
    assert forgot.returncode == 0, forgot.stderr
    report = json.loads(forgot.stdout)
    assert sorted(d["path"] for d in report["forgotten"]) == [str(docs / "a.txt"), str(docs / "b.txt")], report
    assert report["chunks"] == 2 and {d["collection"] for d in report["forgotten"]} == {"default"}
    again = tui_cli(settings, "forget", str(docs), "--json")
    assert again.returncode == 2 and json.loads(again.stdout)["error"]["code"] == "not_indexed", again.stdout
    quiet = tui_cli(settings, "forget", str(docs), "--json", "--missing-ok")
    assert quiet.returncode == 0 and json.loads(quiet.stdout) == {"forgotten": [], "chunks": 0}
    said = tui_cli(settings, "forget", str(docs), "--missing-ok")
    assert said.returncode == 0 and said.stdout.startswith(f"nothing to forget: {docs} is not in the document index")
