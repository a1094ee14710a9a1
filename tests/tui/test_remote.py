"""The app and the CLI as clients of a real pgpt-serve (PGPT_SERVER / --server), with an empty
local model cache: nothing is loaded here. Errors: a server that is down, refuses the key, or is busy."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_app import SIZE, ask, status, turns, wait_until
from textual.widgets import DataTable, Input, Static

from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.settings import Settings
from pgpt.tui.chat.app import ChatApp
from serve_support import RunningServer, free_port, start_server
from support import cli_env

pytestmark = pytest.mark.slow  # a server subprocess, and the CLI in subprocesses
KEY = "remote-test-key-5551234"
FERRY = "Ferry timetable. The ferry to Tresco leaves the quay at 9:15 every morning."


@pytest.fixture(scope="module")
def served(default_models: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A keyed server that runs one answer at a time and queues none, with one document."""
    home = tmp_path_factory.mktemp("served-home")
    key_file = home / "key"
    key_file.write_text(KEY)
    key_file.chmod(0o600)
    running = start_server(dataclasses.replace(default_models, home=home), "--api-key-file", str(key_file),
                           "--parallel", "1", "--max-queue", "0", key=KEY)
    with running.http() as client:
        assert client.post("/v1/ingest/text", json={"file_name": "ferry.txt", "text": FERRY}).status_code == 200
    yield running
    running.stop()


def client_settings(server: RunningServer, tmp_path: Path, key: str = KEY) -> Settings:
    """A client home and an empty model cache: answers can only come from the server."""
    (tmp_path / "no-models").mkdir(exist_ok=True)
    return Settings(home=tmp_path / "client", model_cache=tmp_path / "no-models", server=server.url, server_key=key)


def client_cli(settings: Settings, *args: str, key: str = KEY,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**cli_env(settings), "PGPT_SERVER": settings.server, "PGPT_API_KEY": key}
    return subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=600, cwd=cwd)


async def test_the_app_chats_through_the_server(served: RunningServer, tmp_path: Path) -> None:
    app = ChatApp(client_settings(served, tmp_path), SamplingOptions(max_new_tokens=12))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        tip = str(app.query_one(".tip", Static).render())  # not the local "export a 1.5B model" tip
        assert f"this app asks the pgpt-serve at {served.url}" in tip and "pgpt-export" not in tip
        await pilot.press("ctrl+r")  # documents -> chat
        assert app.mode == "chat"
        await ask(pilot, "What is the capital of France?")
        answer = turns(app)[1].text
        line = status(app)
        # NAME@VERSION and the speeds ran past 80 columns: the version gives way, tok/s stays in view
        assert line.startswith(f"server 127.0.0.1:{served.port} · smollm2-135m-instruct-int8 · TTFT ")
        assert line.endswith(" tok/s") and len(line) <= 78
        await pilot.press("ctrl+n")
        await ask(pilot, "What is the capital of France?")
        assert turns(app)[1].text == answer and status(app).endswith("cached")
        assert "smollm2-135m-instruct-int8@" in status(app)  # the version, where there is room for it


async def test_an_app_started_before_its_server_connects_on_the_next_question(served: RunningServer,
                                                                               tmp_path: Path) -> None:
    """The app started while nothing answered; once the server was up, Enter showed the old
    "Server unreachable" again and never sent the question. Now Enter connects anew."""
    port = free_port()
    settings = dataclasses.replace(client_settings(served, tmp_path), server=f"http://127.0.0.1:{port}")
    app = ChatApp(settings, SamplingOptions(max_new_tokens=6))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.load_error))
        assert "Server unreachable" in app.load_error and app.engine is None
        second = start_server(dataclasses.replace(served.settings, home=tmp_path / "late-server"), key=KEY,
                              env={"PGPT_API_KEY": KEY}, port=port)
        try:
            with second.http() as client:
                client.post("/v1/ingest/text", json={"file_name": "ferry.txt", "text": FERRY})
            # typed in Chat mode (nothing was known), asked of the server's documents once it answers:
            # it was answered by the model alone (an invented timetable) under a Documents prompt
            await pilot.press(*"When does the ferry to Tresco leave?", "enter")
            await wait_until(pilot, lambda: not app.answering and turns(app)[-1].kind in ("sources", "closest"))
            assert app.engine is not None and turns(app)[1].text and app.mode == "docs"
            line = status(app)  # within 78 columns (80 less the padding): no part cut off by the screen's edge
            assert line.startswith(f"server 127.0.0.1:{port} · smollm2-135m-instruct-") and len(line) <= 78
        finally:
            second.stop()


async def test_documents_and_search_modes_use_the_servers_index(served: RunningServer, tmp_path: Path) -> None:
    app = ChatApp(client_settings(served, tmp_path), SamplingOptions(max_new_tokens=16))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        assert app.mode == "docs" and app.library is not None and app.library.documents >= 1
        await pilot.press(*"When does the ferry to Tresco leave?", "enter")
        await wait_until(pilot, lambda: not app.answering and turns(app)[-1].kind in ("sources", "closest"))
        kinds = [t.kind for t in turns(app)]  # the server checked the answer: quotes when it found them
        assert kinds in (["user", "assistant", "quotes", "sources"], ["user", "assistant", "sources"],
                         ["user", "assistant", "closest"]) and "ferry.txt" in turns(app)[-1].text
        await pilot.press("ctrl+r", "ctrl+r")  # -> chat -> search
        assert app.mode == "search"
        await ask(pilot, "ferry Tresco")
        assert "9:15" in turns(app)[-1].text
        assert status(app).startswith(f"server {served.url.split('://')[1]} · search")  # not "CPU · search"
        with served.http() as client:
            client.post("/v1/ingest/text", json={"file_name": "old-notes.txt", "text": "Old notes, to be forgotten."})
        await pilot.press("f4")  # the Docs panel lists the server's documents (it showed an empty list)
        table, report = app.screen.query_one(DataTable), app.screen.query_one("#doc-report", Static)
        await wait_until(pilot, lambda: table.row_count >= 2)
        names = [str(table.get_row_at(i)[2]) for i in range(table.row_count)]
        assert "ferry.txt" in names and "old-notes.txt" in names  # names, not the server's folders
        assert str(report.render()).startswith(f"The documents live on the server ({served.url})")
        table.focus()
        table.move_cursor(row=names.index("old-notes.txt"))
        await pilot.press("delete")  # forgets it on the server (it only said where documents live)
        await wait_until(pilot, lambda: table.row_count == len(names) - 1)
        assert "Forgot old-notes.txt on the server." in str(report.render())
        assert "old-notes.txt" not in {d["doc_metadata"]["file_name"] for d in served.documents()}


async def test_escape_cancels_the_request_on_the_server(served: RunningServer, tmp_path: Path) -> None:
    endless = SamplingOptions(max_new_tokens=1000, ignore_eos=True, temperature=0.8, seed=int(time.time()))
    app = ChatApp(client_settings(served, tmp_path), endless)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        await pilot.press("ctrl+r")
        await pilot.press(*"Tell me a very long story.", "enter")
        await wait_until(pilot, lambda: bool(app.answering and len(turns(app)) == 2 and turns(app)[1].text))
        assert served.metric("pgpt:num_requests_running") == 1
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.answering, timeout=30)
        assert turns(app)[1].mark == "(stopped)" and turns(app)[1].text
        deadline = time.monotonic() + 10
        while served.metric("pgpt:num_requests_running") != 0:
            assert time.monotonic() < deadline, "the server kept generating after Esc"
            time.sleep(0.05)


def test_a_documents_answer_stops_within_a_second_of_a_cancel(served: RunningServer, tmp_path: Path) -> None:
    """The server sends nothing while it drafts and checks a documents answer; the client saw its
    cancel only at the next piece, so Esc waited for the whole draft (the server's heartbeat)."""
    from pgpt.runtime.errors import Cancelled
    from pgpt.runtime.remote import connect

    remote = connect(client_settings(served, tmp_path))
    cancel = threading.Event()
    long_draft = SamplingOptions(max_new_tokens=1000, ignore_eos=True, temperature=0.8, seed=int(time.time()))
    stream = remote.ask("When does the ferry to Tresco leave?", long_draft, cancel)
    states: list[str] = []
    stream.on_state = states.append  # the app's status line: "drafting: N tokens"
    timer = threading.Timer(2.2, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(Cancelled):
            for _ in stream:
                pass
    finally:
        timer.cancel()
        remote.close()
    assert time.monotonic() - started < 5.2  # a heartbeat each second; the 1000-token draft takes far longer
    drafted = [int(state.split()[1]) for state in states if state.startswith("drafting ")]
    assert drafted and drafted[-1] > 0 and drafted == sorted(drafted), states
    deadline = time.monotonic() + 10
    while served.metric("pgpt:num_requests_running") != 0:
        assert time.monotonic() < deadline, "the server kept drafting after the cancel"
        time.sleep(0.05)


async def test_the_status_line_says_what_the_server_does_while_it_drafts(served: RunningServer,
                                                                         tmp_path: Path) -> None:
    """A documents answer arrives once checked: the app showed a bare "answering…" for 5-26 s."""
    long_draft = SamplingOptions(max_new_tokens=256, ignore_eos=True, temperature=0.8, seed=int(time.time()))
    app = ChatApp(client_settings(served, tmp_path), long_draft)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None and app.mode == "docs")
        await pilot.press(*"When does the ferry to Tresco leave?", "enter")
        await wait_until(pilot, lambda: "drafting: " in status(app), timeout=30)
        assert re.search(r"smollm2-135m-instruct-int8 · drafting: \d+ tokens$", status(app)), status(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.answering, timeout=10)


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
    assert typo.returncode == 1 and "No documents are indexed in the collection 'defualt'" in typo.stderr
    assert "Collections here: default" in typo.stderr and "Traceback" not in typo.stderr
    right = client_cli(settings, "search", "ferry Tresco", "--collection", "default", "--json")
    assert right.returncode == 0 and json.loads(right.stdout)["results"][0]["source"].endswith("ferry.txt")
    asked = client_cli(settings, "ask", "When does the ferry to Tresco leave?", "--collection", "defualt", "-k", "1",
                       "--sentences", "0")
    assert asked.returncode == 1 and "'defualt'" in asked.stderr, asked.stderr
    uncached = client_cli(settings, "ask", "When does the ferry to Tresco leave?", "--no-cache")
    assert uncached.returncode == 2 and "--no-cache" in uncached.stderr and "server" in uncached.stderr
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
    (folder / "empty.txt").write_text("")
    (tmp_path / "secret.txt").write_text("outside the folder")
    (folder / "link.txt").symlink_to(tmp_path / "secret.txt")
    for team in ("ops", "dev"):  # one name in two folders, as every tree has README files
        (folder / team).mkdir()
        (folder / team / "README.md").write_text(f"# {team}\n\nThe {team} team meets on Thursdays in room {len(team)}.\n")
    sent = client_cli(settings, "ingest", str(folder), "--collection", "sent", "--json", cwd=tmp_path)
    report = json.loads(sent.stdout)
    assert report["added"] == 3 and report["updated"] == 0 and report["server"] == served.url, sent.stderr
    assert {Path(s["path"]).name for s in report["skipped"]} == {"link.txt"}
    assert [Path(f["path"]).name for f in report["failed"]] == ["empty.txt"] and sent.returncode == 1
    assert not (settings.home / "index").exists()  # nothing local
    try:
        listed = client_cli(settings, "docs", "--collection", "sent")
        assert listed.returncode == 0 and "[sent] to-send/canteen.md" in listed.stdout, listed.stdout
        assert "to-send/ops/README.md" in listed.stdout and "to-send/dev/README.md" in listed.stdout
        # the file by itself, from the same folder, is the same document (its name is its path from here)
        again = client_cli(settings, "ingest", "to-send/canteen.md", "--collection", "sent", cwd=tmp_path)
        assert again.returncode == 0 and "1 unchanged" in again.stdout and served.url in again.stdout
        client_cli(settings, "ingest", str(folder / "ops"), "--collection", "other", cwd=tmp_path)
        only = client_cli(settings, "forget", "--collection", "other", str(folder / "ops"))
        assert only.returncode == 0 and "(1 document(s)" in only.stdout, only.stdout + only.stderr
        assert "to-send/ops/README.md" in client_cli(settings, "docs", "--collection", "sent").stdout
        assert "[other]" not in client_cli(settings, "docs").stdout  # the other collection's copy only
        team = client_cli(settings, "forget", str(folder / "dev"))  # a local folder: what was sent from it
        assert team.returncode == 0 and "(1 document(s)" in team.stdout, team.stdout + team.stderr
        found = client_cli(settings, "search", "canteen deck two", "--collection", "sent", "--json")
        assert json.loads(found.stdout)["results"][0]["text"].startswith("# Canteen") or "canteen" in found.stdout
        refused = client_cli(settings, "ingest", str(folder), "--prune")
        assert refused.returncode == 2 and "--prune" in refused.stderr
    finally:
        forgot = client_cli(settings, "forget", "canteen.md")
        client_cli(settings, "forget", str(folder))  # the rest sent from it: the server is shared by the tests
    assert forgot.returncode == 0 and "forgot canteen.md on the server" in forgot.stdout, forgot.stderr
    assert "canteen.md" not in client_cli(settings, "docs").stdout
    missing = client_cli(settings, "forget", "canteen.md")
    assert missing.returncode == 2 and "has no document 'canteen.md'" in missing.stderr


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


async def test_a_key_fixed_in_its_file_works_at_the_apps_next_question(served: RunningServer,
                                                                       tmp_path: Path) -> None:
    """A wrong key in PGPT_API_KEY_FILE needed the app restarted once the file was fixed."""
    key_file = tmp_path / "server.key"
    key_file.write_text("wrong-key\n")
    key_file.chmod(0o600)
    settings = dataclasses.replace(client_settings(served, tmp_path, key="wrong-key"), server_key_file=str(key_file))
    app = ChatApp(settings, SamplingOptions(max_new_tokens=8))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.load_error))
        assert app.engine is None and "refused the request (401)" in app.load_error
        key_file.write_text(KEY + "\n")
        await pilot.press("ctrl+r")  # documents -> chat
        await ask(pilot, "What is the capital of France?")
        assert app.engine is not None and turns(app)[-1].kind == "assistant" and turns(app)[-1].text
        assert turns(app)[-1].mark != "(failed)" and "wrong-key" not in status(app)


def test_doctor_of_a_client_checks_its_server(served: RunningServer, tmp_path: Path) -> None:
    """As a client, chat, ask and the app run on the server: doctor spoke only of local folders."""
    settings = client_settings(served, tmp_path)
    report = json.loads(client_cli(settings, "doctor", "--offline", "--json").stdout)
    server = report["server"]
    assert server["url (PGPT_SERVER)"] == served.url and server["api key"] == "from PGPT_API_KEY (never shown)"
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
        assert busy.returncode == 1 and "error: Server busy" in busy.stderr and "retry in" in busy.stderr
        # the server's own title and hint are not repeated inside the client's message
        assert busy.stderr.count("Server busy") == 1 and busy.stderr.count("Try again in a moment") == 1, busy.stderr
        assert "ask its operator to raise" in busy.stderr  # a client cannot raise --parallel itself
        assert "1 request(s)" in busy.stderr
    assert httpx.get(served.url + "/health", timeout=10).status_code == 200


@contextlib.contextmanager
def occupied(served: RunningServer) -> Iterator[None]:
    """The server's one slot taken by a long answer (it allows nothing to wait) while the block runs."""
    holder = threading.Event()

    def occupy() -> None:
        body = {"messages": [{"role": "user", "content": "Count to 500."}], "max_tokens": 400, "ignore_eos": True,
                "stream": True}
        with served.http() as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
            for _ in response.iter_lines():
                if holder.is_set():
                    return

    thread = threading.Thread(target=occupy)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while served.metric("pgpt:num_requests_running") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield
    finally:
        holder.set()
        thread.join(timeout=60)


async def test_a_model_chosen_in_the_app_is_asked_of_the_server(served: RunningServer, tmp_path: Path) -> None:
    """F3's Enter marked a local model as the chat model, and answers kept coming from the server's default."""
    from pgpt.tui.chat.messages import ModelChanged

    app = ChatApp(client_settings(served, tmp_path), SamplingOptions(max_new_tokens=6))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        app.post_message(ModelChanged("no-such-model"))
        await wait_until(pilot, lambda: bool(app.load_error))
        assert "no-such-model" in app.load_error and app.engine is None
        app.post_message(ModelChanged("smollm2-135m-instruct-int8"))
        await wait_until(pilot, lambda: app.engine is not None)
        assert app.engine.requested == "smollm2-135m-instruct-int8"


async def test_f3_in_client_mode_says_what_the_server_serves(served: RunningServer, tmp_path: Path) -> None:
    """F3 listed this machine's models alone, and Enter on one the server lacks made it the chat model."""
    from test_models_screen import select_model, text_of

    from pgpt.runtime.manifest import write_manifest
    from pgpt.runtime.models import read_config
    from pgpt.tui.screens.models.screen import ModelsScreen

    settings = client_settings(served, tmp_path)
    local = settings.model_cache / "tiny-fp32"  # an export of this machine that the server does not have
    local.mkdir(parents=True)
    (local / "model.onnx").write_bytes(b"\0" * 1000)
    write_manifest(local, {"kind": "llm", "dtype": "fp32"})
    app = ChatApp(settings, SamplingOptions(max_new_tokens=6))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        await pilot.press("f3")
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        await wait_until(pilot, lambda: "which serves: smollm2-135m-instruct-int8 (default)"
                         in text_of(screen, "#diagnosis"))
        await select_model(pilot, screen, "tiny-fp32")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "does not serve tiny-fp32" in text_of(screen, "#diagnosis"))
        assert "active_model" not in read_config(settings) and app.engine is not None


async def test_a_question_the_busy_server_refused_is_kept_in_the_prompt(served: RunningServer,
                                                                        tmp_path: Path) -> None:
    """It was gone (the input cleared, the turn marked failed): the user had to type it again."""
    app = ChatApp(client_settings(served, tmp_path), SamplingOptions(max_new_tokens=6))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.engine is not None)
        with occupied(served):
            await pilot.press(*"When does the ferry leave?", "enter")
            await wait_until(pilot, lambda: not app.answering)
        assert turns(app)[1].mark == "(failed)"
        assert app.query_one("#prompt", Input).value == "When does the ferry leave?"
        assert any(n.title == "Server busy" and "operator" in n.message for n in app._notifications)


async def test_search_and_ask_against_a_server_with_nothing_indexed_say_so(served: RunningServer,
                                                                          tmp_path: Path) -> None:
    """As locally: an empty index is a usage error (exit 2) that says where to add documents, not
    "No matching passages" or "not found", which would suggest the documents were searched."""
    with served.http() as client:
        (document,) = client.get("/v1/ingest/list").json()["data"]
        assert client.delete(f"/v1/ingest/{document['doc_id']}").status_code == 200
    try:
        settings = client_settings(served, tmp_path)
        search = client_cli(settings, "search", "ferry Tresco", "--json")
        assert search.returncode == 2 and search.stdout == "", search.stderr
        assert f"Nothing is indexed yet on the server at {served.url}" in search.stderr
        assert "POST /v1/ingest/file" in search.stderr and "Traceback" not in search.stderr
        # the server refuses a documents question itself (400), so every client hears it: the
        # CLI, the app and PrivateGPT's clients
        asked = client_cli(settings, "ask", "When does the ferry to Tresco leave?", "--json")
        assert asked.returncode == 1 and asked.stdout == "" and "Traceback" not in asked.stderr
        assert "answered 400" in asked.stderr and "Nothing is indexed yet on this server" in asked.stderr
        # one title, the server's own: not "Server error: ... answered 400: Usage error: ..."
        assert "Usage error" in asked.stderr and "Server error" not in asked.stderr
        assert asked.stderr.count("Usage error") == 1, asked.stderr
        body = {"messages": [{"role": "user", "content": "When does the ferry leave?"}], "use_context": True}
        with served.http() as client:
            refused = client.post("/v1/chat/completions", json=body)
        assert refused.status_code == 400 and "POST /v1/ingest/file" in refused.json()["error"]["message"]
        app = ChatApp(settings, SamplingOptions(max_new_tokens=12))
        async with app.run_test(size=SIZE) as pilot:  # the app's Search mode: not "No matching passages"
            await wait_until(pilot, lambda: app.engine is not None)
            while app.mode != "search":
                await pilot.press("ctrl+r")
            await ask(pilot, "ferry Tresco")
            assert turns(app)[-1].text.startswith("The server has no documents yet: add some with F4 (Docs)")
    finally:  # the module's other tests expect the one document
        with served.http() as client:
            assert client.post("/v1/ingest/text", json={"file_name": "ferry.txt", "text": FERRY}).status_code == 200


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
