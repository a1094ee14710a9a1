"""The app as a client of a real pgpt-serve (PGPT_SERVER / --server), with an empty local model
cache: nothing is loaded here (the command line's side: test_remote_cli.py)."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from pathlib import Path

import pytest
from remote_support import FERRY, KEY, client_cli, client_settings, occupied, served  # noqa: F401 (a fixture)
from test_app import SIZE, ask, status, turns, wait_until
from textual.widgets import DataTable, Input, Static

from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.tui.chat.app import ChatApp
from serve_support import RunningServer, free_port, start_server

pytestmark = pytest.mark.slow  # a server subprocess


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
            # typed under "Chat with the model": answered in that mode, which stays, and the notice says
            # the server has documents (it was asked of them and the mode changed under the question)
            await pilot.press(*"When does the ferry to Tresco leave?", "enter")
            await wait_until(pilot, lambda: not app.answering and turns(app)[-1].kind == "assistant"
                             and bool(turns(app)[-1].text))
            assert app.engine is not None and app.mode == "chat"
            assert any("answered in Chat mode, as it was sent" in str(n.message) for n in app._notifications)
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
        # no file of the server's is on this machine: none is marked gone, and Ctrl+G (local) is not offered
        assert all("gone" not in str(table.get_row_at(i)[1]) for i in range(table.row_count))
        assert not app.screen.check_action("forget_gone", ())
        assert str(report.render()).startswith(f"The documents live on the server ({served.url})")
        # no path to type nor folder tree to pick from: it offered "Enter adds the path", then refused (t73)
        assert not app.screen.query_one("#doc-path").display and not app.screen.query_one("#doc-tree").display
        assert app.screen.focused is table
        table.focus()
        table.move_cursor(row=names.index("old-notes.txt"))
        await pilot.press("delete", "y")  # forgets it on the server (it only said where documents live)
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
    from pgpt.runtime.remote.client import connect

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


def test_a_follow_up_asked_through_the_server_is_sent_after_the_question_before(served: RunningServer,
                                                                                   tmp_path: Path) -> None:
    """ "And when does it close?" reached the server alone, which searched it alone: the app in client
    mode sends the question before it, as a chat's history, so the server searches the follow-up after
    it (AskStream's retrieval_question; tests/runtime/documents/test_ask.py)."""
    from pgpt.runtime.remote.client import connect

    remote = connect(client_settings(served, tmp_path))
    options = SamplingOptions(max_new_tokens=24)
    try:
        after = remote.ask("And what time is that?", options, earlier=["Which ferry is there?",
                                                                        "When does the ferry to Tresco leave?"])
        assert [m["content"] for m in after._body["messages"]] == ["When does the ferry to Tresco leave?",
                                                                    "And what time is that?"]
        list(after)
    finally:
        remote.close()
    assert "Tresco" in after.result.sources[0]["text"]


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
        assert not turns(app)[-1].mark.startswith("(failed") and "wrong-key" not in status(app)


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
    from pgpt.runtime.user_config import read_config
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
        assert turns(app)[1].mark.startswith("(failed: Server busy: "), turns(app)[1].mark
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
        assert search.returncode == 2 and json.loads(search.stdout)["error"]["exit_code"] == 2, search.stderr
        assert f"Nothing is indexed yet on the server at {served.url}" in search.stderr
        # the command that adds them from here (it named the server's HTTP API)
        assert f"pgpt-tui --server {served.url} ingest PATH" in search.stderr and "Traceback" not in search.stderr
        # the server refuses a documents question itself (400), so every client hears it: the
        # CLI, the app and PrivateGPT's clients; the CLI names its own next step
        asked = client_cli(settings, "ask", "When does the ferry to Tresco leave?", "--json")
        assert asked.returncode == 2 and "Traceback" not in asked.stderr  # was 1
        assert "Nothing is indexed yet" in json.loads(asked.stdout)["error"]["message"]
        assert f"Nothing is indexed yet on the server at {served.url}" in asked.stderr
        assert f"pgpt-tui --server {served.url} ingest PATH" in asked.stderr and "use_context" not in asked.stderr
        # one title: not "Server error: ... answered 400: Usage error: ..."
        assert "Usage error" in asked.stderr and "Server error" not in asked.stderr
        assert asked.stderr.count("Usage error") == 1, asked.stderr
        body = {"messages": [{"role": "user", "content": "When does the ferry leave?"}], "use_context": True}
        with served.http() as client:
            refused = client.post("/v1/chat/completions", json=body)
        assert refused.status_code == 400 and "POST /v1/ingest/file" in refused.json()["error"]["message"]
        # the app shows it to a person: the client's command too, with the address the request used
        assert f"`pgpt-tui --server {served.url} ingest PATH`" in refused.json()["error"]["message"], refused.text
        with served.http() as client:
            named = client.post("/v1/chat/completions", json=body, headers={"Host": f"localhost:{served.port}"})
        assert f"`pgpt-tui --server http://localhost:{served.port} ingest PATH`" in named.json()["error"]["message"]
        app = ChatApp(settings, SamplingOptions(max_new_tokens=12))
        async with app.run_test(size=SIZE) as pilot:  # the app's Search mode: not "No matching passages"
            await wait_until(pilot, lambda: app.engine is not None)
            while app.mode != "search":
                await pilot.press("ctrl+r")
            await ask(pilot, "ferry Tresco")
            # the command that works, with the real URL (F4 refuses to add in client mode, and
            # `pgpt-tui ingest --server PATH` took PATH for the URL)
            said = turns(app)[-1].text
            assert said.startswith(f"The server has no documents yet: add some with `pgpt-tui --server {served.url} "
                                   "ingest PATH`"), said
            assert "Ctrl+R" in said and "ingest --server" not in said
    finally:  # the module's other tests expect the one document
        with served.http() as client:
            assert client.post("/v1/ingest/text", json={"file_name": "ferry.txt", "text": FERRY}).status_code == 200


def test_an_uploads_indexing_is_told_while_the_client_waits(served: RunningServer, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """t67: `ingest --server` showed "0/1 files sent ETA ?" for the whole 47 s the server indexed a
    .docx: the client now asks the server how far it is while the upload waits for its answer."""
    import httpx

    from pgpt.runtime.remote import progress as remote_progress
    from pgpt.runtime.remote.client import connect

    monkeypatch.setattr(remote_progress, "POLL_S", 0.2)
    big = tmp_path / "harbour-log.txt"
    big.write_text("\n\n".join(f"Entry {n}: the harbour crane {n} lifted {n * 3} crates before noon." * 6
                               for n in range(700)))
    heard: list[dict] = []
    remote = connect(client_settings(served, tmp_path))
    try:
        document = remote.upload(big, "progress", on_progress=heard.append)
    finally:
        remote.close()
    embedding = [p for p in heard if p["state"] == "embedding"]
    assert embedding and all(p["chunks"] == embedding[-1]["chunks"] > 128 for p in embedding), heard
    assert [p["chunks_done"] for p in embedding] == sorted(p["chunks_done"] for p in embedding)
    assert document["doc_metadata"]["status"] == "added"
    assert remote_progress.server_step(embedding[-1]).startswith("the server embedded ")
    with served.http() as client:  # once answered, and for an id never sent: 404 with the way to use it
        gone = client.get(f"/v1/ingest/progress/{'0' * 32}")
        assert gone.status_code == 404 and "X-Pgpt-Progress-Id" in gone.json()["error"]["message"], gone.text
    assert httpx.get(f"{served.url}/v1/ingest/progress/{'0' * 32}").status_code == 401  # the key guards it
    log = served.log_text()  # the polls each second stay out of the request log at its default level
    assert "POST /v1/ingest/file 200" in log and "/v1/ingest/progress/{key} 401" in log  # refused: said
    assert "/v1/ingest/progress/{key} 200" not in log and "/v1/ingest/progress/{key} 404" not in log
