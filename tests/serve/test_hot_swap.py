"""Versions switched and rolled back under load through a real pgpt-serve, with `pgpt-tui models`
telling it: no failed request, each answer names the version that served it; a version that
cannot be loaded leaves the old one serving, and the command exits 1."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import pytest
from serve_support import RunningServer, start_server
from support import cli_env
from tiny_models import TINY_MODEL

from pgpt.runtime.manifest import read_manifest, write_manifest
from pgpt.runtime.settings import Settings
from pgpt.runtime.versions import publish_version, use_version, versions_folder

pytestmark = pytest.mark.slow
QUESTION = [{"role": "user", "content": "Tell me about the sea."}]


def _models_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "models", *args], capture_output=True,
                            text=True, env=cli_env(settings), timeout=300)
    assert "Traceback" not in result.stderr
    return result


def _stream(client, model: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(version that served it, answer) of one streamed chat."""
    stream = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=12, temperature=0.0,
                                            stream=True, extra_body={"ignore_eos": True})
    version, text = "", ""
    for chunk in stream:
        version = chunk.system_fingerprint or version
        text += chunk.choices[0].delta.content or "" if chunk.choices else ""
    return version, text


@pytest.fixture()
def tiny_server(tiny_settings: Settings) -> RunningServer:
    server = start_server(tiny_settings, "--parallel", "4", "--keep-alive", "-1")
    yield server  # type: ignore[misc]
    server.stop()


def test_switch_three_times_and_roll_back_under_load(tiny_server: RunningServer, tiny_versions) -> None:  # type: ignore[no-untyped-def]
    settings = tiny_server.settings
    old, new = tiny_versions[1]
    client = tiny_server.openai(timeout=300)
    expected = dict(_stream(client, f"{TINY_MODEL}@{v}") for v in (old, new))
    assert expected.keys() == {old, new} and expected[old] != expected[new]
    stop = threading.Event()
    results: list[tuple[str, str]] = []
    failures: list[BaseException] = []

    def streaming_client() -> None:
        own = tiny_server.openai(timeout=300)
        while not stop.is_set():
            try:
                results.append(_stream(own, "default"))
            except BaseException as exc:  # every failure is a test failure
                failures.append(exc)

    def answered(more: int) -> None:
        mark = len(results)
        deadline = time.monotonic() + 120
        while len(results) < mark + more and not failures and time.monotonic() < deadline:
            time.sleep(0.05)

    clients = [threading.Thread(target=streaming_client) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        for target in (old, new, old):
            answered(4)
            switched = _models_cli(settings, "--use", f"{TINY_MODEL}@{target}", "--wait", "120")
            assert switched.returncode == 0, switched.stdout + switched.stderr
            assert f"now serving {TINY_MODEL}@{target}" in switched.stdout
        answered(4)
        rolled = _models_cli(settings, "--rollback", TINY_MODEL, "--wait", "120")
        assert rolled.returncode == 0 and f"now serving {TINY_MODEL}@{new}" in rolled.stdout
        answered(4)
    finally:
        stop.set()
        for thread in clients:
            thread.join(120)
    assert failures == []
    assert len(results) >= 16 and {version for version, _ in results} == {old, new}
    assert all(text == expected[version] for version, text in results)  # each names its real version
    assert tiny_server.metric("pgpt:model_switches_total", f'model="{TINY_MODEL}"') == 4
    assert tiny_server.metric("pgpt:model_load_failures_total", f'model="{TINY_MODEL}"') == 0


def test_a_version_that_cannot_load_leaves_the_old_one_serving(tiny_server: RunningServer, tiny_versions) -> None:  # type: ignore[no-untyped-def]
    settings = tiny_server.settings
    new = tiny_versions[1][1]
    client = tiny_server.openai(timeout=300)
    before = _stream(client, "default")
    assert before[0] == new
    work = settings.model_cache / ".work-broken"  # a version whose graph ONNX Runtime refuses
    shutil.copytree(versions_folder(settings.model_cache, TINY_MODEL) / new, work)
    (work / ".verified.json").unlink(missing_ok=True)
    (work / "model.onnx").write_bytes(b"this is not an ONNX graph")
    write_manifest(work, {k: v for k, v in read_manifest(work).items() if k != "files"})
    broken = publish_version(settings.model_cache, TINY_MODEL, work, keep=10).version
    use_version(settings, TINY_MODEL, new)  # publishing activated it; --use below switches again
    refused = _models_cli(settings, "--use", f"{TINY_MODEL}@{broken}", "--wait", "120")
    assert refused.returncode == 1
    assert f"could not load {TINY_MODEL}@{broken} and keeps serving the previous version" in refused.stdout
    assert "not a valid ONNX model" in refused.stdout
    assert _stream(client, "default") == before
    assert tiny_server.metric("pgpt:model_load_failures_total", f'model="{TINY_MODEL}"') >= 1
    assert "not a valid ONNX model" in tiny_server.log_text()
    # said where an operator looks: the server's stderr (journalctl) and /v1/models
    assert f"pgpt-serve: error: switch of {TINY_MODEL} to {broken} failed" in tiny_server.output.read_text()
    with tiny_server.http() as http:
        [entry] = [m for m in http.get("/v1/models").json()["data"] if m["id"] == TINY_MODEL]
    assert entry["version"] == broken and entry["switch_failed"]["version"] == broken
    assert "not a valid ONNX model" in entry["switch_failed"]["reason"]
    assert [v["version"] for v in entry["loaded_versions"] if v["serving"]] == [new]
    # a request that names the damaged version: not 503 "busy, retry" (the openai client retried each one,
    # hashing the files again), the cause once, and what to do with that version (t49)
    with tiny_server.http() as http:
        named = http.post("/v1/chat/completions", json={"model": f"{TINY_MODEL}@{broken}", "max_tokens": 4,
                                                        "messages": [{"role": "user", "content": "hi"}]})
    error = named.json()["error"]
    assert named.status_code == 500 and error["code"] == "model_damaged", named.text
    assert error["message"].count("could not be loaded") <= 1 and "not a valid ONNX model" in error["message"]
    assert f"pgpt-tui models --delete {TINY_MODEL}@{broken}" in error["message"]
    # a kept version a request loaded: its files were deleted under the server, which served it on
    # and answered 404 for it
    old = tiny_versions[1][0]
    assert _stream(client, f"{TINY_MODEL}@{old}")[0] == old
    kept = _models_cli(settings, "--delete", f"{TINY_MODEL}@{old}")
    assert kept.returncode == 2 and "is loaded by a running pgpt-serve" in kept.stderr, kept.stderr
    assert (versions_folder(settings.model_cache, TINY_MODEL) / old).is_dir()
    # the whole model too (every version went, the server's included, with exit 0: tester t43)
    every = _models_cli(settings, "--delete", TINY_MODEL)
    assert every.returncode == 2 and f"{TINY_MODEL} is loaded by a running pgpt-serve" in every.stderr, every.stderr
    assert (versions_folder(settings.model_cache, TINY_MODEL) / old).is_dir()
    # nor by a user of another PGPT_HOME over the same model cache (t70: exit 0, and the server's next answer a 404)
    import dataclasses

    other = _models_cli(dataclasses.replace(settings, home=settings.home.parent / "another-users-home"),
                        "--delete", TINY_MODEL)
    assert other.returncode == 2 and f"PGPT_HOME={settings.home.resolve()}" in other.stderr, other.stderr
    assert (versions_folder(settings.model_cache, TINY_MODEL) / old).is_dir()
