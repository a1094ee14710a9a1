"""The CLI as a client of a real pgpt-serve (PGPT_SERVER / --server), with an empty local model
cache: nothing is loaded here. Errors: a server that is down, refuses the key, or is busy."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from remote_support import KEY, client_cli, client_settings, occupied, served  # noqa: F401 (a fixture)

from serve_support import RunningServer, free_port, start_server
from support import cli_env

pytestmark = pytest.mark.slow  # a server subprocess, and the CLI in subprocesses


def test_chat_ask_and_search_on_the_command_line(served: RunningServer, tmp_path: Path) -> None:
    settings = client_settings(served, tmp_path)
    chat = client_cli(settings, "chat", "Name a river.", "--json", "--max-tokens", "8")
    assert chat.returncode == 0, chat.stderr
    data = json.loads(chat.stdout)
    # the same JSON as in-process: the name, and the version that answered beside it
    assert data["answer"] and data["model"] == "smollm2-135m-instruct-int8" and len(data["version"]) == 12, data
    assert data["provider"] == f"server 127.0.0.1:{served.port}" and data["timings"]["new_tokens"] >= 1
    asked = client_cli(settings, "--server", served.url, "ask", "When does the ferry to Tresco leave?",
                       "--max-tokens", "16")
    assert asked.returncode == 0, asked.stderr
    assert "ferry.txt" in asked.stdout
    found = client_cli(settings, "search", "ferry Tresco", "--json")
    assert json.loads(found.stdout)["results"][0]["source"].endswith("ferry.txt")
    # --server after the command (it was taken for the question) wins over PGPT_SERVER, and OpenAI's
    # base URL (".../v1"), as users of its clients type it, names the same server
    down = dataclasses.replace(settings, server=f"http://127.0.0.1:{free_port()}")
    again = client_cli(down, "search", "--server", served.url + "/v1/", "ferry Tresco", "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == json.loads(found.stdout), again.stderr


def test_collection_and_reading_options_reach_the_server(served: RunningServer, tmp_path: Path) -> None:
    """--collection, -k and --sentences were dropped on the way to a server: a typo searched every
    collection and said nothing; --no-cache, which a server cannot honour for one client, is refused."""
    settings = client_settings(served, tmp_path)
    typo = client_cli(settings, "search", "ferry Tresco", "--collection", "defualt")
    assert typo.returncode == 2 and "No documents are indexed in the collection 'defualt'" in typo.stderr
    assert "Collections here: default" in typo.stderr and "Traceback" not in typo.stderr
    right = client_cli(settings, "search", "ferry Tresco", "--collection", "default", "--json")
    assert right.returncode == 0 and json.loads(right.stdout)["results"][0]["source"].endswith("ferry.txt")
    asked = client_cli(settings, "ask", "When does the ferry to Tresco leave?", "--collection", "defualt", "-k", "1",
                       "--sentences", "0")
    assert asked.returncode == 2 and "'defualt'" in asked.stderr, asked.stderr  # a usage error, as without a server
    listed = client_cli(settings, "docs", "--collection", "defualt")  # it said "no documents ... yet", exit 0
    assert listed.returncode == 2 and "Collections there: default" in listed.stderr, listed.stderr
    assert f"pgpt-tui --server {settings.server} ingest PATH --collection defualt" in listed.stderr
    for command in ("ask", "chat"):  # chat took the server's cached answer without a word
        uncached = client_cli(settings, command, "When does the ferry to Tresco leave?", "--no-cache")
        assert uncached.returncode == 2 and "--no-cache" in uncached.stderr and "server" in uncached.stderr
    chosen = client_cli(settings, "search", "ferry", "--embedder", "all-minilm-l6-v2-int8")  # it was ignored
    assert chosen.returncode == 2 and "searches its own index with its own" in chosen.stderr, chosen.stderr
    unknown = client_cli(settings, "chat", "Hi", "--model", "no-such-model")
    assert unknown.returncode == 2 and "error: Model not found: The server at" in unknown.stderr, unknown.stderr
    body = {"messages": [{"role": "user", "content": "When does the ferry leave?"}], "use_context": True,
            "passages": 0}
    with served.http() as client:
        assert client.post("/v1/chat/completions", json=body).status_code == 400  # at least one passage


def test_ingest_docs_and_forget_work_on_the_servers_index(served: RunningServer, tmp_path: Path) -> None:
    """With --server they indexed into a local index nobody asks and said nothing of the server."""
    settings = client_settings(served, tmp_path)
    folder = tmp_path / "to-send"
    folder.mkdir()
    (folder / "canteen.md").write_text("# Canteen\n\nThe canteen on deck two opens at 11:40 on weekdays.\n")
    (folder / "empty.txt").write_text("")  # skipped here, as a local ingest skips it
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")  # sent, and refused by the server (415)
    (tmp_path / "secret.txt").write_text("outside the folder")
    (folder / "link.txt").symlink_to(tmp_path / "secret.txt")
    for team in ("ops", "dev"):  # one name in two folders, as every tree has README files
        (folder / team).mkdir()
        (folder / team / "README.md").write_text(f"# {team}\n\nThe {team} team meets on Thursdays in room {len(team)}.\n")
    sent = client_cli(settings, "ingest", str(folder), "--collection", "sent", "--json", cwd=tmp_path)
    report = json.loads(sent.stdout)
    # the files of each status, by their local paths, as a local ingest's --json lists them (it gave counts, t50)
    assert sorted(report["added"]) == sorted(str(folder / n) for n in ("canteen.md", "ops/README.md", "dev/README.md"))
    assert report["updated"] == [] and report["server"] == served.url, sent.stderr
    # a local ingest's keys, so a script that reads "chunks" works with PGPT_SERVER set (t63), and the server's own
    assert set(report) == {"added", "updated", "renamed", "unchanged", "removed", "gone", "rechunked", "skipped",
                           "failed", "renamed_documents", "chunks", "embedded", "seconds", "chunks_per_s",
                           "server", "removed_documents", "not_compared"}
    assert report["chunks"] == 3 and report["chunks_per_s"] > 0 and report["rechunked"] == []
    assert {Path(s["path"]).name for s in report["skipped"]} == {"link.txt", "empty.txt"}
    assert [Path(f["path"]).name for f in report["failed"]] == ["broken.pdf"] and sent.returncode == 1
    # the progress gives an ETA once some bytes were sent (it read "ETA ?" on every line)
    # the bar's ETA field ("?" in the first 2 s: a run of 4 small files ends before it has one)
    assert re.search(r"\d/4 files sent ETA +(?:\d+s|\?)", sent.stderr), sent.stderr
    assert "4/4 files sent" in sent.stderr.splitlines()[-1], sent.stderr  # a refused file ends it too (t71)
    assert not (settings.home / "index").exists()  # nothing local
    try:
        listed = client_cli(settings, "docs", "--collection", "sent")
        assert listed.returncode == 0 and "[sent] to-send/canteen.md" in listed.stdout, listed.stdout
        assert "to-send/ops/README.md" in listed.stdout and "to-send/dev/README.md" in listed.stdout
        assert f"3 documents, 3 chunks, on the server at {served.url}" in listed.stdout  # a local docs' totals (t71)
        as_json = json.loads(client_cli(settings, "docs", "--collection", "sent", "--json").stdout)
        assert as_json["left_out"] == [] and all(d["gone"] is False for d in as_json["documents"]), as_json
        narrowed = client_cli(settings, "docs", "to-send/ops", "--collection", "sent").stdout  # names that start so
        assert "to-send/ops/README.md" in narrowed and "canteen" not in narrowed and "dev/" not in narrowed
        # the file by itself, from the same folder, is the same document (its name is its path from here)
        again = client_cli(settings, "ingest", "to-send/canteen.md", "--collection", "sent", cwd=tmp_path)
        assert again.returncode == 0 and "1 unchanged" in again.stdout and served.url in again.stdout
        client_cli(settings, "ingest", str(folder / "ops"), "--collection", "other", cwd=tmp_path)
        only = client_cli(settings, "forget", "--collection", "other", str(folder / "ops"))
        assert only.returncode == 0 and "(1 document, " in only.stdout, only.stdout + only.stderr
        assert "to-send/ops/README.md" in client_cli(settings, "docs", "--collection", "sent").stdout
        assert "[other]" not in client_cli(settings, "docs").stdout  # the other collection's copy only
        team = client_cli(settings, "forget", str(folder / "dev"))  # a local folder: what was sent from it
        assert team.returncode == 0 and "(1 document, " in team.stdout, team.stdout + team.stderr
        found = client_cli(settings, "search", "canteen deck two", "--collection", "sent", "--json")
        assert json.loads(found.stdout)["results"][0]["text"].startswith("# Canteen") or "canteen" in found.stdout
        refused = client_cli(settings, "ingest", str(folder), "--reindex")
        assert refused.returncode == 2 and "--reindex works on a local index" in refused.stderr
    finally:
        forgot = client_cli(settings, "forget", "canteen.md")
        client_cli(settings, "forget", str(folder))  # the rest sent from it: the server is shared by the tests
    assert forgot.returncode == 0 and "forgot canteen.md on the server" in forgot.stdout, forgot.stderr
    assert "canteen.md" not in client_cli(settings, "docs").stdout
    missing = client_cli(settings, "forget", "canteen.md")
    assert missing.returncode == 2 and "has no document 'canteen.md'" in missing.stderr


def test_a_renamed_or_deleted_file_is_named_and_pruned_on_the_server(served: RunningServer,
                                                                      tmp_path: Path) -> None:
    """Through a server a renamed file was "1 added" and its old copy kept answering, with the old
    text after an edit; nothing said so, and --prune was refused. Now as a local ingest: renamed,
    gone (named), and removed with --prune, never a document from outside the folders sent."""
    settings = client_settings(served, tmp_path)
    docs, old = tmp_path / "docs3", tmp_path / "docs3-old"  # docs3-old: a name that starts like docs3
    for folder in (docs, old):
        folder.mkdir()
        (folder / "museum.txt").write_text("The Velmora Maritime Museum opened in 1998. Its director is Marta "
                                           f"Quenneville. ({folder.name})\n")
    (docs / "hours.txt").write_text("The museum opens at 10:00 and closes at 17:00, every day but Monday.\n")

    def ingest(*args: str) -> subprocess.CompletedProcess[str]:
        return client_cli(settings, "ingest", *args, cwd=tmp_path)

    try:
        assert ingest("docs3", "docs3-old").returncode == 0 and ingest("docs3", "--collection", "side").returncode == 0
        (old / "museum.txt").unlink()  # gone here, but sent from another folder: never touched below
        (docs / "museum.txt").rename(docs / "maritime-museum.txt")
        renamed = ingest("docs3")
        assert renamed.returncode == 0 and "renamed: docs3/museum.txt -> docs3/maritime-museum.txt" in renamed.stdout
        assert "0 added, 0 updated, 1 renamed, 1 unchanged, 0 removed; 0 skipped" in renamed.stdout, renamed.stdout
        assert "gone" not in renamed.stdout  # docs3-old/museum.txt is gone, but was sent from another folder
        assert "docs3/museum.txt" not in client_cli(settings, "docs", "--collection", "default").stdout
        quiet = ingest("docs3")  # nothing gone: nothing more than the summary
        assert quiet.stdout.splitlines() == [line for line in quiet.stdout.splitlines() if "2 unchanged" in line]
        (docs / "maritime-museum.txt").rename(docs / "museum-2.txt")  # renamed and edited: a new document
        (docs / "museum-2.txt").write_text("The Velmora Maritime Museum's director is Bertil Saxenholm.\n")
        report = json.loads(ingest("docs3", "--json").stdout)
        assert report["added"] == [str(docs / "museum-2.txt")] and report["gone"] == ["docs3/maritime-museum.txt"], report
        gone = ingest("docs3")
        assert "gone: docs3/maritime-museum.txt: no such file here; the server still answers from it" in gone.stdout
        assert gone.stdout.rstrip().endswith("; 1 indexed file under these paths is gone but still answers "
                                             "(--prune forgets it)"), gone.stdout
        pruned = ingest("docs3", "--prune")
        assert pruned.returncode == 0 and "removed: docs3/maritime-museum.txt (" in pruned.stdout, pruned.stdout
        assert "1 removed;" in pruned.stdout and "gone" not in pruned.stdout
        listed = client_cli(settings, "docs").stdout
        assert "] docs3/maritime-museum.txt " not in listed and "[default] docs3-old/museum.txt " in listed
        assert "[side] docs3/museum.txt " in listed  # another collection's copy stays
        asked = client_cli(settings, "ask", "Who is the director of the Velmora Maritime Museum?", "--json")
        assert json.loads(asked.stdout)["left_out"] == []  # a local ask's keys, through a server too (t71)
        sources = {source["source"] for source in json.loads(asked.stdout)["sources"]}
        assert "docs3/museum-2.txt" in sources and "docs3/maritime-museum.txt" not in sources, asked.stdout
        old.rmdir()
        # a folder missing here keeps its documents, as locally: an unmounted share is no purge (t71)
        vanished = ingest("docs3-old", "--prune")
        assert vanished.returncode == 1 and "removed:" not in vanished.stdout, vanished.stdout + vanished.stderr
        assert "NOT pruned: " in vanished.stdout and "docs3-old is empty or missing, so its 1 indexed" in vanished.stdout
        here = client_cli(settings, "ingest", ".", "--prune", "--collection", "dot", cwd=docs)  # bare names
        assert "not compared: .: its files have no folder in their names on the server" in here.stdout, here.stdout
    finally:
        for name in ("docs3", "docs3-old", "hours.txt", "museum-2.txt"):
            client_cli(settings, "forget", name, cwd=tmp_path)


def test_forget_a_file_name_in_several_folders_is_refused(served: RunningServer, tmp_path: Path) -> None:
    """`forget LICENSE` forgot lic/projA/LICENSE and lic/projB/LICENSE, and said only "2 documents"."""
    settings = client_settings(served, tmp_path)
    for project in ("projA", "projB", "projC"):
        (tmp_path / "lic" / project).mkdir(parents=True)
        (tmp_path / "lic" / project / "LICENSE").write_text(f"The {project} licence: use it as you like.\n")
    assert client_cli(settings, "ingest", "lic", cwd=tmp_path).returncode == 0
    try:
        both = client_cli(settings, "forget", "LICENSE")  # not from lic/projX: no local file of that name
        assert both.returncode == 2 and "lic/projA/LICENSE, lic/projB/LICENSE, lic/projC/LICENSE" in both.stderr
        assert "Nothing was forgotten" in both.stderr and "Give the folder" in both.stderr, both.stderr
        assert "lic/projB/LICENSE" in client_cli(settings, "docs").stdout
        one = client_cli(settings, "forget", "lic/projA/LICENSE")  # the name it was sent under
        assert one.returncode == 0 and "(1 document, " in one.stdout, one.stdout + one.stderr
        assert "] lic/projA/LICENSE  (" in one.stdout and "projB" not in one.stdout
        folder = client_cli(settings, "forget", "lic/projB")  # a folder of those names: what is under it
        assert folder.returncode == 0 and "] lic/projB/LICENSE  (" in folder.stdout and "projC" not in folder.stdout
        left = client_cli(settings, "forget", "LICENSE")  # one left of that file name: no doubt which
        assert left.returncode == 0 and "] lic/projC/LICENSE  (" in left.stdout, left.stdout + left.stderr
    finally:
        client_cli(settings, "forget", "lic", cwd=tmp_path)


def test_ctrl_c_while_sending_says_what_the_server_has(served: RunningServer, tmp_path: Path) -> None:
    """It said "nothing was left half-written (a download keeps its partial file ...)", while the
    server went on indexing what it had received."""
    import signal

    settings = client_settings(served, tmp_path)
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(300):
        (folder / f"note-{n:03}.txt").write_text(f"Note {n}: the boat number {n} leaves at {n % 24}:00.\n")
    env = {**cli_env(settings), "PGPT_SERVER": settings.server, "PGPT_API_KEY": KEY}
    # Ctrl-C as in a terminal: a job started in the background (CI) inherits SIGINT ignored
    sending = subprocess.Popen([sys.executable, "-m", "pgpt.tui.cli.main", "ingest", str(folder)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not any(d["doc_metadata"]["file_name"].startswith("note-") for d in served.documents()):
            assert time.monotonic() < deadline and sending.poll() is None, "nothing arrived at the server"
            time.sleep(0.1)
        sending.send_signal(signal.SIGINT)
        _, err = sending.communicate(timeout=60)
        assert sending.returncode == 130, err
        assert "files were indexed on the server; it may still index the one it was receiving" in err
        assert "docs` lists what it has" in err and "download" not in err and "Traceback" not in err
    finally:
        sending.kill()
        client_cli(settings, "forget", str(folder))


def test_a_key_in_the_server_address_is_refused_and_never_shown(served: RunningServer, tmp_path: Path) -> None:
    """It was printed in "Nothing answers at http://user:KEY@..." and logged."""
    settings = client_settings(served, tmp_path)
    secret = "sekret-key-123456"
    url = served.url.replace("http://", f"http://user:{secret}@")
    result = client_cli(settings, "--server", url, "search", "ferry")
    assert result.returncode == 2 and "Invalid setting" in result.stderr and "PGPT_API_KEY_FILE" in result.stderr
    assert secret not in result.stderr + result.stdout and f"http://127.0.0.1:{served.port}" in result.stderr
    logs = settings.home / "logs"
    assert not logs.exists() or all(secret not in p.read_text() for p in logs.iterdir())


def test_a_key_that_is_not_one_line_is_refused_and_never_shown(served: RunningServer, tmp_path: Path) -> None:
    """A key file with a comment line above the key: the HTTP library refused the header, and its
    message, whole key included, was printed as "Nothing answers at ..." (by doctor too, t60)."""
    settings = client_settings(served, tmp_path)
    key_file = tmp_path / "api-key"
    key_file.write_text(f"# my pgpt key\n{KEY}\n")
    key_file.chmod(0o600)
    base = {**cli_env(settings), "PGPT_SERVER": settings.server}
    for extra, args in [({"PGPT_API_KEY_FILE": str(key_file)}, ["docs"]),
                        ({"PGPT_API_KEY_FILE": str(key_file)}, ["doctor", "--offline", "--json"]),
                        ({"PGPT_API_KEY": f"abc\n{KEY}"}, ["search", "ferry"])]:
        result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                                env={**base, **extra}, timeout=600)
        shown = result.stdout + result.stderr
        assert result.returncode == 2 and "is not one line of printable ASCII" in shown, (args, shown)
        assert KEY not in shown and "Traceback" not in shown and "Nothing answers" not in shown


def test_an_http_error_that_quotes_the_key_header_is_shown_without_it() -> None:
    """Whatever else lets a header through to the HTTP library, its quoted header is not printed."""
    from pgpt.runtime.remote.faults import unreachable

    error = httpx.LocalProtocolError("Illegal header value b'Bearer # comment\\nsekret-0123456789'")
    shown = str(unreachable("http://127.0.0.1:8642", error))
    assert "sekret" not in shown and "comment" not in shown and "Bearer ***" in shown


def test_doctor_of_a_client_checks_its_server(served: RunningServer, tmp_path: Path) -> None:
    """As a client, chat, ask and the app run on the server: doctor spoke only of local folders."""
    settings = client_settings(served, tmp_path)
    report = json.loads(client_cli(settings, "doctor", "--offline", "--json").stdout)
    server = report["server"]
    assert server["url (--server, PGPT_SERVER)"] == served.url and server["api key"] == "from PGPT_API_KEY (never shown)"
    assert server["answers"] == "yes: chat model smollm2-135m-instruct-int8@" + server["answers"].rpartition("@")[2]
    assert server["documents"] >= 1 and not [p for p in report["problems"] if p.startswith("server")]
    refused = client_cli(settings, "doctor", "--offline", key="wrong-key")
    assert refused.returncode == 1 and "server: answers: NO: Server refused the key" in refused.stderr
    assert "wrong-key" not in refused.stdout + refused.stderr and KEY not in refused.stdout + refused.stderr


def test_a_server_that_is_down_refuses_or_is_busy_gives_one_paragraph(served: RunningServer, tmp_path: Path) -> None:
    port = free_port()
    down = dataclasses.replace(client_settings(served, tmp_path), server=f"http://127.0.0.1:{port}")
    result = client_cli(down, "chat", "Hi")
    assert result.returncode == 1 and "error: Server unreachable: Nothing answers at http://127.0.0.1:" in result.stderr
    # the hint names the address's own port, not the default 8642
    assert f"pgpt-serve --port {port}" in result.stderr and f"ssh -L {port}:127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr

    refused = client_cli(client_settings(served, tmp_path), "ask", "Hi", key="wrong-key")
    assert refused.returncode == 1 and "error: Server refused the key" in refused.stderr
    assert "PGPT_API_KEY" in refused.stderr and "wrong-key" not in refused.stderr and KEY not in refused.stderr

    with occupied(served):
        busy = client_cli(client_settings(served, tmp_path), "chat", "Hi", "--max-tokens", "4")
        assert busy.returncode == 75 and "error: Server busy" in busy.stderr and "retry in" in busy.stderr
        # the server's own title and hint are not repeated inside the client's message
        assert busy.stderr.count("Server busy") == 1 and busy.stderr.count("Try again in a moment") == 1, busy.stderr
        assert "ask its operator to raise" in busy.stderr  # a client cannot raise --parallel itself
        assert "It holds 1 request," in busy.stderr  # "1 request(s)"; documents answers say it alike
        # a cron wrapper retries on the code and waits as the server asks, no English matched (t71)
        as_json = client_cli(client_settings(served, tmp_path), "chat", "Hi", "--max-tokens", "4", "--json")
        error = json.loads(as_json.stdout)["error"]
        assert as_json.returncode == 75 and error["code"] == "server_busy" and error["retry_after_s"] >= 1, error
    assert httpx.get(served.url + "/health", timeout=10).status_code == 200


def test_a_server_told_to_stop_mid_answer_ends_the_cli_answer_saying_so(served: RunningServer, tmp_path: Path) -> None:
    """The stop's error inside the stream read "The server ... answered 500: ..."; now the
    server's own title and words, after the part of the answer that came."""
    own = start_server(dataclasses.replace(served.settings, home=tmp_path / "stopping"))
    settings = dataclasses.replace(client_settings(served, tmp_path), server=own.url)
    env = {**cli_env(settings), "PGPT_SERVER": own.url}
    question = "Count from 1 to 1000, one per line."
    process = subprocess.Popen([sys.executable, "-m", "pgpt.tui.cli.main", "chat", question,
                                "--max-tokens", "2000", "--temperature", "0.8", "--seed", "3"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None and process.stdout.read(8)  # the answer is under way
        own.process.terminate()
        out, err = process.communicate(timeout=120)
    finally:
        own.stop()
    assert process.returncode == 1 and out.endswith("\n"), (out[-200:], err)
    assert err.startswith("error: Server stopping: The server at ") and "ended the answer" in err, err
    assert "answered 500" not in err and "Traceback" not in err


def test_a_hung_server_a_web_page_and_https_each_get_their_own_paragraph(served: RunningServer,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts and never answers kept `chat` silent for 10 minutes; another web server's
    404 page was printed whole, and https:// to pgpt-serve's plain HTTP said "start pgpt-serve"."""
    import http.server
    import socket
    import threading

    from pgpt.runtime.remote import client as remote
    from pgpt.runtime.errors import ServerError, ServerUnreachableError

    monkeypatch.setattr(remote, "READ_TIMEOUT_S", 1.0)
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen()
        started = time.perf_counter()
        with pytest.raises(ServerUnreachableError, match="accepted the connection but sent nothing for 1 s"):
            remote.RemoteEngine(f"http://127.0.0.1:{hung.getsockname()[1]}")
        assert time.perf_counter() - started < 10
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ServerError, match="answered 404 with an HTML page: it is not pgpt-serve") as caught:
            remote.RemoteEngine(f"http://127.0.0.1:{web.server_address[1]}")
        assert "<html" not in str(caught.value).lower() and "port" in caught.value.hint
    finally:
        web.shutdown()
    with pytest.raises(ServerUnreachableError, match="does not speak HTTPS") as caught:
        remote.RemoteEngine(served.url.replace("http:", "https:"), api_key=KEY)
    assert "use http://" in caught.value.hint


def test_docs_shows_a_servers_document_id_without_its_escapes(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Every other string a server sends was cleaned before it was printed, but not the id: a hostile
    server (or anyone on the plain-HTTP path) could set the title, clear the screen or write the
    clipboard (OSC 52) through `pgpt-tui docs` (t52)."""
    import argparse

    from pgpt.runtime.remote import client as remote
    from pgpt.runtime.settings import Settings
    from pgpt.tui.cli.remote_documents import docs_on_server

    hostile = "id\x1b]0;OWNED\x07\x1b[2J\x1b[31mEVIL\x1b[0m\x1b]52;c;ZWNobyBwd25lZA==\x07"

    class Server:
        def documents(self) -> list[dict]:
            return [{"doc_id": hostile, "doc_metadata": {"path": "p\x1b[31mEVIL", "collection": "default",
                                                         "chunks": 1, "ingested_at": 0}}]

        def close(self) -> None:
            pass

    monkeypatch.setattr(remote, "connect", lambda settings: Server())
    settings = Settings(home=Path("/nonexistent"), model_cache=Path("/nonexistent"), server="http://127.0.0.1:9")
    assert docs_on_server(settings, argparse.Namespace(collection=None, json=False)) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "\x07" not in shown and "(idEVIL)" in shown, repr(shown)
