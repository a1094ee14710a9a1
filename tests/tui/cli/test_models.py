"""`pgpt-tui models --versions/--use/--rollback` on real exports, alone and with a running pool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import cli_env
from tiny_models import TINY_MODEL

from pgpt.runtime.llm.serving.pool import ModelPool, PoolConfig
from pgpt.runtime.manifest import read_manifest, write_manifest
from pgpt.runtime.models import find_model
from pgpt.runtime.settings import Settings
from pgpt.runtime.versions import publish_version, use_version, versions_folder


def tui_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", *args], capture_output=True, text=True,
                            env=cli_env(settings), timeout=300)
    assert "Traceback" not in result.stderr
    return result


def _copy_version(settings: Settings, source: str, note: str, graph: bytes | None = None) -> str:
    """A new version made from ``source`` (plus a note file), optionally with another graph; not active."""
    active = find_model(settings, TINY_MODEL).version
    work = settings.model_cache / f".work-{note}"
    shutil.copytree(versions_folder(settings.model_cache, TINY_MODEL) / source, work)
    (work / ".verified.json").unlink(missing_ok=True)
    (work / "notes.txt").write_text(note)
    if graph is not None:
        (work / "model.onnx").write_bytes(graph)
    write_manifest(work, {k: v for k, v in read_manifest(work).items() if k != "files"})
    version = publish_version(settings.model_cache, TINY_MODEL, work, keep=10).version
    use_version(settings, TINY_MODEL, active)
    return version


def test_versions_use_and_rollback(tiny_settings: Settings, tiny_versions) -> None:  # type: ignore[no-untyped-def]
    old, new = tiny_versions[1]
    listed = json.loads(tui_cli(tiny_settings, "models", "--versions", TINY_MODEL, "--json").stdout)
    assert [(v["version"], v["active"]) for v in listed["versions"]] == [(new, True), (old, False)]
    used = tui_cli(tiny_settings, "models", "--use", f"{TINY_MODEL}@{old[:5]}")
    assert used.returncode == 0 and used.stdout.splitlines()[0] == f"active chat model: {TINY_MODEL}@{old}"
    assert "no running pgpt-serve with PGPT_HOME=" in used.stdout  # nothing to wait for, said so
    assert "chat, ask and the app use it from their next start" in used.stdout
    assert "another PGPT_HOME over this model cache switches too" in used.stdout  # a version: the cache's
    named = tui_cli(tiny_settings, "models", "--use", TINY_MODEL)  # a name only: this home's choice
    assert named.returncode == 0 and "one with another PGPT_HOME keeps its own active model" in named.stdout
    table = tui_cli(tiny_settings, "models", "--versions", TINY_MODEL).stdout
    assert f"* {old}" in table and f"  {new}" in table
    assert "MB  tiny-seed-1" in table and "MB  tiny-seed-2" in table  # each version's source folder
    rolled = tui_cli(tiny_settings, "models", "--rollback", TINY_MODEL)
    assert rolled.returncode == 0 and rolled.stdout.startswith(f"{TINY_MODEL} is back at version {new}")
    further = tui_cli(tiny_settings, "models", "--rollback", TINY_MODEL)  # the history: old, new, old
    assert further.returncode == 0 and further.stdout.startswith(f"{TINY_MODEL} is back at version {old}")
    again = tui_cli(tiny_settings, "models", "--rollback", TINY_MODEL)
    assert again.returncode == 2 and "no earlier version to roll back to" in again.stderr
    unknown = tui_cli(tiny_settings, "models", "--use", f"{TINY_MODEL}@fff000")
    assert unknown.returncode == 2 and "Model version not found" in unknown.stderr and new in unknown.stderr
    # "NAME@" was taken as the active version; --versions NAME@VERSION said "no exported model called ..."
    empty = tui_cli(tiny_settings, "models", "--use", f"{TINY_MODEL}@")
    assert empty.returncode == 2 and "has no version after the '@'" in empty.stderr
    listed_one = tui_cli(tiny_settings, "models", "--versions", f"{TINY_MODEL}@{old}")
    assert listed_one.returncode == 2 and f"pgpt-tui models --versions {TINY_MODEL}`" in listed_one.stderr
    # a named cause is a line of the log, not a traceback each time a user mistypes
    log = (tiny_settings.home / "logs" / "pgpt.log").read_text()
    assert "command failed: Usage error (UsageError)" in log and "Traceback" not in log


def test_use_takes_a_name_of_the_model_cache_never_a_folders_base_name(tiny_settings: Settings, tiny_versions,  # type: ignore[no-untyped-def]
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`models --use out/NAME` saved NAME: the next start failed, or used the cache's other model of
    that name (t62). A folder outside the cache is refused; a plain name is the cache's even where a
    folder of that name is in the current folder."""
    outside = tmp_path / "out" / TINY_MODEL  # an export made with -o, under the cache's model's name
    shutil.copytree(find_model(tiny_settings, TINY_MODEL).path, outside)
    refused = tui_cli(tiny_settings, "models", "--use", str(outside))
    assert refused.returncode == 2 and "is a model folder outside the model cache" in refused.stderr
    assert f"--model {outside}" in refused.stderr
    assert json.loads((tiny_settings.home / "config.json").read_text())["active_model"] == TINY_MODEL
    assert find_model(tiny_settings, str(outside)).path == outside  # --model PATH still runs it for one command
    (tiny_settings.model_cache / "linked-fp32").symlink_to(outside)  # an entry of the cache that links elsewhere
    linked = tui_cli(tiny_settings, "models", "--use", "linked-fp32")
    assert linked.returncode == 0 and linked.stdout.startswith("active chat model: linked-fp32@"), linked.stderr
    monkeypatch.chdir(tmp_path / "out")  # a plain name: the cache's model, not ./NAME
    assert find_model(tiny_settings, TINY_MODEL).path.is_relative_to(tiny_settings.model_cache)


def test_a_damaged_version_is_refused_before_anything_switches(tiny_settings: Settings, tiny_versions) -> None:  # type: ignore[no-untyped-def]
    new = tiny_versions[1][1]
    bad = _copy_version(tiny_settings, new, "damaged")
    graph = versions_folder(tiny_settings.model_cache, TINY_MODEL) / bad / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[100] ^= 0xFF
    graph.write_bytes(bytes(data))
    refused = tui_cli(tiny_settings, "models", "--use", f"{TINY_MODEL}@{bad}")
    assert refused.returncode == 1 and "Model files damaged" in refused.stderr and "sha256" in refused.stderr
    assert find_model(tiny_settings, TINY_MODEL).version == new
    assert f"models --delete {TINY_MODEL}@{bad}" in " ".join(refused.stderr.split())  # the hint's command works
    deleted = tui_cli(tiny_settings, "models", "--delete", f"{TINY_MODEL}@{bad}")
    assert deleted.returncode == 0 and deleted.stdout.startswith(f"deleted version {bad} of {TINY_MODEL}")
    assert bad not in tui_cli(tiny_settings, "models", "--versions", TINY_MODEL).stdout
    active = tui_cli(tiny_settings, "models", "--delete", f"{TINY_MODEL}@{new}")
    assert active.returncode == 2 and "is the active version" in active.stderr


@pytest.mark.slow
def test_use_reports_what_a_running_pool_did(tiny_settings: Settings, tiny_versions) -> None:  # type: ignore[no-untyped-def]
    old, new = tiny_versions[1]
    pool = ModelPool(tiny_settings, PoolConfig(watch_interval_s=0.05), use_cache=False)
    try:
        pool.acquire(TINY_MODEL).release()  # a running server serving the tiny model
        pid = os.getpid()
        switched = tui_cli(tiny_settings, "models", "--use", f"{TINY_MODEL}@{old}", "--wait", "60")
        assert switched.returncode == 0, switched.stderr
        assert f"server (pid {pid}): now serving {TINY_MODEL}@{old}" in switched.stdout
        unloadable = _copy_version(tiny_settings, new, "no-graph", graph=b"this is not an ONNX graph")
        failed = tui_cli(tiny_settings, "models", "--use", f"{TINY_MODEL}@{unloadable}", "--wait", "60")
        assert failed.returncode == 1
        assert f"server (pid {pid}): could not load {TINY_MODEL}@{unloadable}" in failed.stdout
        assert "not a valid ONNX model" in failed.stdout
        with pool.acquire(TINY_MODEL) as lease:
            assert lease.version == old  # the server kept serving what it had
    finally:
        pool.close()


def test_use_says_when_a_server_keeps_its_default_pinned(tiny_settings: Settings,  # type: ignore[no-untyped-def]
                                                           tiny_versions) -> None:
    """`pgpt-serve --model X`: its `default` stays X whatever --use does; "now serving Y" read as a switch."""
    import dataclasses

    old, _ = tiny_versions[1]
    work = tiny_settings.model_cache / ".work-pinned"
    shutil.copytree(versions_folder(tiny_settings.model_cache, TINY_MODEL) / old, work)
    (work / ".verified.json").unlink(missing_ok=True)
    publish_version(tiny_settings.model_cache, "tiny-pinned-fp32", work, keep=1)
    pinned = dataclasses.replace(tiny_settings, model="tiny-pinned-fp32",
                                 sources={**tiny_settings.sources, "PGPT_MODEL": "--model"})
    pool = ModelPool(pinned, PoolConfig(watch_interval_s=0.05), use_cache=False)
    try:
        pool.acquire(TINY_MODEL).release()  # requested by name, as the tester's client did
        switched = tui_cli(tiny_settings, "models", "--use", f"{TINY_MODEL}@{old}", "--wait", "60")
        assert switched.returncode == 0, switched.stderr
        assert (f"server (pid {os.getpid()}) was started with --model tiny-pinned-fp32: its default stays "
                f"tiny-pinned-fp32; {TINY_MODEL}@{old} is served to requests that name it") in switched.stdout
        assert "now serving" not in switched.stdout
    finally:
        pool.close()


def test_use_of_another_model_says_a_running_servers_default_follows(tiny_settings: Settings,  # type: ignore[no-untyped-def]
                                                                     tiny_versions, caplog) -> None:
    """`models --use OTHER` said "no running pgpt-serve ... serves OTHER" while that server's next
    `default` request got OTHER (t49, t51): it says what the server does, and the server logs it."""
    import logging

    old, _ = tiny_versions[1]
    work = tiny_settings.model_cache / ".work-other"
    shutil.copytree(versions_folder(tiny_settings.model_cache, TINY_MODEL) / old, work)
    (work / ".verified.json").unlink(missing_ok=True)
    other = publish_version(tiny_settings.model_cache, "tiny-other-fp32", work, keep=1).version
    tui_cli(tiny_settings, "models", "--use", TINY_MODEL)
    pool = ModelPool(tiny_settings, PoolConfig(watch_interval_s=0.05), use_cache=False)
    try:
        with pool.acquire("default") as lease:
            assert lease.name == TINY_MODEL
        with caplog.at_level(logging.INFO, logger="pgpt"):
            switched = tui_cli(tiny_settings, "models", "--use", "tiny-other-fp32", "--wait", "60")
            assert switched.returncode == 0, switched.stderr
            assert (f"server (pid {os.getpid()}): its default is now tiny-other-fp32@{other}, loaded at its next "
                    "request") in switched.stdout
            assert "no running pgpt-serve" not in switched.stdout
            # logged when it happens, not at the next request: the log gave the wrong time (t80)
            deadline = time.monotonic() + 30
            while f"default model is now tiny-other-fp32 (was {TINY_MODEL})" not in caplog.text:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
        with pool.acquire("default") as lease:
            assert lease.name == "tiny-other-fp32"
    finally:
        pool.close()


def test_a_reader_that_goes_away_ends_the_listing_quietly(tiny_settings: Settings, tiny_versions) -> None:  # type: ignore[no-untyped-def]
    """`pgpt-tui models --json | head -1` printed "System error: [Errno 32] Broken pipe" (exit 1)
    about as often as not. Now nothing on stderr, and the status of a process SIGPIPE ended."""
    process = subprocess.Popen([sys.executable, "-m", "pgpt.tui.cli.main", "models", "--json"],
                               env=cli_env(tiny_settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the command writes anything: its first write finds no reader
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and error == ""


def test_an_export_replaces_its_own_damaged_version(tiny_settings: Settings, tiny_versions,  # type: ignore[no-untyped-def]
                                                    default_models: Settings, tmp_path: Path) -> None:
    """Exporting the source of a damaged version again said "wrote ... (version X)" and kept the changed
    files, so the model stayed unusable; the message's remedy was that very export (t51)."""
    from tiny_models import export_tiny_version

    from pgpt.runtime.manifest import folder_problem
    from pgpt.runtime.models import DEFAULT_LLM

    old, new = tiny_versions[1]
    folder = versions_folder(tiny_settings.model_cache, TINY_MODEL) / new
    with (folder / "tokenizer_config.json").open("a") as changed:
        changed.write(" ")
    refused = tui_cli(tiny_settings, "chat", "hi", "--model", TINY_MODEL)
    assert refused.returncode == 1 and "Model files damaged" in refused.stderr
    assert "replaces a damaged version of the model cache by itself" in " ".join(refused.stderr.split())
    tokenizer_from = find_model(default_models, f"{DEFAULT_LLM}-int8").path
    assert export_tiny_version(tiny_settings.model_cache, tmp_path, 2, tokenizer_from) == new
    assert folder_problem(folder) == "" and find_model(tiny_settings, TINY_MODEL).version == new
    assert tui_cli(tiny_settings, "chat", "hi", "--model", TINY_MODEL, "--max-tokens", "4").returncode == 0


def test_the_listing_says_when_pgpt_model_names_no_model(tiny_settings: Settings, tiny_versions) -> None:  # type: ignore[no-untyped-def]
    """`PGPT_MODEL=nosuch pgpt-tui models` marked no model and said nothing, exit 0 (t51)."""
    listed = subprocess.run([sys.executable, "-m", "pgpt.tui.cli.main", "models"], capture_output=True, text=True,
                            env={**cli_env(tiny_settings), "PGPT_MODEL": "nosuch"}, timeout=300)
    assert listed.returncode == 0 and TINY_MODEL in listed.stdout and f"* {TINY_MODEL}" not in listed.stdout
    assert listed.stderr.startswith("warning: Model not found: PGPT_MODEL names a model that is not exported")


def test_the_listing_fits_an_80_column_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pgpt-tui models` was 103 columns wide and wrapped mid-word at 80 (t54 F17): on a narrow terminal it
    leaves out the parameter count, then the dtype and the kind; a pipe or a file keeps every column."""
    from pgpt.tui.cli import models as cli_models

    rows = [{"name": "all-minilm-l6-v2-int8", "version": "3d87b3339181", "kind": "embedding", "dtype": "int8",
             "parameters": 22_713_216, "size_bytes": 59e6, "expected_memory_mb": 209.0,
             "quality": {"min_cosine": 0.9951}, "active": False},
            {"name": "qwen2.5-coder-1.5b-instruct-int4", "version": "c94ca2dab369", "kind": "llm", "dtype": "int4",
             "parameters": 1_543_714_304, "size_bytes": 1.07e9, "expected_memory_mb": 1412.0,
             "quality": {"top1_agreement": 0.967}, "active": True}]
    monkeypatch.setattr(cli_models, "terminal_width", lambda: 80)
    narrow = cli_models._table(rows)
    assert max(map(len, narrow)) <= 80 and "params" not in narrow[0], narrow
    assert narrow[2].startswith("* qwen2.5-coder-1.5b-instruct-int4 c94ca2da ") and narrow[2].endswith("top-1 96.7%")
    monkeypatch.setattr(cli_models, "terminal_width", lambda: 0)
    full = cli_models._table(rows)
    assert full[0].split() == ["name", "version", "kind", "dtype", "params", "disk", "memory", "quality"]
    assert "1.54B" in full[2] and "int4" in full[2].split()


def test_a_cache_of_damaged_exports_only_is_listed(tmp_path: Path) -> None:
    """No header and no table then, only the damaged ones with the way out."""
    settings = Settings(home=tmp_path / "home", model_cache=tmp_path / "models")
    (settings.model_cache / "half-done").mkdir(parents=True)
    (settings.model_cache / "half-done" / "manifest.json").write_text("{not json")
    listed = tui_cli(settings, "models")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("damaged: half-done: ") and "models --delete half-done" in listed.stdout
