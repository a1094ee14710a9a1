"""What a hostile client or web page can do to a running server (a security tester's findings, t52):
grow the metrics, forge log lines, crash a route with half a character, write from another site's
page, pose as another document, and tie up the server with work it abandoned (t53 too)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from pgpt.runtime.settings import Settings
from serve_support import RunningServer, start_server


def _raw(server: RunningServer, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(request)
        return sock.recv(300)


def test_made_up_methods_share_one_metrics_label(server: RunningServer) -> None:
    """Each made-up method was a counter series of its own, never freed (2,000 of them: 4 MB)."""
    for n in range(3):
        request = f"MADEUP{n}X /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        answer = _raw(server, request.encode())
        assert answer.startswith(b"HTTP/1.1 405")
    with server.http() as client:
        metrics = client.get("/metrics").text
    assert "MADEUP" not in metrics
    assert server.metric("pgpt:http_requests_total", 'method="other",route="/v1/models",status="405"') >= 3
    assert "MADEUP" not in server.log_text()


def test_a_json_field_name_cannot_forge_a_log_line(server: RunningServer) -> None:
    forged = "evil\nFORGED [1] ERROR pgpt.serve: x"  # names are cut at 40 characters
    with server.http() as client:
        response = client.post("/v1/chat/completions", json={
            "model": "default", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}], forged: "x"})
    assert response.status_code == 200
    lines = server.log_text().splitlines()
    assert any("ignored request fields" in line and "FORGED" in line for line in lines)
    assert not any(line.startswith("FORGED") for line in lines)
    # in the log file only: a vendor field sent with every request filled the journal (t56)
    assert "ignored request fields" not in server.output.read_text(errors="replace")


@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions", '{"model":"default","max_tokens":2,"messages":[{"role":"user","content":"hi \\ud800"}]}'),
    ("/v1/embeddings", '{"input":["ferry \\udfff"]}'),
    ("/v1/chunks", '{"text":"ferry \\udfff"}'),
    ("/v1/ingest/text", '{"file_name":"sur.txt","text":"surrogate \\ud800 text"}'),
])
def test_an_unpaired_surrogate_escape_is_a_400_naming_the_field(server: RunningServer, path: str, body: str) -> None:
    """JSON's "\\ud800" is no text: each text route answered 500 "a bug in pgpt" and logged a traceback."""
    with server.http() as client:
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "unpaired surrogate" in message and ("content" in message or "input" in message or "text" in message)
    assert "Traceback" not in server.log_text()


def test_a_web_page_of_another_site_cannot_write(server: RunningServer) -> None:
    """A form upload needs no CORS preflight, so any page a user opened added documents to a keyless
    localhost server; the Host check alone did not stop it."""
    upload = {"file": ("harbour.txt", b"The harbour master is Evil Mallory.\n", "text/plain")}
    with server.http() as client:
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
            refused = client.post("/v1/ingest/file", files=upload, headers=headers)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed", headers
        assert not any(d["doc_metadata"]["file_name"] == "harbour.txt" for d in server.documents())
        own = client.post("/v1/chunks", json={"text": "harbour"}, headers={"Origin": server.url})  # its /docs page
        assert own.status_code != 403
        assert client.get("/v1/models", headers={"Origin": "http://evil.example"}).status_code == 200  # reads: CORS


@pytest.mark.parametrize("name, said", [("ｆｅｒｒｙ.md", "'ferry.md'"), ("ferry\u2024md", "'ferry.md'"),
                                        ("~/notes.txt", "starts with '~'")])
def test_names_that_look_like_other_documents_are_refused(server: RunningServer, name: str, said: str) -> None:
    """Fullwidth letters and a one-dot leader were listed beside "ferry.md" as look-alike documents,
    and "~/x.txt" as a file of the server's own home."""
    with server.http() as client:
        response = client.post("/v1/ingest/text", json={"file_name": name, "text": "The bakery opens at 6."})
    assert response.status_code == 400 and said in response.json()["error"]["message"]


@pytest.mark.parametrize("key", ["passwordpassword", "aaaaaaaaaaaaaaaa", "1234567890123456", "your-api-key-here",
                                 "changeme-changeme", "PGPT_API_KEY=3f9a1c0b7e2d4a5f"])
def test_guessable_keys_are_weak(key: str) -> None:
    from pgpt.serve.config import weak_key

    assert weak_key(key)
    assert not weak_key("3f9a1c0b7e2d4a5f8b6c9d0e1f2a3b4c") and not weak_key("k8Jd93nf0aLq2mZxWq==")


@pytest.fixture(scope="module")
def busy_server(served_settings: Settings) -> Iterator[RunningServer]:
    """A server that queues nothing: one upload and one embedding request at a time."""
    running = start_server(served_settings, "--max-queue", "0")
    try:
        yield running
    finally:
        running.stop()


def _abandoned(server: RunningServer, path: str, **request: object) -> threading.Thread:
    """Send a long request and hang up after 6 s without an answer, as a client that gave up."""
    def send() -> None:
        try:
            httpx.post(server.url + path, timeout=6.0, **request)  # type: ignore[arg-type]
        except httpx.TimeoutException:
            pass

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def _busy(server: RunningServer, kind: str, path: str, body: dict[str, str]) -> httpx.Response:
    """The answer to ``body`` once the long request holds its queue (/metrics says so: a busy
    machine may take seconds to read the long request's body)."""
    deadline = time.monotonic() + 90.0  # 30 s fell short once beside other servers on 2 cores
    while server.metric("pgpt:jobs_running", f'kind="{kind}"') < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    with server.http() as http:
        return http.post(path, json=body)


def _wait_for_log(server: RunningServer, text: str, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if text in server.log_text():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in the log after {seconds} s:\n{server.log_text()[-2000:]}")


def test_an_abandoned_embedding_request_stops_and_a_full_queue_answers_503(busy_server: RunningServer) -> None:
    """2,048 long inputs ran two minutes after their client left, on the threads answers need, and
    embeddings had no queue bound (t52)."""
    texts = [("the quick brown fox %d " % i) * 40 for i in range(2048)]
    client = _abandoned(busy_server, "/v1/embeddings", json={"input": texts, "truncate": True})
    second = _busy(busy_server, "embeddings", "/v1/embeddings", {"input": "ferry"})
    assert second.status_code == 503 and "max_queue=0" in second.json()["error"]["message"]
    assert second.headers["retry-after"]
    client.join()
    _wait_for_log(busy_server, "POST /v1/embeddings 499", 60)  # the whole request takes minutes here
    with busy_server.http() as http:
        assert http.post("/v1/embeddings", json={"input": "ferry"}).status_code == 200


def test_an_abandoned_upload_is_not_indexed_and_a_full_queue_answers_503(busy_server: RunningServer) -> None:
    """An upload whose client left was indexed minutes later, and a second one hung behind it (t53)."""
    big = "".join(f"Paragraph {i}: the ferry leaves the harbour at {i % 24} o'clock every day.\n\n"
                  for i in range(30000)).encode()
    client = _abandoned(busy_server, "/v1/ingest/file", files={"file": ("big.txt", big, "text/plain")})
    second = _busy(busy_server, "uploads", "/v1/ingest/text", {"file_name": "small.txt", "text": "A small note."})
    assert second.status_code == 503 and "uploads being indexed" in second.json()["error"]["message"]
    client.join()
    _wait_for_log(busy_server, "POST /v1/ingest/file 499", 60)
    assert not any(d["doc_metadata"]["file_name"] == "big.txt" for d in busy_server.documents())
    with busy_server.http() as http:
        assert http.post("/v1/ingest/text", json={"file_name": "small.txt", "text": "A small note."}).status_code == 200
    assert busy_server.metric("pgpt:jobs_running", 'kind="uploads"') == 0
    assert busy_server.metric("pgpt:jobs_waiting", 'kind="uploads"') == 0
