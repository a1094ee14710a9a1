"""The app in this process (httpx's ASGI transport): a model failing mid-stream, and the settings."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import httpx
import openai
import pytest

from pgpt.runtime.environment import read_environment
from pgpt.runtime.errors import ConfigError
from pgpt.runtime.settings import Settings
from pgpt.serve.config import ServeSettings, add_arguments, serve_settings


async def test_a_model_failing_mid_stream_reports_inside_the_stream(settings: Settings) -> None:
    """A crash of ONNX Runtime after the first tokens cannot be caused for real on demand: the
    served model's decode session is made to fail from its 3rd step on."""
    from pgpt.serve.app import create_app
    from pgpt.serve.metrics import ServerMetrics
    from pgpt.serve.service import Service

    serve = ServeSettings()
    service = Service(settings, serve, ServerMetrics())
    await service.start()  # what the app's lifespan does (the ASGI transport runs none)
    lease = await service.lease("default")
    run, calls = lease.model.session.run_with_iobinding, []

    def failing(*args: object) -> None:
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : simulated device failure")
        run(*args)

    lease.model.session.run_with_iobinding = failing
    lease.release()
    transport = httpx.ASGITransport(app=create_app(settings, serve, service))
    client = openai.AsyncOpenAI(base_url="http://localhost/v1", api_key="x", max_retries=0,
                                http_client=httpx.AsyncClient(transport=transport, base_url="http://localhost"))
    try:
        stream = await client.chat.completions.create(model="default", max_tokens=20, stream=True,
                                                      messages=[{"role": "user", "content": "Hi there"}])
        pieces = []
        with pytest.raises(openai.APIError, match="simulated device failure"):
            async for chunk in stream:
                pieces.append(chunk.choices[0].delta.content if chunk.choices else None)
        assert len([p for p in pieces if p]) >= 1  # the error came after text had been sent
        assert service.metrics.http_requests.labels("/v1/chat/completions", "POST", "500")._value.get() == 1
    finally:
        await service.close()


async def test_a_documents_answer_refused_after_its_search_counts_as_rejected(settings: Settings,
                                                                                tmp_path: Path) -> None:
    """A documents answer queues after its search; the queue found full then was a 503 that
    pgpt:requests_rejected_total never counted (t74). The moment cannot be caused for real on
    demand: the served model's scheduler refuses every submit."""
    from pgpt.runtime.documents.ingest import ingest
    from pgpt.runtime.errors import ServerBusyError
    from pgpt.runtime.llm.embeddings import default_embedder
    from pgpt.serve.app import create_app
    from pgpt.serve.metrics import ServerMetrics
    from pgpt.serve.service import Service

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ferry.txt").write_text("The ferry to the island leaves at noon every Tuesday.\n")
    ingest(settings, [tmp_path / "docs"], default_embedder(settings))
    service = Service(settings, ServeSettings(), ServerMetrics())
    await service.start()
    lease = await service.lease("default")

    def full(*args: object, **kwargs: object) -> None:
        raise ServerBusyError("Every slot is taken (max_queue=0).", limit="max_queue")

    lease.chat.scheduler.submit = full
    lease.release()
    transport = httpx.ASGITransport(app=create_app(settings, ServeSettings(), service))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            refused = await client.post("/v1/chat/completions", json={
                "messages": [{"role": "user", "content": "When does the ferry leave?"}], "use_context": True})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "server_busy"
        assert service.metrics.rejected._value.get() == 1
    finally:
        await service.close()


@pytest.mark.parametrize("fixed", [False, True])
async def test_keep_alive_fixed_keeps_a_clients_keep_alive_from_unloading_the_model(settings: Settings,
                                                                                    fixed: bool) -> None:
    """One client's keep_alive 0 unloaded the shared model for every other client, who paid the reload (t74)."""
    from pgpt.serve.app import create_app
    from pgpt.serve.metrics import ServerMetrics
    from pgpt.serve.service import Service

    serve = ServeSettings(keep_alive_fixed=fixed)
    service = Service(settings, serve, ServerMetrics())
    await service.start()
    transport = httpx.ASGITransport(app=create_app(settings, serve, service))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            answered = await client.post("/v1/chat/completions", json={
                "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "keep_alive": 0})
            assert answered.status_code == 200
            assert bool(service.pool.loaded()) is fixed  # fixed: the server's 30 minutes hold
            typo = await client.post("/v1/chat/completions", json={
                "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "keep_alive": "soon"})
            assert typo.status_code == 400  # named even where ignored
    finally:
        await service.close()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_options_come_from_the_command_line_then_the_environment_then_dotenv(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("PGPT_PORT=9000\nPGPT_PARALLEL=3\nPGPT_KEEP_ALIVE=5m\nOTHER=1\n")
    monkeypatch.setenv("PGPT_PARALLEL", "6")
    monkeypatch.delenv("OTHER", raising=False)
    env = read_environment(tmp_path).values
    assert "OTHER" not in env  # only PGPT_ settings are taken from .env
    chosen = serve_settings(parse("--max-queue", "5"), env)
    assert (chosen.port, chosen.parallel, chosen.max_queue, chosen.keep_alive_s) == (9000, 6, 5, 300.0)
    assert serve_settings(parse("--parallel", "2"), env).parallel == 2
    assert serve_settings(parse("--keep-alive", "-1"), env).keep_alive_s == -1.0
    with pytest.raises(ConfigError, match="PGPT_MAX_QUEUE"):
        serve_settings(parse(), {"PGPT_MAX_QUEUE": "lots"})
    with pytest.raises(ConfigError, match="keep-alive"):
        serve_settings(parse("--keep-alive", "soon"), {})
    assert serve_settings(parse(), {}).client_timeout_s == 60.0
    assert not serve_settings(parse(), {}).keep_alive_fixed
    assert serve_settings(parse("--keep-alive-fixed"), {}).keep_alive_fixed
    assert serve_settings(parse(), {"PGPT_KEEP_ALIVE_FIXED": "1"}).keep_alive_fixed
    with pytest.raises(ConfigError, match="PGPT_KEEP_ALIVE_FIXED='maybe' is neither yes nor no"):
        serve_settings(parse(), {"PGPT_KEEP_ALIVE_FIXED": "maybe"})
    assert serve_settings(parse("--client-timeout", "2m"), {"PGPT_CLIENT_TIMEOUT": "5s"}).client_timeout_s == 120.0
    assert serve_settings(parse(), {"PGPT_CLIENT_TIMEOUT": "-1"}).client_timeout_s == -1.0
    for too_short in ("0", "500ms"):
        with pytest.raises(ConfigError, match="client-timeout.* s: under 1 s, clients would be dropped"):
            serve_settings(parse("--client-timeout", too_short), {})


def test_the_host_rules(tmp_path: Path) -> None:
    from pgpt.serve.guard import host_name

    assert ServeSettings().loopback and ServeSettings(host="::1").loopback and not ServeSettings(host="0.0.0.0").loopback
    assert ServeSettings(host="10.0.0.5", api_key="k").host_names() >= {"localhost", "127.0.0.1", "::1", "10.0.0.5"}
    assert ServeSettings(allowed_hosts=("*",)).host_names() == frozenset()
    assert [host_name(h) for h in ("Example.org:80", "[::1]:8642", "::1", "localhost")] == [
        "example.org", "::1", "::1", "localhost"]
    with pytest.raises(ConfigError, match="refuses to listen on 10.0.0.5"):
        ServeSettings(host="10.0.0.5").check()
    with pytest.raises(ConfigError, match="any web page"):
        ServeSettings(cors_origins=("*",)).check()
    with pytest.raises(ConfigError, match=re.escape("--allowed-hosts '*' is refused without an API key")):
        ServeSettings(allowed_hosts=("*",)).check()  # the DNS-rebinding guard off, on a keyless server (t52)
    ServeSettings(allowed_hosts=("*",), api_key="3f9a1c0b7e2d4a5f").check()
    # a key anyone could guess, or a command pasted where no shell runs it, opens a public address
    for key, why in (("abc", "3 characters, fewer than 16"), ("$(openssl rand -hex 32)", "shell command"),
                     ("a key with spaces in it", "spaces")):
        with pytest.raises(ConfigError, match=re.escape(why)) as refused:
            ServeSettings(host="0.0.0.0", api_key=key).check()
        assert key not in str(refused.value) and "openssl rand -hex 32" in refused.value.hint
        ServeSettings(api_key=key).check()  # on the loopback address it is the user's own business
    ServeSettings(host="0.0.0.0", api_key="3f9a1c0b7e2d4a5f").check()
    for origin in ("javascript:alert(1)", "http://x.org/path", "localhost:3000"):  # started, matching nothing
        with pytest.raises(ConfigError, match="is not an origin"):
            ServeSettings(cors_origins=(origin,)).check()
    ServeSettings(cors_origins=("http://localhost:3000", "https://chat.example.org", "http://[::1]:8080")).check()
    key = tmp_path / "key"
    key.write_text("")
    key.chmod(0o600)
    with pytest.raises(ConfigError, match="empty"):
        serve_settings(parse("--api-key-file", str(key)), {})


async def test_an_unexpected_error_is_a_json_500_and_the_connection_stays(settings: Settings) -> None:
    """Starlette answered an unexpected error, then re-raised it, and uvicorn reset the keep-alive
    connection (seen with a negative seed). The error here is made on purpose: a bug has no input."""
    from pgpt.serve.app import create_app
    from pgpt.serve.metrics import ServerMetrics

    class Broken:
        metrics = ServerMetrics()

        def models(self) -> list[dict[str, str]]:
            raise RuntimeError("simulated bug")

    # raise_app_exceptions: an error the app re-raises fails the request here, as a reset did there
    transport = httpx.ASGITransport(app=create_app(settings, ServeSettings(), Broken()), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        failed = await client.get("/v1/models")
        alive = await client.get("/health")
    assert failed.status_code == 500 and "simulated bug" in failed.json()["error"]["message"]
    assert failed.json()["error"]["type"] == "server_error" and alive.status_code == 200
    assert Broken.metrics.http_requests.labels("/v1/models", "GET", "500")._value.get() == 1


def test_a_misspelled_setting_in_dotenv_is_warned_about_at_start(default_models: Settings, tmp_path: Path) -> None:
    """`PGPT_PARALEL=2` in pgpt-serve's .env ran 4 sequences at once, without a word; a bad value
    there now says that it came from the .env file."""
    import dataclasses
    import subprocess

    from serve_support import serve_command, start_server
    from support import cli_env

    settings = dataclasses.replace(default_models, home=tmp_path / "home")
    settings.home.mkdir()
    (settings.home / ".env").write_text("PGPT_PARALEL=2\n")
    running = start_server(settings, ready=False, env={"PGPT_MAX_QUEU": "do-not-show"})
    running.stop()
    warning = (f"PGPT_PARALEL in {settings.home / '.env'} is not a pgpt setting (did you mean PGPT_PARALLEL?); "
               "it is ignored")
    said = running.output.read_text()
    assert f"warning: {warning}" in said and "warning: PGPT_MAX_QUEU is not a pgpt setting (did you mean " \
                                            "PGPT_MAX_QUEUE?); it is ignored" in said, said
    assert warning in settings.log_file.read_text() and "do-not-show" not in running.log_text()
    assert said.count("PGPT_PARALEL") == 1, said  # once on stderr (the log's copy was printed again, t49)
    (tmp_path / ".env").write_text("PGPT_PORT=eighty\n")
    refused = subprocess.run(serve_command(), env=cli_env(settings), cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2
    assert f"PGPT_PORT='eighty' is not a whole number. (PGPT_PORT is set in {tmp_path / '.env'}.)" in refused.stderr
