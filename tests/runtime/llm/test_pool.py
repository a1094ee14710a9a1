"""The model pool on real exports of a tiny random model: load on first use, keep-alive, max_loaded,
name@version, hot swap and rollback under load, a damaged version that leaves the old one serving."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import pytest
from tiny_models import TINY_MODEL

from pgpt.runtime.errors import ModelLoadError, ServerBusyError
from pgpt.runtime.llm.sampling import SamplingOptions
from pgpt.runtime.llm.serving.pool import ModelPool, PoolConfig, PoolEvent
from pgpt.runtime.llm.serving.status_file import running_pools, wait_for_switch
from pgpt.runtime.llm.serving.scheduler import SchedulerConfig
from pgpt.runtime.manifest import read_manifest, write_manifest
from pgpt.runtime.settings import Settings
from pgpt.runtime.versions import publish_version, rollback, use_version, versions_folder

QUESTION = [{"role": "user", "content": "Tell me about the sea."}]
GREEDY = SamplingOptions(max_new_tokens=12, ignore_eos=True)


def _pool(settings: Settings, **config: object) -> ModelPool:
    scheduler = SchedulerConfig(parallel=4, max_queue=8)
    return ModelPool(settings, PoolConfig(**{"scheduler": scheduler, "watch_interval_s": 0.05, **config}),  # type: ignore[arg-type]
                     use_cache=False)


@pytest.fixture()
def pool_events(tiny_settings: Settings) -> Iterator[tuple[ModelPool, list[PoolEvent]]]:
    pool = _pool(tiny_settings, keep_alive_s=0.3, max_loaded=1)
    events: list[PoolEvent] = []
    pool.subscribe(events.append)
    yield pool, events
    pool.close()


def _answer(pool: ModelPool, ref: str, options: SamplingOptions = GREEDY) -> tuple[str, str]:
    """(version, answer) of one chat through the pool."""
    with pool.acquire(ref) as lease:
        stream = lease.chat.stream(QUESTION, options)
        text = "".join(stream)
        assert stream.result.version == lease.version
        return lease.version, text


def _served(pool: ModelPool) -> str:
    """The version a request for the tiny model's name gets now."""
    with pool.acquire(TINY_MODEL) as lease:
        return lease.version


def _until(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_loads_on_first_use_and_unloads_after_keep_alive(pool_events, tiny_versions) -> None:  # type: ignore[no-untyped-def]
    pool, events = pool_events
    assert not pool.ready() and pool.loaded() == []
    lease = pool.acquire("default")
    assert (lease.name, lease.version) == (TINY_MODEL, tiny_versions[1][1])
    (loaded,) = pool.loaded()
    assert loaded.active_requests == 1 and loaded.expires_at is None and loaded.serving
    assert loaded.memory_bytes > 10_000_000 and pool.ready()
    model = lease.chat.model
    lease.release()
    lease.release()  # twice is harmless
    (loaded,) = pool.loaded()
    assert loaded.active_requests == 0 and loaded.expires_at is not None
    assert 0 < loaded.expires_at - time.time() <= 0.3
    assert _until(lambda: pool.loaded() == [] and len(events) == 2)
    assert [(e.kind, e.reason) for e in events] == [("loaded", ""), ("unloaded", "keep_alive")]
    assert model.session is None and model.prefill_session is None  # its weights left the server's RSS
    stats = pool.stats()
    assert (stats.loads, stats.unloads, stats.loaded) == (1, 1, 0)


def test_keep_alive_of_a_request_applies_from_then_on(pool_events) -> None:  # type: ignore[no-untyped-def]
    pool, events = pool_events
    pool.acquire(TINY_MODEL, keep_alive=-1).release()
    time.sleep(0.6)
    (loaded,) = pool.loaded()
    assert loaded.expires_at is None
    pool.acquire(TINY_MODEL, keep_alive=0).release()
    assert pool.loaded() == [] and events[-1].reason == "keep_alive 0"


def test_name_at_version_default_and_max_loaded(pool_events, tiny_versions) -> None:  # type: ignore[no-untyped-def]
    pool, _ = pool_events
    old, new = tiny_versions[1]
    v_old, answer_old = _answer(pool, f"{TINY_MODEL}@{old[:6]}")
    assert v_old == old
    busy = pool.acquire(TINY_MODEL)  # the active version; the idle old one makes room (max_loaded=1)
    assert busy.version == new and [m.version for m in pool.loaded()] == [new]
    with pytest.raises(ServerBusyError, match="max_loaded=1") as refused:
        pool.acquire(f"{TINY_MODEL}@{old}")
    assert refused.value.limit == "max_loaded=1"
    busy.release()
    v_new, answer_new = _answer(pool, "default")
    assert v_new == new and answer_new != answer_old  # two versions, two different models


def test_hot_swap_lets_running_requests_finish_on_their_version(pool_events, tiny_versions) -> None:  # type: ignore[no-untyped-def]
    pool, events = pool_events
    settings = pool.settings
    old, new = tiny_versions[1]
    _, expected_old = _answer(pool, f"{TINY_MODEL}@{old}")
    _, expected_new = _answer(pool, TINY_MODEL)
    lease = pool.acquire(TINY_MODEL, keep_alive=-1)
    stream = lease.chat.stream(QUESTION, GREEDY)
    pieces = iter(stream)
    first = next(pieces)  # a request is running on the active version
    since = time.time()
    use_version(settings, TINY_MODEL, old)
    pool.check_registry()  # the watcher may be doing it already: then wait for it
    assert _until(lambda: [e.kind for e in events if e.kind == "switched"] == ["switched"])
    assert _answer(pool, TINY_MODEL) == (old, expected_old)  # new requests get the new version
    assert {m.version: m.serving for m in pool.loaded()} == {new: False, old: True}
    rest = first + "".join(pieces)
    lease.release()
    assert (lease.version, rest) == (new, expected_new)  # the running one finished where it began
    assert [m.version for m in pool.loaded()] == [old]  # the replaced version left with its last request
    pool._status.write(pool.loaded())
    assert [o.state for o in wait_for_switch(settings, TINY_MODEL, old, since, 1)] == ["ok"]


def _publish_damaged(settings: Settings, source: str, how: str) -> str:
    """Publish a new, active version of the tiny model made from version ``source`` (plus a note,
    so it is a version of its own) whose graph is damaged after its manifest was written
    (``files``: the sha256 check fails), or is no ONNX graph at all, with a matching manifest
    (``graph``: ONNX Runtime refuses it)."""
    work = settings.model_cache / f".work-{how}"
    shutil.copytree(versions_folder(settings.model_cache, TINY_MODEL) / source, work)
    (work / ".verified.json").unlink(missing_ok=True)
    (work / "notes.txt").write_text(f"damaged: {how}")
    graph = work / "model.onnx"
    if how == "graph":
        graph.write_bytes(b"not an onnx graph" + graph.read_bytes()[:1000])
    write_manifest(work, {k: v for k, v in read_manifest(work).items() if k != "files"})
    if how == "files":
        data = bytearray(graph.read_bytes())
        data[len(data) // 2] ^= 0xFF
        graph.write_bytes(bytes(data))
    return publish_version(settings.model_cache, TINY_MODEL, work, keep=10).version


@pytest.mark.parametrize("how", ["files", "graph"])
def test_a_version_that_fails_to_load_leaves_the_old_one_serving(pool_events, tiny_versions, how: str) -> None:  # type: ignore[no-untyped-def]
    pool, events = pool_events
    settings = pool.settings
    new = tiny_versions[1][1]
    _, expected = _answer(pool, TINY_MODEL)
    lease = pool.acquire(TINY_MODEL, keep_alive=-1)
    since = time.time()
    bad = _publish_damaged(settings, new, how)
    pool.check_registry()
    assert _until(lambda: any(e.kind == "load_failed" for e in events))
    time.sleep(0.3)  # six more turns of the watcher: a failed version is not retried until chosen again
    assert _answer(pool, TINY_MODEL) == (new, expected)
    lease.release()
    failures = [e for e in events if e.kind == "load_failed"]
    assert len(failures) == 1 and failures[0].version == bad
    assert ("does not match the sha256" if how == "files" else "not a valid ONNX model") in failures[0].reason
    assert pool.stats().load_failures == 1 and pool.stats().switches == 0
    pool._status.write(pool.loaded())
    (outcome,) = wait_for_switch(settings, TINY_MODEL, bad, since, 1)
    assert outcome.state == "failed" and outcome.reason == failures[0].reason
    # Switching back to what it serves is done at once; it waited out its whole time after a failure.
    started = time.monotonic()
    assert [o.state for o in wait_for_switch(settings, TINY_MODEL, new, time.time(), 5)] == ["ok"]
    assert time.monotonic() - started < 1.0
    status = running_pools(settings)
    assert status[0]["serving"] == {TINY_MODEL: new}
    with pytest.raises(ModelLoadError, match=f"{TINY_MODEL}@{bad}: "):
        pool.acquire(f"{TINY_MODEL}@{bad}")


def test_switches_and_a_rollback_under_load_fail_no_request(tiny_settings, tiny_versions) -> None:  # type: ignore[no-untyped-def]
    old, new = tiny_versions[1]
    pool = _pool(tiny_settings, keep_alive_s=60, max_loaded=1)
    try:
        expected = dict([_answer(pool, f"{TINY_MODEL}@{old}"), _answer(pool, f"{TINY_MODEL}@{new}")])
        stop = threading.Event()
        results: list[tuple[str, str]] = []
        failures: list[BaseException] = []

        def client() -> None:
            while not stop.is_set():
                try:
                    results.append(_answer(pool, "default"))
                except BaseException as exc:  # every failure is a test failure
                    failures.append(exc)

        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        def answered(more: int) -> None:
            """Let the clients finish ``more`` requests (on a slow machine that takes a while)."""
            mark = len(results)
            assert _until(lambda: len(results) >= mark + more or bool(failures), 120)

        for target in (old, new, old):
            answered(4)
            use_version(tiny_settings, TINY_MODEL, target)
            assert _until(lambda: _served(pool) == target, 30)  # noqa: B023
        answered(4)
        assert rollback(tiny_settings, TINY_MODEL).version == new
        assert _until(lambda: _served(pool) == new, 30)
        answered(4)
        stop.set()
        for thread in clients:
            thread.join(60)
        assert failures == []
        assert len(results) >= 16 and {version for version, _ in results} == {old, new}
        assert all(text == expected[version] for version, text in results)  # each names its real version
        assert pool.stats().switches == 4 and pool.stats().load_failures == 0
    finally:
        pool.close()
