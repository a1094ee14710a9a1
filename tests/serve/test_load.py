"""Limits under load on a real pgpt-serve: 503 with Retry-After when the queue is full (nothing lost
for the accepted), the max_tokens cap, a disconnect freeing its slot, and a kill -9 mid-stream."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from pgpt.runtime.settings import Settings
from serve_support import RunningServer, start_server

LONG = [{"role": "user", "content": "Count from one to two hundred, one number per line."}]


@pytest.fixture(scope="module")
def one_slot(served_settings: Settings) -> Iterator[RunningServer]:
    """One generation at a time, one more may wait, answers of at most 200 tokens (long enough
    to still run when the test looks, also on a quiet machine: 60 tokens/s)."""
    running = start_server(served_settings, "--parallel", "1", "--max-queue", "1", "--max-tokens-cap", "200")
    yield running
    running.stop()


def wait_for(condition, timeout: float = 60.0) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``condition()`` held (fails after ``timeout``)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition not reached"
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_full_queue_gets_503_at_once_and_the_accepted_finish(one_slot: RunningServer) -> None:
    results: dict[int, str] = {}

    def ask(number: int) -> None:
        stream = one_slot.openai().chat.completions.create(
            model="default", messages=LONG, max_tokens=200, temperature=0.7, seed=number, stream=True,
            extra_body={"ignore_eos": True})
        results[number] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    threads = [threading.Thread(target=ask, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
        time.sleep(0.3)
    wait_for(lambda: one_slot.metric("pgpt:num_requests_running") == 1
             and one_slot.metric("pgpt:num_requests_waiting") == 1)
    started = time.monotonic()
    refused = httpx.post(one_slot.url + "/v1/chat/completions", timeout=30,
                         json={"messages": LONG, "max_tokens": 8, "seed": 3, "temperature": 0.7})
    assert time.monotonic() - started < 2.0  # at once, never a hang
    assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    assert error["code"] == "server_busy" and "max_queue=1" in error["message"]
    for thread in threads:
        thread.join(timeout=600)
    assert set(results) == {1, 2} and all(results.values())  # nothing lost for the accepted
    assert one_slot.metric("pgpt:requests_rejected_total") >= 1


def test_a_busy_refusal_at_max_loaded_counts_as_rejected(served_settings: Settings) -> None:
    """Every loaded model busy at --max-loaded: a 503 server_busy that pgpt:requests_rejected_total left
    out, so an alert on it missed these refusals (t49). The 135M model answering 900 tokens holds its
    lease for seconds (a tiny random model finished before the second request came)."""
    import dataclasses

    settings = dataclasses.replace(served_settings, home=served_settings.home / "max-loaded")
    server = start_server(settings, "--max-loaded", "1", "--parallel", "1", "--keep-alive", "-1")
    try:
        with server.http() as http:
            body = {"model": "smollm2-135m-instruct-int8", "messages": LONG, "max_tokens": 900, "stream": True,
                    "ignore_eos": True}
            with http.stream("POST", "/v1/chat/completions", json=body) as running:
                assert running.status_code == 200
                next(running.iter_lines())  # streaming: its model is leased until the stream ends
                refused = http.post("/v1/chat/completions", json={**body, "model": "smollm2-135m-instruct-fp32",
                                                                  "stream": False, "max_tokens": 4})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "server_busy", refused.text
        assert "max_loaded=1" in refused.json()["error"]["message"]
        assert server.metric("pgpt:requests_rejected_total") == 1
    finally:
        server.stop()


def test_max_tokens_is_capped(one_slot: RunningServer) -> None:
    reply = one_slot.openai().chat.completions.create(model="default", messages=LONG, max_tokens=5000,
                                                      extra_body={"ignore_eos": True})
    assert reply.usage.completion_tokens == 200 and reply.choices[0].finish_reason == "length"


def test_a_client_that_leaves_frees_its_slot(one_slot: RunningServer) -> None:
    wait_for(lambda: one_slot.metric("pgpt:num_requests_running") == 0)
    before = one_slot.metric("pgpt:generation_tokens_total")
    body = {"messages": LONG, "max_tokens": 200, "stream": True, "temperature": 0.7, "seed": 99, "ignore_eos": True}
    with httpx.Client(timeout=120) as client, client.stream("POST", one_slot.url + "/v1/chat/completions",
                                                            json=body) as response:
        pieces, lines = 0, response.iter_lines()  # kept: a dropped line iterator closes the connection
        for line in lines:
            pieces += '"content":"' in line and '"content":""' not in line
            if pieces == 2:  # two tokens in: the sequence runs
                break
        assert one_slot.metric("pgpt:num_requests_running") == 1
    # leaving the block closed the connection
    seconds = wait_for(lambda: one_slot.metric("pgpt:num_requests_running") == 0, timeout=10)
    assert seconds < 2.0, f"the slot stayed busy {seconds:.2f} s after the client left"
    # the tokens the model wrote for it are counted (a cut stream changed no counter, t49)
    wait_for(lambda: one_slot.metric("pgpt:generation_tokens_total") >= before + 2, timeout=10)
    generated_after = one_slot.metric("pgpt:generation_tokens_total")
    time.sleep(1.0)
    assert one_slot.metric("pgpt:generation_tokens_total") == generated_after  # nothing runs for nobody
    assert one_slot.openai().chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Hi"}], max_tokens=3).choices[0].message.content
    # the access log says the client left, with the numbers until then (a cut stream logged
    # "prompt_tokens=- new_tokens=- ttft_s=-"); finished answers do not say it

    def access() -> list[str]:
        return [line for line in one_slot.settings.log_file.read_text().splitlines() if "pgpt.serve.access" in line]

    wait_for(lambda: any(line.endswith(" disconnected") for line in access()), timeout=10)
    cut = [line for line in access() if line.endswith(" disconnected")]
    assert len(cut) == 1 and "POST /v1/chat/completions 200 " in cut[0], access()
    numbers = re.search(r"prompt_tokens=(\d+) new_tokens=(\d+) ttft_s=(\d+\.\d+) ", cut[0])
    assert numbers, cut[0]
    assert int(numbers[1]) > 10 and 2 <= int(numbers[2]) < 200 and float(numbers[3]) > 0


def test_kill_9_mid_stream_then_a_restart_serves_from_the_same_caches(served_settings: Settings) -> None:
    """The client of a killed server gets a clear error; the next server on the same home answers
    from the answer cache and the similar-question cache, and the index is there."""
    import dataclasses

    from pgpt.runtime.errors import ServerUnreachableError
    from pgpt.runtime.llm.sampling import SamplingOptions
    from pgpt.runtime.remote.client import RemoteEngine

    settings = dataclasses.replace(served_settings, home=served_settings.home / "crash")
    first = start_server(settings)
    question = [{"role": "user", "content": "Name a fruit."}]
    answer = first.openai().chat.completions.create(model="default", messages=question, max_tokens=6)
    ferry = "The ferry to Tresco leaves the quay at 9:15 every morning."
    assert first.http().post("/v1/ingest/text", json={"file_name": "ferry.txt", "text": ferry}).status_code == 200
    documents = {"use_context": True}
    asked = first.openai().chat.completions.create(
        model="default", max_tokens=12, extra_body=documents,
        messages=[{"role": "user", "content": "When does the ferry to Tresco leave?"}])
    remote = RemoteEngine(first.url)
    stream = iter(remote.stream(LONG, SamplingOptions(max_new_tokens=200, temperature=0.7, seed=5, ignore_eos=True)))
    next(stream)
    first.kill()
    with pytest.raises(ServerUnreachableError, match="closed the connection in the middle of the answer"):
        for _ in stream:
            pass
    with pytest.raises(openai.APIConnectionError):
        first.openai().chat.completions.create(model="default", messages=question, max_tokens=6)
    second = start_server(settings, port=first.port)
    try:
        again = second.openai().chat.completions.create(model="default", messages=question, max_tokens=6)
        assert again.model_extra["cached"] is True
        assert again.choices[0].message.content == answer.choices[0].message.content
        reworded = second.openai().chat.completions.create(  # the similar-question cache, on disk too
            model="default", max_tokens=12, extra_body=documents,
            messages=[{"role": "user", "content": "when does the ferry to tresco leave"}])
        assert reworded.model_extra["cached"] is True
        assert reworded.choices[0].message.content == asked.choices[0].message.content
    finally:
        second.stop()
        remote.close()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_mid_stream_cuts_the_answer_at_once_with_a_clear_error(served_settings: Settings,
                                                                       stop: signal.Signals) -> None:
    """Ctrl-C / SIGTERM / systemctl stop: the stream ran on for uvicorn's 10 s grace period and was
    then cut with no error (and a CancelledError traceback in the log). Now the client reads
    "Server stopping" inside the stream at once and the process exits within seconds. A hangup (the
    SSH session that started it closed) killed it mid-stream without a word, its status file left
    behind (t49): it stops the same way."""
    import dataclasses
    import json

    settings = dataclasses.replace(served_settings, home=served_settings.home / f"stopping-{stop.name}")
    running = start_server(settings)
    body = {"messages": LONG, "max_tokens": 2000, "ignore_eos": True, "stream": True}
    try:
        with running.http() as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200, response.read()
            events = response.iter_lines()
            first = [next(events) for _ in range(6)]  # the role chunk, then text
            assert all(line.startswith("data: {") for line in first if line), first
            signalled = time.monotonic()
            running.process.send_signal(stop)
            rest = [line for line in events if line.startswith("data: ")]
            cut_after = time.monotonic() - signalled
        assert rest[-1] == "data: [DONE]" and cut_after < 5.0, (cut_after, rest[-3:])
        error = json.loads(rest[-2].removeprefix("data: "))["error"]
        assert "Server stopping" in error["message"] and "cut" in error["message"]
        assert running.process.wait(timeout=10) == -stop  # ended by the signal, as systemd expects of a stop
        assert time.monotonic() - signalled < 8.0
        assert "Traceback" not in running.log_text() and "CancelledError" not in running.log_text()
        assert f"pgpt-serve stopped ({stop.name})" in running.log_text()
        assert not list((settings.home / "run").glob("pool-*.json"))  # the status file went with it
        # the same last line as after Ctrl-C (SIGTERM, systemctl stop, ended without one)
        assert running.output.read_text(errors="replace").rstrip().endswith("pgpt-serve: stopped")
    finally:
        running.stop()


def test_sigterm_mid_upload_answers_503_and_keeps_nothing_of_it(served_settings: Settings) -> None:
    """An upload being indexed when the server was told to stop got a plain-text 500 after the
    10 s grace period (a CancelledError traceback in the log), its file stayed in uploads/ unlisted,
    and with Ctrl-C the document was indexed after the client had been told it failed."""
    import dataclasses
    import threading

    settings = dataclasses.replace(served_settings, home=served_settings.home / "stop-upload")
    running = start_server(settings)
    text = "\n\n".join(f"Section {n} tells of harbour {n}, its quays, cranes and {n} boats. " * 9 for n in range(3000))
    answer: list[httpx.Response] = []
    try:
        with running.http() as client:
            upload = threading.Thread(target=lambda: answer.append(client.post(
                "/v1/ingest/file", files={"file": ("big.txt", text.encode())}, timeout=120)))
            upload.start()
            stored = settings.home / "uploads" / "default" / "big.txt"  # in place once its indexing starts
            deadline = time.monotonic() + 120
            while not stored.exists():
                assert time.monotonic() < deadline and upload.is_alive(), answer
                time.sleep(0.1)
            time.sleep(1.0)  # indexing: reading and embedding its 3,000 chunks takes tens of seconds
            signalled = time.monotonic()
            running.process.terminate()
            upload.join(timeout=60)
        (response,) = answer
        assert response.status_code == 503 and response.json()["error"]["code"] == "server_stopping", response.text
        assert response.headers["retry-after"] == "10"  # when to try again, as every other 503 says (t74)
        assert "big.txt" in response.json()["error"]["message"]
        running.process.wait(timeout=30)
        assert time.monotonic() - signalled < 8.0
        assert not stored.exists()
        assert "Traceback" not in running.log_text() and "CancelledError" not in running.log_text()
    finally:
        running.stop()


def test_a_server_whose_model_unloaded_when_idle_is_still_ready(served_settings: Settings) -> None:
    """After the keep-alive unloaded the model, /ready said 503 "loading" for good (with --keep-alive 0
    always), so a health check marked an idle, working server down; the next request loads it again."""
    import dataclasses

    running = start_server(dataclasses.replace(served_settings, home=served_settings.home / "idle"),
                           "--keep-alive", "0")  # waits for /ready: it never came
    try:
        with running.http() as client:
            deadline = time.monotonic() + 30
            while client.get("/v1/models/default").json()["loaded"]:  # unloaded once the start-up load ended
                assert time.monotonic() < deadline
                time.sleep(0.2)
            ready = client.get("/ready")
            assert ready.status_code == 200 and ready.json()["loaded"] is False, ready.text
            answer = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}],
                                                                 "max_tokens": 4})
            assert answer.status_code == 200, answer.text
    finally:
        running.stop()


def test_ctrl_c_stops_the_server_with_one_line_and_no_traceback(served_settings: Settings) -> None:
    """Ctrl-C in the terminal: uvicorn stopped cleanly, then raised the Ctrl-C it had caught again,
    and a KeyboardInterrupt traceback ended the output. Now one line, and the shell's 130."""
    import dataclasses
    import signal

    running = start_server(dataclasses.replace(served_settings, home=served_settings.home / "ctrl-c"))
    try:
        running.process.send_signal(signal.SIGINT)
        assert running.process.wait(timeout=30) == 130
        output = running.output.read_text(errors="replace")
        assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-2000:]
        assert output.rstrip().endswith("pgpt-serve: stopped"), output[-500:]
    finally:
        running.stop()


def test_models_exported_after_the_start_are_found_without_a_restart(served_settings: Settings,
                                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    """Started on an empty model cache: chat found the models once exported, but embeddings and
    documents said "no exported model" until a restart, and /ready said "loading failed" until a
    chat came. Now /ready (and a documents request) try the start-up load again."""
    import dataclasses

    cache = tmp_path_factory.mktemp("late-models")
    settings = dataclasses.replace(served_settings, home=served_settings.home / "late", model_cache=cache)
    running = start_server(settings, ready=False)
    try:
        with running.http() as client:
            deadline = time.monotonic() + 60
            while "loading failed" not in client.get("/ready").text:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert client.post("/v1/embeddings", json={"input": "tides"}).status_code == 404
            for model in served_settings.model_cache.iterdir():  # the export lands: the same folders, linked
                if not model.name.startswith("."):
                    (cache / model.name).symlink_to(model.resolve())
            deadline = time.monotonic() + 120
            while client.get("/ready").status_code != 200:
                assert time.monotonic() < deadline, client.get("/ready").text
                time.sleep(1)
            vectors = client.post("/v1/embeddings", json={"input": "tides"})
            assert vectors.status_code == 200 and len(vectors.json()["data"][0]["embedding"]) == 384
        output = running.output.read_text(errors="replace")  # the failure was shown once on stderr, briefly
        assert output.count("pgpt-serve: error: chat model loading failed") == 1 and "Traceback" not in output
    finally:
        running.stop()


def test_a_burst_of_streamed_documents_questions_is_refused_before_the_stream(served_settings: Settings,
                                                                             tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A documents answer was checked against the queue at arrival and queued after its search: in a
    burst, 3 of 9 streams answered 200 and then carried a server_busy error, which clients that retry
    on 503 did not retry (t75). Its place is now held from arrival: a refusal is a 503."""
    from serve_support import upload

    server = start_server(served_settings, "--parallel", "1", "--max-queue", "1", "--max-tokens-cap", "24")
    try:
        note = tmp_path / "ferry.txt"
        note.write_text("The ferry to the island leaves at noon every Tuesday. Tickets cost 4 euros.\n")
        assert upload(server, note)[0] == 200
        outcomes: list[tuple[int, bool]] = []

        def ask(number: int) -> None:
            body = {"messages": [{"role": "user", "content": f"When does ferry {number} to the island leave?"}],
                    "use_context": True, "stream": True, "max_tokens": 24}
            with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=300) as response:
                text = response.read().decode()
            outcomes.append((response.status_code, '"error"' in text))

        threads = [threading.Thread(target=ask, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert len(outcomes) == 6 and {status for status, _ in outcomes} <= {200, 503}, outcomes
        assert not [o for o in outcomes if o == (200, True)], outcomes  # no refusal inside a started stream
        assert any(status == 200 for status, _ in outcomes)
    finally:
        server.stop()
