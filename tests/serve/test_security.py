"""Safe by default: loopback bind, the key on every route, the Host allow-list, CORS, the body cap,
and no key or prompt in the logs."""

from __future__ import annotations

import base64
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from pgpt.runtime.settings import Settings
from serve_support import RunningServer, free_port, serve_command, start_server
from support import cli_env

KEY = "pgpt-test-key-0123456789abcdef"


def every_route() -> list[tuple[str, str]]:
    """(method, path) of every route the app has, path parameters filled in."""
    from pgpt.serve.app import create_app
    from pgpt.serve.config import ServeSettings

    nowhere = Path("/nonexistent")
    app = create_app(Settings(home=nowhere, model_cache=nowhere), ServeSettings())  # its lifespan never runs
    routes, pending = [], list(app.routes)
    while pending:
        route = pending.pop(0)
        if hasattr(route, "original_router"):  # FastAPI's included router: walk its routes too
            pending += route.original_router.routes
            continue
        methods = (getattr(route, "methods", None) or {"GET"}) - {"HEAD"}
        routes += [(method, re.sub(r"\{[^}]+\}", "x", route.path)) for method in sorted(methods)]
    return routes


def test_the_route_list_covers_the_api() -> None:
    paths = {path for _, path in every_route()}
    assert {"/health", "/ready", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/embeddings", "/v1/chunks",
            "/v1/ingest/file", "/v1/ingest/text", "/v1/ingest/list", "/v1/ingest/x", "/openapi.json"} <= paths
    # FastAPI's pages load their scripts from CDNs: a private server runs none of that (t60)
    assert not paths & {"/docs", "/redoc"}


def test_every_route_but_health_needs_the_key(keyed_server: RunningServer) -> None:
    for method, path in every_route():
        wrong = base64.b64encode(f"pgpt:{KEY}x".encode()).decode()
        for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {KEY}x"},
                        {"Authorization": f"Basic {wrong}"}, {"Authorization": f"Token {KEY}"}):
            response = httpx.request(method, keyed_server.url + path, headers=headers, timeout=60)
            if path == "/health":
                assert response.status_code == 200
            else:
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.json()["error"]["code"] == "invalid_api_key"
                assert response.headers["www-authenticate"] == "Bearer"
    # counted and logged under the route they were meant for: all were "unmatched", so an operator
    # could not tell which routes are probed (a path no route has stays "unmatched": no label per path)
    assert httpx.get(keyed_server.url + "/no/such/route", timeout=60).status_code == 401
    probed = 'method="DELETE",route="/v1/ingest/{doc_id}",status="401"'
    assert keyed_server.metric("pgpt:http_requests_total", probed) >= 3
    assert keyed_server.metric("pgpt:http_requests_total", 'method="GET",route="unmatched",status="401"') >= 1
    assert "DELETE /v1/ingest/{doc_id} 401 " in keyed_server.log_text()
    with keyed_server.http() as client:
        assert client.get("/v1/models").status_code == 200
        assert client.get("/metrics").status_code == 200
    # PrivateGPT's scripts send their secret as the whole header, "Basic ..."; curl -u sends Basic user:password (t73)
    assert httpx.get(keyed_server.url + "/v1/models", headers={"Authorization": f"Basic {KEY}"}).status_code == 200
    assert httpx.get(keyed_server.url + "/v1/models", auth=("anyone", KEY)).status_code == 200
    answer = keyed_server.openai().chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert answer.choices[0].message.content is not None


def test_a_key_file_holding_privategpts_whole_header_is_matched_by_it() -> None:
    """PrivateGPT's secret is the whole header, "Basic c2Vj...": a key file holding it word for word was
    taken at start, and then every PrivateGPT client got 401 (t75)."""
    from pgpt.serve.guard import ApiKeyGuard

    guard = ApiKeyGuard(None, "Basic c2VjcmV0OmtleQ==")
    assert guard._holds_key("Basic c2VjcmV0OmtleQ==") and not guard._holds_key("Basic c2VjcmV0OmtleQ")
    plain = ApiKeyGuard(None, KEY)
    assert plain._holds_key(f"Bearer {KEY}") and plain._holds_key(f"Basic {KEY}")
    assert not plain._holds_key(f"Token {KEY}") and not plain._holds_key(f"Bearer {KEY}x")


def test_the_key_and_the_prompts_never_reach_the_log(keyed_server: RunningServer) -> None:
    secret_prompt = "my-secret-prompt-4711"
    keyed_server.openai().chat.completions.create(
        model="default", messages=[{"role": "user", "content": secret_prompt}], max_tokens=3)
    log = keyed_server.log_text()
    assert "POST /v1/chat/completions 200 model=smollm2-135m-instruct-int8@" in log
    assert "prompt_tokens=" in log and "ttft_s=" in log
    assert KEY not in log and secret_prompt not in log


def test_a_foreign_host_name_gets_403(server: RunningServer) -> None:
    for host in ("evil.example", "evil.example:8642", "127.0.0.1.evil.example"):
        response = httpx.get(server.url + "/v1/models", headers={"Host": host}, timeout=30)
        assert response.status_code == 403 and "--allowed-hosts" in response.json()["error"]["message"]
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}", "LOCALHOST"):
        assert httpx.get(server.url + "/v1/models", headers={"Host": host}, timeout=30).status_code == 200


def test_bound_to_every_address_it_answers_to_this_machines_names(served_settings: Settings, tmp_path: Path) -> None:
    """--host 0.0.0.0 with a key refused every client that used the machine's address (403), and
    health checks by IP failed; now its own names and addresses pass, other names still get 403."""
    from pgpt.serve.host_names import machine_names

    key_file = tmp_path / "api-key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    running = start_server(served_settings, "--host", "0.0.0.0", "--api-key-file", str(key_file), key=KEY,
                           ready=False)
    try:
        own = sorted(machine_names() - {"localhost", "127.0.0.1", "::1"})
        assert own, "the machine has a name besides localhost"
        auth = {"Authorization": f"Bearer {KEY}"}
        for name in own[:4]:
            host = f"[{name}]:{running.port}" if ":" in name else f"{name}:{running.port}"
            assert httpx.get(running.url + "/health", headers={"Host": host}, timeout=30).status_code == 200
            assert httpx.get(running.url + "/v1/ingest/list", headers={"Host": host}, timeout=30).status_code == 401
        foreign = httpx.get(running.url + "/health", headers={**auth, "Host": "evil.example"}, timeout=30)
        assert foreign.status_code == 403
        assert "answers to Host" in running.log_text() and "--allowed-hosts" in running.log_text()
        assert "plain HTTP: the key, the questions and the documents cross the network unencrypted" in running.log_text()
    finally:
        running.stop()


def test_cors_is_off_unless_origins_are_given(server: RunningServer) -> None:
    preflight = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    response = httpx.options(server.url + "/v1/chat/completions", headers=preflight, timeout=30)
    assert "access-control-allow-origin" not in response.headers
    plain = httpx.get(server.url + "/v1/models", headers={"Origin": "http://evil.example"}, timeout=30)
    assert "access-control-allow-origin" not in plain.headers


def test_head_is_answered_as_get_without_a_body(server: RunningServer) -> None:
    """Uptime monitors and `curl -I` use HEAD: /health answered 405, so a healthy server looked down."""
    for path in ("/health", "/ready", "/metrics"):
        head, get = httpx.head(server.url + path, timeout=30), httpx.get(server.url + path, timeout=30)
        assert head.status_code == get.status_code == 200 and head.content == b"", (path, head.status_code)
        assert head.headers["content-type"] == get.headers["content-type"]
    assert httpx.head(server.url + "/v1/chat/completions", timeout=30).status_code == 405  # no GET there either
    # an unknown route or method names what there is ("Not Found" and "Method Not Allowed" alone, t46)
    with server.http() as client:
        unknown, wrong = client.post("/v1/responses", json={}), client.get("/v1/chat/completions")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert "no route POST /v1/responses" in unknown.json()["error"]["message"]
    assert wrong.status_code == 405 and "does not take GET; allowed: POST" in wrong.json()["error"]["message"]


def test_non_loopback_bind_without_a_key_is_refused(served_settings: Settings) -> None:
    port = free_port()
    result = subprocess.run(serve_command("--host", "0.0.0.0", "--port", str(port)), capture_output=True, text=True,
                            env=cli_env(served_settings), timeout=120, cwd=served_settings.home)
    assert result.returncode == 2
    assert "refuses to listen on 0.0.0.0 without an API key" in result.stderr and "--api-key-file" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_key_file_others_can_read_is_refused(served_settings: Settings, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    key_file.chmod(0o644)
    result = subprocess.run(serve_command("--api-key-file", str(key_file), "--port", str(free_port())),
                            capture_output=True, text=True, env=cli_env(served_settings), timeout=120)
    assert result.returncode == 2 and "chmod 600" in result.stderr and KEY not in result.stderr


def test_a_taken_port_is_a_clear_error(server: RunningServer) -> None:
    result = subprocess.run(serve_command("--port", str(server.port)), capture_output=True, text=True,
                            env=cli_env(server.settings), timeout=120)
    assert result.returncode == 2 and f"Cannot listen on 127.0.0.1:{server.port}" in result.stderr
    assert "--port" in result.stderr and "uses that port" in result.stderr
    # an address that is not this machine's is no port in use (t49); 192.0.2.1 is reserved for documentation
    key = server.settings.home / "bind-key"
    key.write_text(KEY)
    key.chmod(0o600)
    foreign = subprocess.run(serve_command("--host", "192.0.2.1", "--port", str(server.port), "--api-key-file",
                                           str(key)), capture_output=True, text=True, env=cli_env(server.settings),
                             timeout=120)
    assert foreign.returncode == 2 and "Cannot listen on 192.0.2.1" in foreign.stderr, foreign.stderr
    assert "192.0.2.1 is not an address of this machine" in foreign.stderr and "uses that port" not in foreign.stderr


def test_bodies_over_the_cap_get_413(keyed_server: RunningServer) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    big = b"x" * 1_200_000
    declared = httpx.post(keyed_server.url + "/v1/ingest/text", content=big, timeout=300,
                          headers={**auth, "Content-Type": "application/json"})
    assert declared.status_code == 413 and "--max-body-mb" in declared.json()["error"]["message"]

    def chunked():  # no Content-Length: the cap must hold while the upload streams in
        yield (b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
               b"Content-Type: text/plain\r\n\r\n")
        for _ in range(12):
            yield b"y" * 100_000
        yield b"\r\n--zzz--\r\n"

    streamed = httpx.post(keyed_server.url + "/v1/ingest/file", content=chunked(), timeout=300,
                          headers={**auth, "Content-Type": "multipart/form-data; boundary=zzz"})
    assert streamed.status_code == 413 and "--max-body-mb" in streamed.json()["error"]["message"]

    def chunked_json():  # a tester's chunked JSON body got the 413 without its JSON error
        yield b'{"model": "default", "messages": [{"role": "user", "content": "'
        for _ in range(12):
            yield b"z" * 100_000
        yield b'"}]}'

    streamed = httpx.post(keyed_server.url + "/v1/chat/completions", content=chunked_json(), timeout=300,
                          headers={**auth, "Content-Type": "application/json"})
    assert streamed.status_code == 413 and "--max-body-mb" in streamed.json()["error"]["message"], streamed.text
    small = httpx.post(keyed_server.url + "/v1/ingest/text", json={"file_name": "small.txt", "text": "fits"},
                       timeout=120, headers=auth)
    assert small.status_code == 200


def test_a_client_still_sending_past_the_cap_reads_the_413s_json(server: RunningServer) -> None:
    """curl sends a chunked body without waiting for an answer: the server answered at the cap and
    closed while bytes were still coming, the kernel reset the connection, and curl showed the 413
    with no body. The server now reads the rest (up to the cap again) before it answers."""
    import socket

    # the tester's 34 MB against the default cap of 32 MB
    body_chunks = [b'{"model": "default", "messages": [{"role": "user", "content": "'] + [b"z" * 2 ** 20] * 34
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n").encode()
    received = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as connection:
        try:  # like curl: Expect: 100-continue, then the whole body, the answer read after it
            connection.sendall(head)
            for chunk in body_chunks:
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.sendall(b"0\r\n\r\n")
            while part := connection.recv(65536):
                received += part
        except OSError:  # a reset: what was received before it is all there is
            pass
    received = received.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl's Expect: 100-continue
    assert received.startswith(b"HTTP/1.1 413"), received[:200]
    assert b'"body_too_large"' in received or b"--max-body-mb" in received, received[:600]


def test_configured_cors_and_hosts_are_honoured(keyed_server: RunningServer) -> None:
    allowed = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    response = httpx.options(keyed_server.url + "/v1/chat/completions", headers=allowed, timeout=30)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    # the openai JS client's own headers pass the preflight (400 "Disallowed CORS headers", t46)
    stainless = {**allowed, "Access-Control-Request-Headers": "authorization,content-type,x-stainless-os,"
                 "x-stainless-lang,x-stainless-retry-count,x-stainless-helper-method"}
    response = httpx.options(keyed_server.url + "/v1/chat/completions", headers=stainless, timeout=30)
    assert response.status_code == 200 and "x-stainless-os" in response.headers["access-control-allow-headers"]
    other = httpx.options(keyed_server.url + "/v1/chat/completions", timeout=30,
                          headers={**allowed, "Origin": "http://evil.example"})
    assert other.headers.get("access-control-allow-origin") != "http://evil.example"
    assert httpx.get(keyed_server.url + "/health", headers={"Host": "gpu-box.example"}, timeout=30).status_code == 200


@pytest.mark.parametrize("args, env, cause", [
    (["--port", "70000"], {}, "argument --port: 70000 is refused: a TCP port is 1 to 65535"),
    (["--port", "0"], {}, "argument --port: 0 is refused: a TCP port is 1 to 65535"),
    ([], {"PGPT_PORT": "70000"}, "PGPT_PORT=70000 is above the highest allowed value, 65535"),
    # a server that started and then refused every request, or failed to load its model (t49)
    (["--context", "10"], {}, "--context 10 is below the lowest allowed value, 256"),
    ([], {"PGPT_PARALLEL": "100000"}, "PGPT_PARALLEL=100000 is above the highest allowed value, 256"),
    (["--parallel", "300"], {}, "--parallel 300 is above the highest allowed value, 256"),  # as given (t63)
], ids=["above", "zero", "environment", "context", "parallel", "parallel-flag"])
def test_a_port_out_of_range_is_a_usage_error(served_settings: Settings, args: list[str], env: dict[str, str],
                                              cause: str) -> None:
    """--port 70000 said "Unexpected error: OverflowError ... This is a bug in pgpt" (exit 1)."""
    result = subprocess.run(serve_command(*args), capture_output=True, text=True,
                            env=cli_env(served_settings) | env, timeout=120, cwd=served_settings.home)
    assert result.returncode == 2 and cause in result.stderr
    assert "Traceback" not in result.stderr and "bug in pgpt" not in result.stderr


def test_a_context_above_the_models_own_is_said_at_the_start(served_settings: Settings) -> None:
    """--context 100000 started without a word and served 8192-token sequences (t63)."""
    server = start_server(served_settings, "--context", "100000")
    try:
        said = "--context 100000 (PGPT_CONTEXT) is above smollm2-135m-instruct-int8's own 8192 tokens: its sequences hold 8192"
        deadline = time.monotonic() + 30  # /ready may answer before the start-up load's last lines are written
        while said not in server.output.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert said in server.output.read_text() and said in served_settings.log_file.read_text()
    finally:
        server.stop()


@pytest.mark.parametrize("args, env, cause", [
    (["--model", "nosuch"], {}, "--model / PGPT_MODEL: There is no exported model called 'nosuch'"),
    ([], {"PGPT_MODEL": "nosuch@0123456789ab"}, "--model / PGPT_MODEL:"),
    (["--model", "all-minilm-l6-v2-int8"], {}, "all-minilm-l6-v2-int8 is an embedding model, not a chat model"),
], ids=["unknown", "unknown-version", "embedder"])
def test_a_model_that_is_no_chat_model_stops_the_start(served_settings: Settings, args: list[str],
                                                       env: dict[str, str], cause: str) -> None:
    """--model nosuch started normally; only /ready and each request showed the problem."""
    result = subprocess.run(serve_command("--port", str(free_port()), *args), capture_output=True, text=True,
                            env=cli_env(served_settings) | env, timeout=120, cwd=served_settings.home)
    assert result.returncode == 2 and cause in result.stderr, result.stderr
    assert "Pick a chat model with --model NAME or PGPT_MODEL" in result.stderr
    assert "listening on" not in result.stderr and "Traceback" not in result.stderr
