"""Clients that send their request too slowly are dropped (slowloris, t52): uvicorn kept a
connection that sent nothing, or its headers a byte at a time, or half a body, open for ever."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import pytest

from pgpt.runtime.settings import Settings
from serve_support import RunningServer, start_server

TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def strict_server(served_settings: Settings) -> Iterator[RunningServer]:
    """A server that gives a request 2 s for its headers and a body 2 s between reads."""
    running = start_server(served_settings, "--client-timeout", f"{TIMEOUT_S:g}s")
    try:
        yield running
    finally:
        running.stop()


def _connect(server: RunningServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S * 10)


def _read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started, data = time.monotonic(), b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - started


def _response(sock: socket.socket) -> bytes:
    """One whole response on a kept connection: its head, then as many bytes as its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_connection_that_sends_nothing_is_closed(strict_server: RunningServer) -> None:
    with _connect(strict_server) as sock:
        data, waited = _read_until_closed(sock)
    assert data == b"" and waited < TIMEOUT_S + 3


def test_headers_sent_a_byte_at_a_time_get_a_408_in_time(strict_server: RunningServer) -> None:
    """Each byte comes well within the limit, but all of them would take 20 s: the deadline is the
    whole header's, not a pause's."""
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40
    started = time.monotonic()
    with _connect(strict_server) as sock:
        for byte in request:  # stop once the server speaks: writing to a closed socket resets it
            sock.sendall(bytes([byte]))
            if select.select([sock], [], [], 0.5)[0]:
                break
        data, _ = _read_until_closed(sock)
    assert time.monotonic() - started < TIMEOUT_S + 3
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout" and "--client-timeout" in error["message"]
    assert "request headers took over 2 s" in strict_server.log_text()


def test_an_upload_that_stalls_mid_body_is_dropped_and_not_indexed(strict_server: RunningServer) -> None:
    body = json.dumps({"file_name": "stalled.txt", "text": "The stalled ferry leaves at noon. " * 50}).encode()
    head = (f"POST /v1/ingest/text HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with _connect(strict_server) as sock:
        sock.sendall(head + body[:200])
        data, waited = _read_until_closed(sock)
    assert waited < TIMEOUT_S + 3 and not data.startswith(b"HTTP/1.1 200")
    assert "request body paused for over 2 s" in strict_server.log_text()
    # counted as a client that left (nginx's 499), as an abandoned upload is, not as a bad request (400);
    # the access line is written as the route ends, a moment after the connection closed
    deadline = time.monotonic() + 10
    while "POST /v1/ingest/text 499" not in strict_server.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "POST /v1/ingest/text 499" in strict_server.log_text()
    assert not any(d["doc_metadata"]["file_name"] == "stalled.txt" for d in strict_server.documents())
    with strict_server.http() as client:  # the server goes on serving
        assert client.get("/v1/models").status_code == 200


def test_a_slow_but_steady_body_and_a_long_kept_connection_are_served(strict_server: RunningServer) -> None:
    """The body's limit is a pause, not its whole time; each request on a kept connection gets its
    own deadline; the answer itself has none."""
    body = json.dumps({"file_name": "steady.txt", "text": "The steady ferry leaves at dawn."}).encode()
    head = (f"POST /v1/ingest/text HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with _connect(strict_server) as sock:
        sock.sendall(head)
        for start in range(0, len(body), len(body) // 4 + 1):  # 4 pieces over 3 s: longer than the limit
            time.sleep(1.0)
            sock.sendall(body[start:start + len(body) // 4 + 1])
        first = _response(sock)
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        time.sleep(TIMEOUT_S * 0.75)  # within uvicorn's 5 s keep-alive, past most of our deadline
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _response(sock).startswith(b"HTTP/1.1 200")
    assert any(d["doc_metadata"]["file_name"] == "steady.txt" for d in strict_server.documents())
